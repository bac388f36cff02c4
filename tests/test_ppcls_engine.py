"""The Engine adapter on PaddleClas's own ``Engine`` from a source checkout.

The paddleclas wheel has no Engine, so this needs ``PADDLECLAS_SRC=/path/to/PaddleClas`` (a git
checkout); without it the test is skipped and says so. Verified with PaddleClas d178931fc
(develop, 2025) on paddlepaddle 3.3.1 CPU.
"""
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from test_ppcls_train import DEMO, REPO, conv1x1_zeros, plain_ppcls_model

SRC = os.environ.get('PADDLECLAS_SRC')
pytestmark = pytest.mark.skipif(
    not (SRC and os.path.isfile(os.path.join(SRC, 'ppcls', 'engine', 'engine.py'))),
    reason="needs a PaddleClas source checkout: set PADDLECLAS_SRC (the wheel has no Engine)")

RUNNER = """
import sys
sys.path.insert(0, {src!r}); sys.path.insert(0, {repo!r})
import prune_plugin
from ppcls.utils import config
from ppcls.engine.engine import Engine
cfg = config.get_config({demo!r}, overrides=sys.argv[1:], show=False)
cfg.profiler_options = None
engine = Engine(cfg, mode='train')
from prune_plugin.adapters.ppcls_engine_adapter import attach_pruner; pruner = attach_pruner(engine)
engine.train()
print('ENGINE_RESULT', pruner.iteration, repr(pruner.sparsity()))
"""


NO_STABLE_PHASE = ['UnstructuredPrune.gmp.stable_epochs=0']  # prune from the first epoch


def run_engine(tmp_path, epochs, *extra):
    script = tmp_path / 'run_engine.py'
    script.write_text(RUNNER.format(src=SRC, repo=REPO, demo=DEMO))
    out = tmp_path / 'out'
    cmd = [sys.executable, str(script), f"Global.epochs={epochs}", f"Global.output_dir={out}",
           'Arch.name=MobileNetV1_x0_25', 'Global.eval_interval=100', *NO_STABLE_PHASE, *extra]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith('ENGINE_RESULT')][-1]
    _, iteration, sparsity = line.split()
    return int(iteration), float(sparsity), out


def test_engine_trains_sparse_and_resumes_the_schedule(tmp_path):
    from prune_plugin.adapters.ppcls_config import load_config, validate_config
    from prune_plugin.core import gmp_ratio_at
    from prune_plugin.core.schedule import GMPSchedule

    steps = 20  # 1258 images, batch 64
    iteration, sparsity, out = run_engine(tmp_path, 1)
    spec = validate_config(load_config(DEMO, NO_STABLE_PHASE))
    schedule = GMPSchedule.from_configs(spec.ratio, spec.gmp_configs(steps))
    assert iteration == steps
    zeros, total = conv1x1_zeros(plain_ppcls_model(str(out / 'latest')))
    assert zeros == round(gmp_ratio_at(steps - 1, schedule) * total) == round(sparsity * total)

    iteration, sparsity, out = run_engine(tmp_path, 2, f"Global.checkpoints={out / 'latest'}")
    assert iteration == 2 * steps  # continued from 20, not restarted at 0
    zeros, total = conv1x1_zeros(plain_ppcls_model(str(out / 'latest')))
    assert zeros == round(gmp_ratio_at(2 * steps - 1, schedule) * total)
    assert np.isclose(sparsity, zeros / total)


def test_engine_with_ema_saves_exactly_sparse_ema_weights(tmp_path):
    iteration, sparsity, out = run_engine(tmp_path, 1, 'EMA.decay=0.9')
    # with EMA on, PaddleClas saves the EMA copy as .pdparams and the raw weights as .pdema
    ema_zeros, total = conv1x1_zeros(plain_ppcls_model(str(out / 'latest')))
    raw = paddle.load(str(out / 'latest.pdema'))
    raw_zeros = sum(int((v.numpy() == 0).sum()) for k, v in raw.items()
                    if len(v.shape) == 4 and tuple(v.shape[2:]) == (1, 1))
    assert iteration == 20
    assert ema_zeros == raw_zeros == round(sparsity * total) > 0
