"""``python -m prune_plugin.static_demo train|evaluate``: flags, resume, MNIST files, 2 ranks."""
import gzip
import os
import pickle
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from prune_plugin.static_demo.__main__ import main

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
DEMO_FILE = os.path.join(ROOT, 'prune_plugin', 'static_demo', '__main__.py')
RANK_LINE = re.compile(r"\[static_demo\] rank (\d): iteration (\d+), prunable sparsity "
                       r"([\d.]+)%, masks sha1 (\w+), weights sha1 (\w+), last epoch's mean "
                       r"loss on this rank's batches ([\d.]+)")
FINAL_LINE = re.compile(r"final: top-1 ([\d.]+)%, top-5 ([\d.]+)%, total sparsity ([\d.]+)%")
GMP = ['--pruning_strategy', 'gmp', '--ratio', '0.6', '--pruning_epochs', '2',
       '--tunning_epochs', '1', '--pruning_steps', '4', '--initial_ratio', '0.2',
       '--num_epochs', '3', '--test_period', '3', '--model_period', '1', '--log_period', '1000',
       '--batch_size', '128']  # 1437 // 128 = 11 steps per epoch


def demo(*args, launch=None, timeout=240, legacy_ir=False):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('FLAGS_enable_pir_api', None)
    if legacy_ir:
        env['FLAGS_enable_pir_api'] = '0'
    cmd = [sys.executable, '-m', 'prune_plugin.static_demo', *args]
    if launch:
        cmd = [sys.executable, '-m', 'paddle.distributed.launch', *launch, DEMO_FILE, *args]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    return result


def files_under(folder):
    return sorted((os.path.relpath(os.path.join(d, f), folder),
                   os.path.getmtime(os.path.join(d, f)))
                  for d, _, names in os.walk(folder) for f in names)


@pytest.fixture(scope='module')
def gmp_runs(tmp_path_factory):
    """3 epochs of GMP in one go, and the same resumed from the first run's epoch_0."""
    base = tmp_path_factory.mktemp('static_demo')
    whole = demo('train', *GMP, '--model_path', str(base / 'whole'))
    assert whole.returncode == 0, whole.stderr[-3000:]
    resumed = demo('train', *GMP, '--model_path', str(base / 'resumed'), '--checkpoint',
                   str(base / 'whole' / 'epoch_0'), '--last_epoch', '0')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return base, whole.stdout, resumed.stdout


def test_resume_with_checkpoint_and_last_epoch_equals_uninterrupted(gmp_runs):
    base, whole, resumed = gmp_runs
    assert 'resumed from' in resumed and 'at epoch 1, iteration 11' in resumed
    ranks = [RANK_LINE.search(text).groups() for text in (whole, resumed)]
    assert ranks[0] == ranks[1]  # iteration, sparsity, masks, weights, loss
    assert ranks[0][1:3] == ('33', '60.00')
    finals = [FINAL_LINE.search(text).groups() for text in (whole, resumed)]
    assert finals[0] == finals[1]
    saved = [pickle.load(open(base / run / 'epoch_2' / 'model.pdparams', 'rb'))
             for run in ('whole', 'resumed')]
    assert sorted(saved[0]) == sorted(saved[1])
    for name, value in saved[0].items():
        np.testing.assert_array_equal(value, saved[1][name], err_msg=name)
    # the saved weights are sparse: exactly round(0.6 * N) of the 3 conv + fc weights are zero
    prunable = [v for k, v in saved[0].items() if v.ndim >= 2]
    total = sum(v.size for v in prunable)
    assert sum(int((v == 0).sum()) for v in prunable) == round(0.6 * total)


def test_the_legacy_ir_trains_the_same_weights_as_pir(gmp_runs, tmp_path):
    """The same demo run on legacy programs (FLAGS_enable_pir_api=0): bit-identical weights."""
    _, whole, _ = gmp_runs
    legacy = demo('train', *GMP, '--model_path', str(tmp_path / 'legacy'), legacy_ir=True)
    assert legacy.returncode == 0, legacy.stderr[-3000:]
    assert RANK_LINE.search(legacy.stdout).groups() == RANK_LINE.search(whole).groups()
    assert FINAL_LINE.search(legacy.stdout).groups() == FINAL_LINE.search(whole).groups()
    assert (tmp_path / 'legacy' / 'epoch_2' / 'model.pdmodel').is_file()  # legacy format


def test_evaluate_reports_the_trained_accuracy_and_sparsity(gmp_runs):
    base, whole, _ = gmp_runs
    top1, top5, _ = FINAL_LINE.search(whole).groups()
    result = demo('evaluate', '--pruned_model', str(base / 'resumed' / 'epoch_2'))
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(r"17 parameters, total sparsity ([\d.]+)%, top-1 ([\d.]+)%, "
                      r"top-5 ([\d.]+)%", result.stdout)
    assert found, result.stdout
    assert found.group(2, 3) == (top1, top5)
    assert float(top1) > 30.0  # 33 steps on digits, 60% pruned (chance: 10%)


def test_bad_checkpoint_epoch_is_one_line_and_writes_nothing(gmp_runs, tmp_path, capsys):
    base, _, _ = gmp_runs
    out = tmp_path / 'out'
    code = main(['train', *GMP, '--model_path', str(out), '--checkpoint',
                 str(base / 'whole' / 'epoch_0'), '--last_epoch', '1'])
    err = capsys.readouterr().err
    assert code == 2 and err.count('\n') == 1
    assert 'saved after epoch 0 (iteration 11); --last_epoch=1 means iteration 22' in err
    assert not out.exists()


