"""A PaddleSeg user's checkout (``tests/seg_checkout.py``: ``_base_`` chains, MixedLoss, the usual
augmentations, no folder named after the suite) trained as users do:

* ``prune-train`` / ``prune-eval`` / ``prune-export`` run from the checkout (not this repo);
* the checkout's own ``tools/train.py`` with the plugin's hook line, then resumed with it;
* a clone layout whose ``paddleseg/`` package (a copy of the installed one, marked) must win;
* bad command lines: one line on stderr, exit 2, nothing written;
* optional, when ``$PADDLESEG_SRC`` names a real PaddleSeg clone: its contrib PP-HumanSeg-Lite
  config with a prune block on tiny data.

Exact figures: PP-HumanSeg-Lite has 195384 1x1-conv weights; the checkout's GMP gives 67.5% at
iteration 3 and 75% at 6, so ``iter_3`` holds round(0.675 N) zeros and ``iter_6`` round(0.75 N).
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import paddle
import pytest
import yaml

import seg_checkout
from prune_plugin import cli
from prune_plugin.adapters.ppseg import state as ppseg_state
from prune_plugin.adapters.ppseg.export import exported_zero_counts
from prune_plugin.demo_data import ppseg_data

BIN = os.path.dirname(sys.executable)
N = seg_checkout.CONV1X1_WEIGHTS
AT = {3: round(0.675 * N), 6: round(0.75 * N)}
PLAN = ("GMPUnstructuredPruner on 195384 weights in 40 parameters: GMP from the first step, "
        "ratio 0.15 rising to 0.75 in 2 steps of 2 iterations; target reached at iteration 4")
RESULT = "75.00% of the prunable weights pruned at iteration 6 (target 75%)"


REAL_CLONE = os.environ.get('PADDLESEG_SRC')


@pytest.fixture(autouse=True)
def installed_paddleseg(monkeypatch):
    """Outside a clone the installed paddleseg runs (the real-clone test names its clone)."""
    monkeypatch.delenv('PADDLESEG_SRC', raising=False)


def run(args, cwd, **env):
    """Run a command; ``$PADDLESEG_SRC`` only when given in ``env``."""
    base = {k: v for k, v in os.environ.items() if k != 'PADDLESEG_SRC'}
    return subprocess.run(args, cwd=str(cwd), capture_output=True, text=True, timeout=900,
                          env={**base, 'OMP_NUM_THREADS': '1', **env})


def conv1x1_zeros(path):
    state = paddle.load(str(path))
    return {k: v.numpy() == 0 for k, v in state.items()
            if v.ndim == 4 and tuple(v.shape[2:]) == (1, 1)}


def count(zeros):
    return sum(int(z.sum()) for z in zeros.values())


def assert_checkpoint(folder, iteration, ema=True):
    """``folder`` holds exactly the schedule's zeros, its EMA the same positions, and the state."""
    model = conv1x1_zeros(folder / 'model.pdparams')
    assert len(model) == seg_checkout.CONV1X1_PARAMS and count(model) == AT[iteration]
    if ema:
        ema_zeros = conv1x1_zeros(folder / 'ema_model.pdparams')
        assert all(np.array_equal(model[k], ema_zeros[k]) for k in model)
    assert ppseg_state.read_state(str(folder)) == {'iteration': iteration}


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    return seg_checkout.write_checkout(tmp_path_factory.mktemp('user_seg_project'))


@pytest.fixture(scope='module')
def cli_run(checkout):
    result = run([os.path.join(BIN, 'prune-train'), '--config', seg_checkout.MIXED_SPARSE,
                  '--device', 'cpu', '--do_eval', '--use_ema', '--save_interval', '3',
                  '--log_iters', '3', '--seed', '0', '--save_dir', 'output/mixed'], checkout)
    return result, checkout / 'output' / 'mixed'


