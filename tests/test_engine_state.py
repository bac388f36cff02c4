"""Checkpoints are plain sparse weights; resume reaches the same masks; bad arguments fail early."""
import os

import numpy as np
import paddle
import pytest

from engine_helpers import TinyNet, batches, make_model, train_steps
from prune_plugin import GMPUnstructuredPruner, PruneConfigError, UnstructuredPruner

GMP_CONFIGS = {'stable_iterations': 0, 'pruning_iterations': 12, 'tunning_iterations': 4,
               'pruning_steps': 6, 'initial_ratio': 0.1}


def make_run(seed=0):
    model = make_model(seed)
    optimizer = paddle.optimizer.Momentum(learning_rate=0.05, momentum=0.9,
                                          parameters=model.parameters(), weight_decay=1e-3)
    pruner = GMPUnstructuredPruner(model, ratio=0.7, configs=GMP_CONFIGS, optimizer=optimizer)
    return model, optimizer, pruner


def test_masks_are_bool_and_not_in_the_state_dict(tmp_path):
    model, optimizer, pruner = make_run()
    dense_keys = set(model.state_dict())
    train_steps(model, optimizer, pruner, batches(8))
    assert set(model.state_dict()) == dense_keys
    for mask in pruner.masks.values():
        assert mask.dtype == paddle.bool and mask.element_size() == 1
    extra_bytes = sum(int(m.numel()) * m.element_size() for m in pruner.masks.values())
    # TinyNet's prunable weights by hand: stem 8x3x3x3, pw1 16x8, dw 16x1x3x3, pw2 13x16,
    # fc 13x10 (norms and biases skipped)
    assert extra_bytes == 216 + 128 + 144 + 208 + 130
    sparse_path, dense_path = tmp_path / 'sparse.pdparams', tmp_path / 'dense.pdparams'
    paddle.save(model.state_dict(), str(sparse_path))
    paddle.save(make_model().state_dict(), str(dense_path))
    assert os.path.getsize(sparse_path) <= os.path.getsize(dense_path)
    plain = TinyNet()  # no plugin involved
    plain.set_state_dict(paddle.load(str(sparse_path)))
    for p in pruner.params:
        loaded = plain.state_dict()[p.name].numpy()
        np.testing.assert_array_equal(loaded != 0, pruner.mask_of(p.name))


def test_resume_reaches_the_same_masks_and_ratio_as_an_uninterrupted_run(tmp_path):
    data = list(batches(16, seed=3))
    # each run in its own unique_name.guard: parameter and optimizer-state names as in a fresh
    # process, which a resumed job is
    with paddle.utils.unique_name.guard():
        model, optimizer, pruner = make_run()
        train_steps(model, optimizer, pruner, data)
        uninterrupted = {p.name: pruner.mask_of(p.name) for p in pruner.params}

    with paddle.utils.unique_name.guard():
        model, optimizer, pruner = make_run()
        train_steps(model, optimizer, pruner, data[:7])  # stop after iteration 7, mid-schedule
        paddle.save(model.state_dict(), str(tmp_path / 'm.pdparams'))
        paddle.save(optimizer.state_dict(), str(tmp_path / 'm.pdopt'))
        paddle.save(pruner.state_dict(), str(tmp_path / 'm.pdprune'))
        assert pruner.state_dict() == {'iteration': 7}

    with paddle.utils.unique_name.guard():
        model, optimizer, pruner = make_run(seed=1)  # other init: everything comes from disk
        model.set_state_dict(paddle.load(str(tmp_path / 'm.pdparams')))
        optimizer.set_state_dict(paddle.load(str(tmp_path / 'm.pdopt')))
        pruner.set_state_dict(paddle.load(str(tmp_path / 'm.pdprune')))
        assert pruner.ratio == pytest.approx(pruner.ratio_at(6))
        train_steps(model, optimizer, pruner, data[7:])
    assert pruner.iteration == 16 and pruner.ratio == pytest.approx(0.7)
    for name, mask in uninterrupted.items():
        np.testing.assert_array_equal(pruner.mask_of(name), mask)