@pytest.mark.parametrize('argv, message', [
    (['train', '--ratio', '1.5'], '--ratio=1.5 must be in [0, 1)'),
    (['train', '--pruning_mode', 'magnitude'], "--pruning_mode='magnitude' must be ratio or"),
    (['train', '--pruning_strategy', 'gmp', '--pruning_mode', 'threshold'], 'needs --pruning'),
    (['train', '--threshold', 'nan'], '--threshold=nan must be a float >= 0'),
    (['train', '--pruning_strategy', 'gmp', '--ratio', '0.1'], '--initial_ratio=0.15 must be'),
    (['train', '--num_epochs', '0'], '--num_epochs=0 must be a positive int'),
    (['train', '--last_epoch', '0'], '--last_epoch=0 needs --checkpoint'),
    (['train', '--last_epoch', '0', '--checkpoint', 'missing'], 'holds no model.pdparams'),
    (['train', '--last_epoch', '5', '--num_epochs', '3'], '--last_epoch=5 must be in [-1, '),
    (['train', '--data', 'cifar'], "--data='cifar' must be one of"),
    (['train', '--data', 'mnist', '--data_dir', 'nowhere'], '--data mnist needs'),
    (['train', '--data', 'imagenet'], '--data imagenet needs --data_dir'),
    (['train', '--prune_params_type', 'conv3x3'], "--prune_params_type='conv3x3' must be"),
    (['train', '--pretrained_model', 'nowhere'], 'holds no .pdparams'),
    (['train', '--is_distributed'], '--is_distributed needs 2+ ranks'),
    (['train', '--no_such_flag'], 'unrecognized arguments: --no_such_flag'),
    (['evaluate', '--pruned_model', 'nowhere'], 'holds no model.pdparams'),
    (['evaluate'], 'the following arguments are required: --pruned_model'),
    (['prune'], "the first argument must be one of ['train', 'evaluate']"),
])
def test_bad_flags_are_one_line_exit_2_before_anything_is_written(argv, message, tmp_path,
                                                                   capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saved = tmp_path / 'models'
    (saved / 'epoch_0').mkdir(parents=True)
    (saved / 'epoch_0' / 'model.pdparams').write_bytes(b'earlier run')
    before = files_under(tmp_path)
    monkeypatch.delenv('PADDLE_TRAINERS_NUM', raising=False)
    assert main(argv + (['--model_path', str(saved)] if argv[0] == 'train' else [])) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: ') and message in err, err
    assert files_under(tmp_path) == before


def test_bad_flag_exit_code_from_the_command_line():
    result = demo('train', '--ratio', '-0.1')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: --ratio=-0.1 must be in [0, 1)"]


def _write_idx(path, array):
    """An MNIST IDX file (gzip): magic, count, [rows, cols], then uint8 values."""
    magic = 2051 if array.ndim == 3 else 2049
    with gzip.open(path, 'wb') as out:
        out.write(struct.pack('>II', magic, array.shape[0]))
        if array.ndim == 3:
            out.write(struct.pack('>II', *array.shape[1:]))
        out.write(array.astype(np.uint8).tobytes())


def test_mnist_from_local_files(tmp_path):
    """The MNIST path on four IDX files written here (200 train / 100 test images: Paddle's
    reader parses in chunks of 100)."""
    rng = np.random.RandomState(0)
    for images_name, labels_name, n in (('train-images-idx3-ubyte.gz',
                                         'train-labels-idx1-ubyte.gz', 200),
                                        ('t10k-images-idx3-ubyte.gz',
                                         't10k-labels-idx1-ubyte.gz', 100)):
        _write_idx(tmp_path / images_name, rng.randint(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / labels_name, rng.randint(0, 10, (n, )))
    result = demo('train', '--data', 'mnist', '--data_dir', str(tmp_path), '--num_epochs', '1',
                  '--batch_size', '16', '--model_path', str(tmp_path / 'out'))
    assert result.returncode == 0, result.stderr[-3000:]
    rank = RANK_LINE.search(result.stdout).groups()
    assert rank[1:3] == ('12', '55.00')  # 200 images // 16 per batch; exactly 55% pruned
    assert (tmp_path / 'out' / 'epoch_0' / 'model.pdparams').is_file()


def test_two_ranks_keep_identical_masks(tmp_path):
    """``paddle.distributed.launch --nproc_per_node 2 ... --is_distributed`` on CPU (gloo):
    each rank trains on its own batches, gradients are averaged, masks and weights agree."""
    result = demo('train', '--is_distributed', '--num_epochs', '1', '--batch_size', '32',
                  '--log_period', '1000', '--model_path', str(tmp_path / 'out'),
                  launch=['--nproc_per_node', '2', '--log_dir', str(tmp_path / 'log')])
    logs = {r: (tmp_path / 'log' / f'workerlog.{r}').read_text() for r in (0, 1)}
    assert result.returncode == 0, logs[0][-3000:] + logs[1][-3000:]
    found = {r: RANK_LINE.search(logs[r]).groups() for r in (0, 1)}
    assert found[0][0] == '0' and found[1][0] == '1'
    assert found[0][1:5] == found[1][1:5]  # iteration, sparsity, masks, weights
    assert found[0][1:3] == ('22', '55.00')  # 1437 // 64 = 22 global steps per epoch
    assert found[0][5] != found[1][5]  # the ranks saw different batches
    assert (tmp_path / 'out' / 'epoch_0' / 'model.pdparams').is_file()
