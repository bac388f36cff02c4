"""PaddleClas's Engine path, in CI: a user's clone with the miniature PaddleClas of
``tests/fixtures/ppcls_clone`` (PaddleClas's module layout, train loop, checkpoint files and
resume), a config in PaddleClas's style in ``user_configs/`` (a folder not named ppcls).

Covers what ``tests/test_ppcls_engine.py`` checks on a real clone (that one needs
``PADDLECLAS_SRC``): ``prune-train`` at the clone's root runs the clone's Engine, the hook line
in the clone's own ``tools/train.py``, resume from the ``.pdopt`` state (and from a checkpoint
without it), EMA copies in develop's and 2.5.2's layouts, the ``minimize`` path, eval / export,
and one-line config errors before the Engine is built. About 45 s on 2 cores.
"""
import hashlib
import os

import numpy as np
import paddle
import pytest

from ppcls_helpers import (TINYNET_STEPS_PER_EPOCH, conv1x1_items, make_fixture_clone, run,
                           stderr_lines, zero_positions_digest, zeros_of_conv1x1)
from prune_plugin.core import gmp_ratio_at
from prune_plugin.core.schedule import GMPSchedule

STEPS = TINYNET_STEPS_PER_EPOCH
SCHEDULE = GMPSchedule.from_configs(0.75, {'stable_iterations': 0, 'pruning_iterations': 8,
                                           'tunning_iterations': 2, 'pruning_steps': 4,
                                           'initial_ratio': 0.15})
CONFIG = os.path.join('user_configs', 'tinynet_prune.yaml')


def expected_zeros(updates, total):
    """Zero 1x1 weights after ``updates`` optimizer updates (the ratio in force at the last)."""
    return round(gmp_ratio_at(updates - 1, SCHEDULE) * total)


def train(clone, *overrides, command='prune-train'):
    args = [command, '-c', CONFIG]
    for item in overrides:
        args += ['-o', item]
    result = run(args, clone)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope='module')
def clone(tmp_path_factory):
    return make_fixture_clone(tmp_path_factory.mktemp('user'))[0]


@pytest.fixture(scope='module')
def trained(clone):
    """2 epochs (10 updates) in ``output/``: the run the other tests compare with."""
    return train(clone)


def test_prune_train_at_the_clone_root_runs_its_engine_to_exact_sparsity(clone, trained):
    out = trained.stdout
    assert f"ppcls from {os.path.join(clone, 'ppcls')} (clone {clone})" in out
    assert "[Train][Epoch 2/2][Iter: 0/5]" in out  # the clone's Engine logged its loop
    assert "[prune_plugin] plan: GMP from the first step, ratio 0.15 rising to 0.75 in 4 steps " \
           "of 2 iterations; target reached at iteration 8" in out
    assert "[prune_plugin] result: 75.00% of the prunable weights pruned at iteration 10 " \
           "(target 75%)\n" in out
    for epoch in (1, 2):
        prefix = os.path.join(clone, 'output', f"epoch_{epoch}")
        zeros, total = zeros_of_conv1x1(f"{prefix}.pdparams")
        assert total == 32 * 16 + 64 * 32
        assert zeros == expected_zeros(epoch * STEPS, total), epoch
        state = paddle.load(f"{prefix}.pdopt")
        assert state[0]['prune_plugin.pruner'] == {'iteration': epoch * STEPS}
    zeros, total = zeros_of_conv1x1(os.path.join(clone, 'output', 'latest.pdparams'))
    assert zeros == round(0.75 * total) == 1920


NO_RANDOM_AUGMENT = ("DataLoader.Train.dataset.transform_ops=[{'DecodeImage': {'to_rgb': True}}, "
                     "{'NormalizeImage': {'scale': 0.00392156862745098, 'mean': [0.5, 0.5, 0.5], "
                     "'std': [0.5, 0.5, 0.5], 'order': ''}}]")


