"""PaddleSeg: sparse training through paddleseg.core.train on the generated portrait data.

Every run below is ``tools/train.py``'s code path (``run_training``) in this process: the real
paddleseg loop, optimizer, EMA, evaluation and checkpoints.
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import paddle
import pytest

from prune_plugin.adapters.ppseg import main as ppseg, state as ppseg_state
from prune_plugin.adapters.ppseg.export import exported_zero_counts
from prune_plugin.demo_data import ppseg_data

ROOT = os.path.join(os.path.dirname(__file__), '..')
DEMO = os.path.join(ROOT, 'configs', 'ppseg', 'pphumanseg_lite_prune_demo.yml')
DEMO_2X1 = os.path.join(ROOT, 'configs', 'ppseg', 'pphumanseg_lite_prune_block2x1_demo.yml')
# GMP in 8 iterations: 15% at the first update, then 3 steps up to 75% by iteration 6.
SHORT_GMP = ['UnstructuredPrune.gmp.stable_iterations=0',
             'UnstructuredPrune.gmp.pruning_iterations=6',
             'UnstructuredPrune.gmp.tunning_iterations=2', 'UnstructuredPrune.gmp.pruning_steps=3']
# stride-1 InvertedResidual blocks build a `_depthwise_separable_0` their forward never calls
DEAD_BRANCH = re.compile(r'^block[12]\.[1-9]\._depthwise_separable_0\.')
NO_AUGMENT = ["train_dataset.transforms=[{'type':'Normalize'}]"]


def train(config, save_dir, *extra, opts=()):
    argv = ['-c', config, '--seed', '3', '--batch_size', '2', '--log_iters', '4',
            '--save_dir', str(save_dir), *extra, '-o', *SHORT_GMP, *opts]
    # a fresh name scope per run, as in a new process: paddle keys optimizer state by param.name
    with paddle.utils.unique_name.guard():
        return ppseg.run_training(ppseg.train_parser().parse_args(argv))


def conv1x1(state):
    return {k: v.numpy() for k, v in state.items() if v.ndim == 4 and tuple(v.shape[2:]) == (1, 1)}


def zeros_of(path):
    return {k: v == 0 for k, v in conv1x1(paddle.load(str(path))).items()}


def count(zeros):
    return sum(int(z.sum()) for z in zeros.values())


def same_weights(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


@pytest.fixture(scope='module')
def same_image_list(tmp_path_factory):
    """A train list of one image twice: every epoch is the same batch (resume is comparable)."""
    root = ppseg_data.ensure_portrait_dataset()
    with open(os.path.join(root, 'train.txt')) as f:
        first = f.readline()
    path = tmp_path_factory.mktemp('lists') / 'same_image.txt'
    path.write_text(first * 2)
    return str(path)


@pytest.fixture(scope='module')
def gmp_run(tmp_path_factory, same_image_list):
    save_dir = tmp_path_factory.mktemp('ppseg_gmp')
    run = train(DEMO, save_dir, '--iters', '8', '--save_interval', '4', '--use_ema', '--do_eval',
                opts=[f'train_dataset.train_path={same_image_list}', *NO_AUGMENT])
    return run, save_dir


def test_every_checkpoint_and_ema_is_exactly_as_sparse_as_the_schedule(gmp_run):
    run, save_dir = gmp_run
    pruner = run.pruner
    total = sum(p.param.size for p in pruner.params)
    assert total == 195384 and len(pruner.params) == 40  # PP-HumanSeg-Lite's 1x1 conv weights
    assert run.hook.updates == {'step': 8, 'minimize': 0}
    for it, expected_ratio in ((4, 0.572222), (8, 0.75)):
        ratio = pruner.ratio_at(it - 1)
        assert ratio == pytest.approx(expected_ratio, abs=1e-6)
        model = zeros_of(save_dir / f'iter_{it}' / 'model.pdparams')
        ema = zeros_of(save_dir / f'iter_{it}' / 'ema_model.pdparams')
        assert count(model) == round(ratio * total)
        assert all(np.array_equal(model[k], ema[k]) for k in model)
        # the pruner state is beside the weights; paddleseg's optimizer state is its own
        assert ppseg_state.read_state(str(save_dir / f'iter_{it}')) == {'iteration': it}
        opt_state = paddle.load(str(save_dir / f'iter_{it}' / 'model.pdopt'))
        assert not any(str(k).startswith('prune_plugin') for k in opt_state)
    final = zeros_of(save_dir / 'iter_8' / 'model.pdparams')
    for p in pruner.params:
        assert np.array_equal(final[p.name], ~pruner.mask_of(p.name))
    # best_model / ema_best_model are copies of one of the evaluated iterations: the same
    # weights, so the same exact zero count, and the EMA's zeros where the model's are
    for best, name in (('best_model', 'model.pdparams'), ('ema_best_model', 'ema_model.pdparams')):
        weights = paddle.load(str(save_dir / best / name))
        it = next(i for i in (4, 8) if same_weights(
            weights, paddle.load(str(save_dir / f'iter_{i}' / name))))
        zeros = zeros_of(save_dir / best / name)
        model_zeros = zeros_of(save_dir / f'iter_{it}' / 'model.pdparams')
        assert count(zeros) == round(pruner.ratio_at(it - 1) * total)
        assert all(np.array_equal(zeros[k], model_zeros[k]) for k in zeros)


@pytest.mark.parametrize('pruner_state', ['model.pdprune', 'in model.pdopt (older plugin)',
                                          'missing'])
def test_resume_continues_the_schedule_bit_identical_to_the_uninterrupted_run(
        gmp_run, tmp_path, same_image_list, pruner_state):
    _, full_dir = gmp_run
    shutil.copytree(full_dir / 'iter_4', tmp_path / 'iter_4')
    state_file = tmp_path / 'iter_4' / ppseg_state.STATE_NAME
    if pruner_state != 'model.pdprune':
        state_file.unlink()  # missing: a checkpoint of a run without the plugin
    if pruner_state.startswith('in model.pdopt'):
        opt_path = str(tmp_path / 'iter_4' / 'model.pdopt')
        state = paddle.load(opt_path)
        state[ppseg_state.LEGACY_OPT_KEY] = {'iteration': 4}
        paddle.save(state, opt_path)
    run = train(DEMO, tmp_path, '--iters', '8', '--save_interval', '4',
                '--resume_model', str(tmp_path / 'iter_4'),
                opts=[f'train_dataset.train_path={same_image_list}', *NO_AUGMENT])
    assert run.pruner.iteration == 8 and run.hook.updates['step'] == 4
    assert run.pruner.sparsity() == pytest.approx(0.75, abs=1e-5)
    assert ppseg_state.read_state(str(tmp_path / 'iter_8')) == {'iteration': 8}
    resumed = paddle.load(str(tmp_path / 'iter_8' / 'model.pdparams'))
    uninterrupted = paddle.load(str(full_dir / 'iter_8' / 'model.pdparams'))
    assert resumed.keys() == uninterrupted.keys()
    for name, value in uninterrupted.items():  # every weight and BN statistic, bit for bit
        np.testing.assert_array_equal(resumed[name].numpy(), value.numpy(), err_msg=name)


def test_demo_command_alone_generates_the_data_and_trains(tmp_path):
    """`python tools/train.py -c <demo config>` on a machine without the data."""
    env = dict(os.environ, PRUNE_PLUGIN_DATA=str(tmp_path / 'data'), OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'train.py'), '-c', DEMO, '--iters', '2',
         '--batch_size', '2', '--save_interval', '2', '--save_dir', str(tmp_path / 'out')],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    root = tmp_path / 'data' / ppseg_data.DEMO_NAME
    assert ppseg_data.is_complete(str(root))
    assert len((root / 'train.txt').read_text().splitlines()) == 64
    assert (tmp_path / 'out' / 'iter_2' / 'model.pdparams').is_file()
    assert 'rank 0: iteration 2' in result.stdout


def test_block2x1_holds_in_every_checkpoint(tmp_path):
    run = train(DEMO_2X1, tmp_path, '--iters', '6', '--save_interval', '3', opts=NO_AUGMENT)
    total = sum(p.param.size for p in run.pruner.params)
    for it in (3, 6):
        zeros = zeros_of(tmp_path / f'iter_{it}' / 'model.pdparams')
        budget = round(run.pruner.ratio_at(it - 1) * total)
        assert budget - 2 < sum(int(z.sum()) for z in zeros.values()) <= budget
        for name, z in zeros.items():
            pairs = z[:, :, 0, 0].reshape(-1, 2, z.shape[1])  # all out-channel counts are even
            assert np.array_equal(pairs[:, 0], pairs[:, 1]), name


def test_amp_fp16_path_keeps_exact_zeros(tmp_path):
    """--precision fp16: core.train calls scaler.minimize(optimizer, ...), never optimizer.step.

    On this CPU build Paddle disables the GradScaler (it runs on GPU/XPU/custom places only):
    scaler.minimize then calls optimizer.minimize directly. The hook steps the pruner after
    each minimize; test_ppseg_compat forces the enabled scaler's unscale path on CPU too.
    """
    run = train(DEMO, tmp_path, '--iters', '4', '--save_interval', '4', '--precision', 'fp16',
                opts=NO_AUGMENT)
    assert run.hook.updates == {'step': 0, 'minimize': 4}
    total = sum(p.param.size for p in run.pruner.params)
    zeros = zeros_of(tmp_path / 'iter_4' / 'model.pdparams')
    assert sum(int(z.sum()) for z in zeros.values()) == round(run.pruner.ratio_at(3) * total)
    if not paddle.is_compiled_with_cuda():
        assert paddle.amp.GradScaler(init_loss_scaling=1024)._enable is False


def test_eval_and_export_keep_the_sparse_weights(gmp_run, tmp_path):
    _, save_dir = gmp_run
    checkpoint = str(save_dir / 'iter_8' / 'model.pdparams')
    result = ppseg.evaluate_checkpoint(ppseg.eval_parser().parse_args(
        ['-c', DEMO, '--model_path', checkpoint]))
    assert result['sparsity'] == pytest.approx(0.75, abs=1e-5)
    assert 0.0 < result['miou'] <= 1.0
    assert ppseg.export_main(['-c', DEMO, '--model_path', checkpoint, '--save_dir',
                              str(tmp_path), '--input_shape', '1', '3', '64', '64']) == 0
    assert os.path.isfile(tmp_path / 'deploy.yaml')
    exported = paddle.jit.load(str(tmp_path / 'model'))
    saved = [v.numpy() for v in paddle.load(checkpoint).values() if v.ndim == 4]
    exported_convs = [v.numpy() for v in exported.state_dict().values() if v.ndim == 4]
    for value in exported_convs:  # every exported conv weight is a checkpoint weight, bit for bit
        assert any(s.shape == value.shape and np.array_equal(s, value) for s in saved)
    counts = exported_zero_counts(str(tmp_path / 'model'))
    assert counts['conv'] == (sum(int((v == 0).sum()) for v in exported_convs),
                              sum(v.size for v in exported_convs))
    # the 10 never-called 1x1 convs of PP-HumanSeg-Lite (80352 weights) are not exported
    live = {k: v for k, v in zeros_of(checkpoint).items() if not DEAD_BRANCH.match(k)}
    assert counts['conv1x1'] == (sum(int(z.sum()) for z in live.values()), 195384 - 80352)
