"""Two data-parallel processes (``paddle.distributed.launch``, CPU/gloo) keep identical masks."""
import os
import re
import subprocess
import sys

import paddle

from ppcls_helpers import conv1x1_items, zero_positions_digest
from test_ppcls_train import DEMO, REPO, lists, overrides_for  # noqa: F401  (lists: fixture)


def test_two_processes_keep_identical_masks(lists, tmp_path):
    overrides = overrides_for(lists, tmp_path / 'out', 1, [
        'UnstructuredPrune.gmp={stable_iterations: 0, pruning_iterations: 2, '
        'tunning_iterations: 1, pruning_steps: 2, initial_ratio: 0.3}'])
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    log_dir = tmp_path / 'logs'
    cmd = [sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', '2',
           '--log_dir', str(log_dir), os.path.join(REPO, 'tools', 'train.py'), '-c', DEMO,
           '-o', *overrides]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    logs = {rank: (log_dir / f"workerlog.{rank}").read_text() for rank in (0, 1)}
    assert proc.returncode == 0, proc.stdout[-2000:] + logs[0][-2000:] + logs[1][-2000:]
    digests = {}
    for rank, text in logs.items():
        found = re.findall(rf"rank {rank}: pruner iteration (\d+), sparsity ([\d.]+), "
                           r"mask sha1 ([0-9a-f]{40})", text)
        assert len(found) == 1, text[-2000:]
        digests[rank] = found[0]
    # 160 images per process at batch 64: 3 updates; the ratio reached 0.75 at the last one
    assert digests[0] == digests[1]
    assert digests[0][0] == '3' and digests[0][1] == '0.750000'
    # rank 0 saved the checkpoint: exactly 75% of its 1x1 weights are zero, at the positions
    # both ranks hold as pruned
    state = paddle.load(str(tmp_path / 'out' / 'MobileNetV1_x0_25' / 'epoch_1.pdparams'))
    weights = [array for _, array in conv1x1_items(state)]
    total = sum(w.size for w in weights)
    assert sum(int((w == 0).sum()) for w in weights) == round(0.75 * total)
    assert zero_positions_digest(weights) == digests[0][2]