def test_resume_continues_the_schedule_from_the_checkpoint(clone):
    train(clone, NO_RANDOM_AUGMENT, "Global.output_dir=./straight/")
    resumed = train(clone, NO_RANDOM_AUGMENT, "Global.checkpoints=./straight/epoch_1",
                    "Global.output_dir=./resumed/")
    assert "[prune_plugin] pruner resumed at iteration 5 (67.50% pruned) from the checkpoint" \
        in resumed.stdout
    assert "resuming at iteration 5" in resumed.stdout
    straight = paddle.load(os.path.join(clone, 'straight', 'epoch_2.pdparams'))
    again = paddle.load(os.path.join(clone, 'resumed', 'epoch_2.pdparams'))
    assert not os.path.exists(os.path.join(clone, 'resumed', 'epoch_1.pdparams'))
    assert zero_positions_digest(a for _, a in conv1x1_items(again)) == \
        zero_positions_digest(a for _, a in conv1x1_items(straight))
    for name in straight:
        np.testing.assert_allclose(again[name].numpy(), straight[name].numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)


def test_resume_from_a_checkpoint_without_pruner_state_uses_its_epoch(clone):
    train(clone, "slim=None", "Global.epochs=1", "Global.output_dir=./dense/")
    assert 'prune_plugin.pruner' not in paddle.load(os.path.join(clone, 'dense',
                                                                 'latest.pdopt'))[0]
    resumed = train(clone, "Global.checkpoints=./dense/latest", "Global.output_dir=./dense/")
    assert "has no pruner state (written without prune_plugin): the schedule continues at " \
           "iteration 5" in resumed.stdout
    zeros, total = zeros_of_conv1x1(os.path.join(clone, 'dense', 'epoch_2.pdparams'))
    assert zeros == expected_zeros(2 * STEPS, total) == 1920


def test_the_hook_line_in_the_clones_own_tools_train(clone):
    result = run([os.path.join('tools', 'train.py'), '-c', CONFIG, '-o',
                  'Global.output_dir=./hooked/'], clone)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[prune_plugin] attached to PaddleClas's Engine: GMPUnstructuredPruner on 2 " \
           "parameters" in result.stdout
    zeros, total = zeros_of_conv1x1(os.path.join(clone, 'hooked', 'latest.pdparams'))
    assert zeros == round(0.75 * total)


@pytest.mark.parametrize('layout, model_file, ema_file', [
    ('develop', 'latest.pdema', 'latest.pdparams'),
    ('2.5', 'latest.pdparams', 'latest.ema.pdparams')])
def test_ema_copies_are_exactly_as_sparse_as_the_model(clone, layout, model_file, ema_file):
    out = f"./ema_{layout.replace('.', '')}/"
    train(clone, "EMA.decay=0.9", f"Global.ema_layout='{layout}'", f"Global.output_dir={out}")
    model = conv1x1_items(paddle.load(os.path.join(clone, out, model_file)))
    ema = conv1x1_items(paddle.load(os.path.join(clone, out, ema_file)))
    assert [n for n, _ in model] == [n for n, _ in ema]
    assert zero_positions_digest(a for _, a in ema) == zero_positions_digest(a for _, a in model)
    assert sum(int((a == 0).sum()) for _, a in ema) == 1920
    assert not all(np.array_equal(a, b) for (_, a), (_, b) in zip(model, ema))  # a real EMA


def test_the_minimize_path_steps_the_pruner(clone):
    result = train(clone, "Global.use_minimize=True", "Global.output_dir=./minimize/")
    assert "result: 75.00% of the prunable weights pruned at iteration 10" in result.stdout
    zeros, total = zeros_of_conv1x1(os.path.join(clone, 'minimize', 'latest.pdparams'))
    assert zeros == round(0.75 * total)


def _digests(arrays):
    return sorted((tuple(a.shape), hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest())
                  for a in arrays)


def test_eval_and_export_report_and_keep_the_zeros(clone, trained):
    evaluated = run(['prune-eval', '-c', CONFIG, '-o', 'Global.pretrained_model=./output/latest'],
                    clone)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "[prune_plugin] evaluating ./output/latest: total_sparse " in evaluated.stdout
    assert "total_sparse_conv1x1 0.7500  prunable_sparse 0.7500" in evaluated.stdout
    assert "[Eval][Epoch 0][Avg]top1:" in evaluated.stdout
    assert "not trained with the pruner" not in evaluated.stdout

    exported = run(['prune-export', '-c', CONFIG, '-o', 'Global.pretrained_model=./output/latest',
                    '-o', 'Global.save_inference_dir=./inference/'], clone)
    assert exported.returncode == 0, exported.stderr[-3000:]
    model = paddle.jit.load(os.path.join(clone, 'inference', 'inference'))
    checkpoint = paddle.load(os.path.join(clone, 'output', 'latest.pdparams'))
    # every exported tensor is bit-identical to one of the checkpoint (one to one): the same
    # zeros at the same positions
    assert _digests(p.numpy() for p in model.parameters()) == \
        _digests(v.numpy() for v in checkpoint.values())