def test_resume_iteration_in_configs_recovers_masks_from_zeros():
    model, optimizer, pruner = make_run()
    train_steps(model, optimizer, pruner, batches(5))
    masks = {p.name: pruner.mask_of(p.name) for p in pruner.params}
    resumed = GMPUnstructuredPruner(model, ratio=0.7,
                                    configs=dict(GMP_CONFIGS, resume_iteration=5))
    for name, mask in masks.items():
        np.testing.assert_array_equal(resumed.mask_of(name), mask)
    assert resumed.iteration == 5


def test_resume_iteration_minus_one_is_a_fresh_start_as_in_paddleslim():
    """PaddleSlim's auto-compression passes resume_iteration=-1 for a fresh run."""
    fresh = GMPUnstructuredPruner(make_model(), ratio=0.7, configs=GMP_CONFIGS)
    minus_one = GMPUnstructuredPruner(make_model(), ratio=0.7,
                                      configs=dict(GMP_CONFIGS, resume_iteration=-1))
    assert minus_one.iteration == fresh.iteration == 0 and minus_one.masks == {}
    for pruner in (fresh, minus_one):
        pruner.step()
    for p in fresh.params:
        np.testing.assert_array_equal(minus_one.mask_of(p.name), fresh.mask_of(p.name))
    with pytest.raises(PruneConfigError, match=r"configs.resume_iteration=-2 is not allowed"):
        GMPUnstructuredPruner(make_model(), ratio=0.7,
                              configs=dict(GMP_CONFIGS, resume_iteration=-2))


BAD_ARGUMENTS = [
    (dict(mode='magnitude'), 'mode', "one of ['ratio', 'threshold']"),
    (dict(ratio=1.0), 'ratio', 'a float in [0, 1)'),
    (dict(ratio=-0.1), 'ratio', 'a float in [0, 1)'),
    (dict(mode='threshold', threshold=-1.0), 'threshold', 'a float >= 0'),
    (dict(sparse_block=[2, 0]), 'sparse_block', 'two positive ints'),
    (dict(sparse_block=[2]), 'sparse_block', 'two positive ints'),
    (dict(sparse_block=[2.0, 1]), 'sparse_block', 'two positive ints'),
    (dict(sparse_pattern='4:2'), 'sparse_pattern', "'n:m' with ints 0 < n < m"),
    (dict(sparse_pattern='2-4'), 'sparse_pattern', "'n:m' with ints 0 < n < m"),
    (dict(sparse_pattern='2:4', sparse_block=[2, 1]), 'sparse_block', 'when sparse_pattern'),
    (dict(prune_params_type='conv3x3_only'), 'prune_params_type', "[None, 'conv1x1_only']"),
    (dict(mode='threshold', local_sparsity=True), 'local_sparsity', 'false with'),
    (dict(prune_params=['(']), 'prune_params', 'a valid regular expression'),
    (dict(prune_params=['^nothing$']), 'model', 'at least one prunable parameter'),
]


@pytest.mark.parametrize('kwargs,key,allowed', BAD_ARGUMENTS)
def test_bad_arguments_name_the_key_and_change_no_weight(kwargs, key, allowed):
    model = make_model()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(PruneConfigError) as err:
        UnstructuredPruner(model, **kwargs)
    assert isinstance(err.value, ValueError)
    assert err.value.key == key
    assert str(err.value).startswith(f"{key}=")
    assert allowed in str(err.value)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


BAD_GMP = [
    ({'pruning_iterations': 10}, 'configs.stable_iterations'),
    (dict(GMP_CONFIGS, pruning_steps=0), 'configs.pruning_steps'),
    (dict(GMP_CONFIGS, pruning_iterations=3), 'configs.pruning_iterations'),
    (dict(GMP_CONFIGS, initial_ratio=0.9), 'configs.initial_ratio'),
    (dict(GMP_CONFIGS, stable_iterations=-1), 'configs.stable_iterations'),
    (dict(GMP_CONFIGS, pruning_strategy='gmp'), 'configs.pruning_strategy'),
    (None, 'configs'),
]


@pytest.mark.parametrize('configs,key', BAD_GMP)
def test_inconsistent_gmp_configs_fail_before_pruning(configs, key):
    with pytest.raises(PruneConfigError) as err:
        GMPUnstructuredPruner(make_model(), ratio=0.7, configs=configs)
    assert err.value.key == key