def test_prune_train_in_a_user_checkout_reaches_the_exact_target(cli_run):
    result, out = cli_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "PaddleSeg 2.8.0: paddleseg from " in result.stdout
    assert "(installed package)" in result.stdout
    assert "fixed CrossEntropyLoss (prune_plugin" in result.stdout  # nested in the MixedLoss
    assert PLAN in result.stdout and result.stdout.count(RESULT) == 1
    assert_checkpoint(out / 'iter_3', 3)
    assert_checkpoint(out / 'iter_6', 6)
    for best, name in (('best_model', 'model.pdparams'), ('ema_best_model', 'ema_model.pdparams')):
        zeros = conv1x1_zeros(out / best / name)
        assert count(zeros) in (AT[3], AT[6])  # a copy of iteration 3 or 6, whichever was best
        it = 3 if count(zeros) == AT[3] else 6
        model = conv1x1_zeros(out / f'iter_{it}' / 'model.pdparams')
        assert all(np.array_equal(zeros[k], model[k]) for k in zeros)


def test_prune_eval_and_export_keep_the_checkpoint_zeros(cli_run, checkout, tmp_path):
    _, out = cli_run
    weights = str(out / 'iter_6' / 'model.pdparams')
    result = run([os.path.join(BIN, 'prune-eval'), '--config', seg_checkout.MIXED_SPARSE,
                  '--device', 'cpu', '--model_path', weights], checkout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (f"{weights}: 75.00% of the 195384 weights the 'UnstructuredPrune' block prunes are "
            "zero") in result.stdout
    assert "[EVAL] #Images: 4 mIoU: " in result.stdout and 'WARNING' not in result.stdout
    infer = tmp_path / 'infer'
    result = run([os.path.join(BIN, 'prune-export'), '--config', seg_checkout.MIXED_SPARSE,
                  '--model_path', weights, '--save_dir', str(infer), '--input_shape', '1', '3',
                  '64', '64'], checkout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    deploy = yaml.safe_load((infer / 'deploy.yaml').read_text())['Deploy']
    assert (infer / deploy['model']).is_file() and (infer / deploy['params']).is_file()
    assert deploy['transforms'] == [{'type': 'Normalize'}]
    saved = [v.numpy() for v in paddle.load(weights).values() if v.ndim == 4]
    exported = [np.asarray(v) for v in paddle.jit.load(str(infer / 'model')).state_dict().values()
                if np.asarray(v).ndim == 4]
    matched = []
    for value in exported:  # every exported conv weight is a checkpoint weight, bit for bit
        match = [i for i, s in enumerate(saved) if s.shape == value.shape and
                 np.array_equal(s, value) and i not in matched]
        assert match
        matched.append(match[0])
    counts = exported_zero_counts(str(infer / 'model'))
    assert counts['conv1x1'][0] == sum(int((saved[i] == 0).sum()) for i in matched
                                       if saved[i].shape[2:] == (1, 1))
    assert counts['conv1x1'][0] > 0


def test_dense_weights_under_a_prune_block_are_named_dense(checkout, monkeypatch, capsys):
    """prune-eval of a config with a block, on weights no pruner touched (its initial ones)."""
    monkeypatch.chdir(checkout)
    assert cli.run('eval', ['--config', seg_checkout.MIXED_SPARSE, '--device', 'cpu']) == 0
    out = capsys.readouterr().out
    assert ("the config's weights: 0.00% zeros, below the 'UnstructuredPrune' block's target 75%: "
            "they are dense: trained without the pruner attached") in out


def test_a_run_shorter_than_the_schedule_says_so_at_start_and_end(checkout, tmp_path,
                                                                  monkeypatch, capsys):
    monkeypatch.chdir(checkout)
    assert cli.run('train', ['--config', seg_checkout.MIXED_SPARSE, '--device', 'cpu',
                             '--iters', '2', '--save_interval', '2', '--save_dir',
                             str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("[WARNING]\t[prune_plugin] the run ends at iteration 2 with 15.0% of the prunable "
            "weights pruned, below the target 75%: GMP needs 4 iterations") in out
    assert ("15.00% of the prunable weights pruned at iteration 2 (target 75%) (below the "
            "target: the schedule did not finish)") in out
    assert count(conv1x1_zeros(tmp_path / 'iter_2' / 'model.pdparams')) == round(0.15 * N)


def test_the_hook_line_in_the_checkouts_tools_train_py_trains_and_resumes(checkout):
    script = [sys.executable, 'tools/train.py', '--config', seg_checkout.DICE_SPARSE, '--device',
              'cpu', '--save_interval', '3', '--log_iters', '3', '--use_ema', '--seed', '0']
    result = run(script + ['--save_dir', 'output/hook'], checkout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "fixed CrossEntropyLoss, DiceLoss" in result.stdout and RESULT in result.stdout
    out = checkout / 'output' / 'hook'
    assert_checkpoint(out / 'iter_3', 3)
    assert_checkpoint(out / 'iter_6', 6)
    resumed = checkout / 'output' / 'hook_resumed'
    shutil.copytree(out / 'iter_3', resumed / 'iter_3')
    result = run(script + ['--save_dir', str(resumed), '--resume_model',
                           str(resumed / 'iter_3')], checkout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "pruner resumed at iteration 3, sparsity 67.50%" in result.stdout
    assert "resuming at iteration 3" in result.stdout and RESULT in result.stdout
    assert_checkpoint(resumed / 'iter_6', 6)


def test_the_package_of_a_clone_wins_over_the_installed_one(checkout, tmp_path):
    import paddleseg
    clone = tmp_path / 'PaddleSeg'
    shutil.copytree(os.path.dirname(paddleseg.__file__), clone / 'paddleseg',
                    ignore=shutil.ignore_patterns('__pycache__'))
    marker = tmp_path / 'the_clone_ran'
    with open(clone / 'paddleseg' / '__init__.py', 'a') as f:
        f.write(f"\nopen({str(marker)!r}, 'w').close()\n")
    for folder in ('configs', 'data'):
        shutil.copytree(checkout / folder, clone / folder)
    result = run([os.path.join(BIN, 'prune-train'), '--config', seg_checkout.MIXED_SPARSE,
                  '--device', 'cpu', '--iters', '3', '--save_interval', '3', '--save_dir',
                  'output'], clone)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert marker.exists()
    assert f"paddleseg from {clone / 'paddleseg'} (clone {clone})" in result.stdout
    assert_checkpoint(clone / 'output' / 'iter_3', 3, ema=False)


def one_line_error(command, argv, capsys):
    code = cli.run(command, argv)
    err = capsys.readouterr().err
    assert code == 2 and 'Traceback' not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize('command, extra, message', [
    ('train', ['--bogus'], "error: prune-train: unrecognized arguments: --bogus"),
    ('train', ['--use_multilabel'], "error: --use_multilabel needs paddleseg >= 2.9 "
                                    "(evaluate(..., use_multilabel)); the paddleseg running is "
                                    "2.8.0 from "),
    ('train', ['--data_format', 'NHWC'], "error: --data_format NHWC: paddleseg supports it for "
                                         "DeepLabV3P only, the config's model is PPHumanSegLite"),
    ('train', ['--batch_size', '16'], "error: batch_size=16 is not allowed: expected a batch "
                                      "size the dataset (8 samples per process) can fill at "
                                      "least once: 0 steps per epoch"),
    ('train', ['-o', 'UnstructuredPrune.gmp.pruning_stepz=2'],
     "error: UnstructuredPrune.gmp.pruning_stepz=2 is not allowed"),
    ('train', ['--opts', 'train_dataset.nothere.x=1'], "error: "),
    ('eval', ['--crop_size', '64'], "error: prune-eval: argument --crop_size: expected 2 "
                                    "arguments"),
    ('export', ['--input_shape', '1', '3', '64'], "error: --input_shape 1 3 64: expected 4 "
                                                  "values N C H W, e.g. --input_shape 1 3 192 "
                                                  "192"),
])
def test_bad_command_lines_stop_in_one_line(checkout, monkeypatch, capsys, command, extra,
                                            message):
    monkeypatch.chdir(checkout)
    common = {'train': ['--device', 'cpu', '--save_dir', 'output/refused'],
              'eval': ['--device', 'cpu'], 'export': ['--save_dir', 'output/refused']}[command]
    line = one_line_error(command, ['--config', seg_checkout.MIXED_SPARSE, *common, *extra],
                          capsys)
    assert line.startswith(message)
    if extra[0] == '--opts':
        assert line.endswith("Can not update train_dataset.nothere.x, because it is not in "
                             "config.")
    assert not (checkout / 'output' / 'refused').exists()


def test_a_pruner_state_that_is_not_ours_stops_the_resume_in_one_line(checkout, tmp_path,
                                                                      monkeypatch, capsys):
    folder = tmp_path / 'iter_3'
    folder.mkdir()
    (folder / ppseg_state.STATE_NAME).write_text('{"iteration": "three"}')
    monkeypatch.chdir(checkout)
    line = one_line_error('train', ['--config', seg_checkout.MIXED_SPARSE, '--device', 'cpu',
                                    '--resume_model', str(folder), '--save_dir',
                                    str(tmp_path / 'out')], capsys)
    assert line == (f"error: {folder / ppseg_state.STATE_NAME}={{'iteration': 'three'}} is not "
                    "allowed: expected a JSON object {\"iteration\": int}")
    assert not (tmp_path / 'out').exists()


def test_an_unknown_flag_is_one_line_from_the_installed_command(checkout):
    result = run([os.path.join(BIN, 'prune-train'), '--config', seg_checkout.MIXED_SPARSE,
                  '--fp16'], checkout)
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and 'ccache' not in line and 'warnings.warn' not in line]
    assert result.returncode == 2
    assert lines == ["error: prune-train: unrecognized arguments: --fp16"]


@pytest.mark.skipif(not REAL_CLONE, reason="set PADDLESEG_SRC to a PaddleSeg clone (release/2.8 "
                                           "or release/2.9) to train its contrib config")
def test_real_clone_contrib_pp_humanseg_lite_trains_exactly_sparse(tmp_path):
    """The clone's ``contrib/PP-HumanSeg/configs/human_pp_humansegv1_lite.yml`` (MixedLoss of
    CrossEntropyLoss + LovaszSoftmaxLoss, its own augmentations) with a prune block, 64x64 data
    resized by its transforms to 192; run from a folder outside the clone."""
    base = os.path.join(REAL_CLONE, 'contrib', 'PP-HumanSeg', 'configs',
                        'human_pp_humansegv1_lite.yml')
    data = ppseg_data.ensure_portrait_dataset(str(tmp_path / 'data'), num_train=8, num_val=4,
                                              size=64)
    config = tmp_path / 'humanseg_lite_sparse.yml'
    config.write_text(yaml.safe_dump({
        '_base_': base, 'batch_size': 2, 'iters': 6,
        'train_dataset': {'dataset_root': data, 'train_path': os.path.join(data, 'train.txt')},
        'val_dataset': {'dataset_root': data, 'val_path': os.path.join(data, 'val.txt')},
        'model': {'pretrained': None},
        'slim': 'UnstructuredPrune',
        'UnstructuredPrune': {'ratio': 0.75, 'prune_params_type': 'conv1x1_only',
                              'gmp': {'stable_iterations': 0, 'pruning_iterations': 4,
                                      'tunning_iterations': 2, 'pruning_steps': 2,
                                      'initial_ratio': 0.15}}}))
    clone_env = {'PADDLESEG_SRC': REAL_CLONE, 'PYTHONDONTWRITEBYTECODE': '1'}
    result = run([os.path.join(BIN, 'prune-train'), '--config', str(config), '--device', 'cpu',
                  '--do_eval', '--use_ema', '--save_interval', '3', '--save_dir', 'out'],
                 tmp_path, **clone_env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"(clone {os.path.abspath(REAL_CLONE)})" in result.stdout and RESULT in result.stdout
    assert_checkpoint(tmp_path / 'out' / 'iter_3', 3)
    assert_checkpoint(tmp_path / 'out' / 'iter_6', 6)
    result = run([os.path.join(BIN, 'prune-eval'), '--config', str(config), '--device', 'cpu',
                  '--model_path', 'out/iter_6/model.pdparams'], tmp_path, **clone_env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "75.00% of the 195384 weights" in result.stdout and 'mIoU' in result.stdout
