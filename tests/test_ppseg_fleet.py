"""PaddleSeg with 2 processes: ``paddle.distributed.launch --nproc_per_node 2 tools/train.py``."""
import os
import re
import subprocess
import sys

import paddle

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
DEMO = os.path.join(ROOT, 'configs', 'ppseg', 'pphumanseg_lite_prune_demo.yml')
DIGEST = re.compile(r"\[prune_plugin\] rank (\d): iteration (\d+), sparsity ([\d.]+)% .* "
                    r"masks sha1 ([0-9a-f]+)")


def test_two_processes_train_with_identical_masks(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', '2',
           '--log_dir', str(tmp_path / 'log'), os.path.join(ROOT, 'tools', 'train.py'),
           '-c', DEMO, '--iters', '6', '--batch_size', '2', '--save_interval', '3',
           '--log_iters', '3', '--save_dir', str(tmp_path / 'out'), '-o',
           'UnstructuredPrune.gmp.stable_iterations=0',
           'UnstructuredPrune.gmp.pruning_iterations=4',
           'UnstructuredPrune.gmp.tunning_iterations=2', 'UnstructuredPrune.gmp.pruning_steps=2']
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    logs = {}
    for rank in (0, 1):
        with open(tmp_path / 'log' / f'workerlog.{rank}') as f:
            logs[rank] = f.read()
    assert result.returncode == 0, result.stderr[-2000:] + logs[0][-2000:] + logs[1][-2000:]
    summaries = {}
    for rank, text in logs.items():
        found = DIGEST.findall(text)
        assert len(found) == 1, text[-2000:]
        summaries[int(found[0][0])] = found[0][1:]
    assert set(summaries) == {0, 1}
    assert summaries[0] == summaries[1]  # same iteration, sparsity and mask hash on both ranks
    assert summaries[0][:2] == ('6', '75.00')
    state = paddle.load(str(tmp_path / 'out' / 'iter_6' / 'model.pdparams'))
    weights = [v.numpy() for v in state.values() if v.ndim == 4 and tuple(v.shape[2:]) == (1, 1)]
    total = sum(w.size for w in weights)
    assert sum(int((w == 0).sum()) for w in weights) == round(0.75 * total)