def test_eval_warns_when_the_weights_were_not_pruned(clone):
    train(clone, "slim=None", "Global.epochs=1", "Global.output_dir=./dense_only/")
    result = run(['prune-eval', '-c', CONFIG, '-o',
                  'Global.pretrained_model=./dense_only/latest'], clone)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING: [prune_plugin] the config has 'slim: UnstructuredPrune' (75% of the " \
           "prunable weights) but ./dense_only/latest has 0.00% zeros there: these weights " \
           "were not trained with the pruner" in result.stdout


@pytest.mark.parametrize('overrides, message', [
    (['Arch.name=TinyNett'], "error: Arch.name='TinyNett' is not allowed: expected a model of "
                             "ppcls.arch (the clone's); did you mean 'TinyNet'?"),
    (['DataLoader.Train.dataset.transform_ops.1.RandFlipImage.flip_cod=1'],
     "error: DataLoader.Train.dataset.transform_ops.1.RandFlipImage.flip_cod=1 is not allowed: "
     "expected one of the arguments ['flip_code'] of RandFlipImage; did you mean 'flip_code'?"),
    (['Optimizer.lr.name=Piecewis'], "error: Optimizer.lr.name='Piecewis' is not allowed: "
                                     "expected a learning-rate schedule of "
                                     "ppcls.optimizer.learning_rate (the clone's); did you mean "
                                     "'Piecewise'?"),
    (['UnstructuredPrune.ratio=1.5'], "error: UnstructuredPrune.ratio=1.5 is not allowed: "
                                      "expected a float in [0, 1)"),
    (['Global.device=gpu'], "error: Global.device='gpu' is not allowed: expected 'cpu' on this "
                            "machine (this paddle has no CUDA): add -o Global.device=cpu"),
    (['DataLoader.Train.sampler.batch_size=100', 'DataLoader.Train.sampler.drop_last=True'],
     "error: DataLoader.Train.sampler.batch_size=100 is not allowed: expected a batch size the "
     "dataset (80 samples per process) can fill at least once: 0 steps per epoch"),
    (['Global.epochs'], "error: -o='Global.epochs' is not allowed: expected KEY=VALUE with "
                        "exactly one '='"),
])
def test_config_errors_are_one_line_before_training(clone, overrides, message):
    args = ['prune-train', '-c', CONFIG, '-o', 'Global.output_dir=./bad/']
    for item in overrides:
        args += ['-o', item]
    if paddle.is_compiled_with_cuda() and 'gpu' in overrides[0]:
        pytest.skip("this machine has CUDA: Global.device=gpu is valid")
    result = run(args, clone)
    lines = stderr_lines(result)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert 'Traceback' not in result.stderr
    saved = os.listdir(os.path.join(clone, 'bad')) if os.path.isdir(
        os.path.join(clone, 'bad')) else []
    assert not [f for f in saved if f.endswith('.pdparams')]


def test_a_clone_named_by_paddleclas_src_runs_a_config_outside_it(clone, tmp_path):
    with open(os.path.join(clone, CONFIG)) as f:
        text = f.read().replace('./dataset/', os.path.join(clone, 'dataset') + '/')
    config = tmp_path / 'elsewhere' / 'cls.yaml'
    config.parent.mkdir()
    config.write_text(text)
    result = run(['prune-train', '-c', str(config), '-o', 'Global.epochs=1'], tmp_path,
                 PADDLECLAS_SRC=clone)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"(clone {clone})" in result.stdout
    zeros, total = zeros_of_conv1x1(str(tmp_path / 'output' / 'latest.pdparams'))
    assert zeros == expected_zeros(STEPS, total)
