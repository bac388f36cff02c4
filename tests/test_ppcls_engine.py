"""The pruner on a real PaddleClas clone's ``Engine`` (optional: ``PADDLECLAS_SRC``).

The paddleclas wheel has no Engine, so these tests need ``PADDLECLAS_SRC=/path/to/PaddleClas``
(a clone of develop or release/2.5.2); without it they are skipped and say so. Set to a folder
that is not a clone, they fail. The same paths run in CI on the miniature clone of
``tests/test_ppcls_clone_engine.py``. Run by hand on develop d178931fc and release/2.5.2
c1325704c, paddlepaddle 3.3.1 CPU (docs/real-checkouts/ppcls.md); about 2 min per clone.
"""
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from ppcls_helpers import conv1x1_items, run, zero_positions_digest
from test_ppcls_train import DEMO, REPO, conv1x1_zeros, plain_ppcls_model

SRC = os.environ.get('PADDLECLAS_SRC')
pytestmark = pytest.mark.skipif(not SRC, reason="set PADDLECLAS_SRC to a PaddleClas clone to run "
                                                "these (the paddleclas wheel has no Engine)")

RUNNER = """
import sys
sys.path.insert(0, {src!r}); sys.path.insert(0, {repo!r})
from ppcls.utils import config
from ppcls.engine.engine import Engine
cfg = config.get_config({demo!r}, overrides=sys.argv[1:], show=False)
cfg.profiler_options = None
engine = Engine(cfg, mode='train')
from prune_plugin.ppcls import attach_pruner; pruner = attach_pruner(engine)
engine.train()
print('ENGINE_RESULT', pruner.iteration, repr(pruner.sparsity()))
"""
NO_STABLE_PHASE = ['UnstructuredPrune.gmp.stable_epochs=0']  # prune from the first epoch
STEPS = 20  # 1258 images, batch 64


@pytest.fixture(autouse=True, scope='module')
def digits_data():
    """The demo config's ./data/digits (the clone's Engine reads it, it does not generate it)."""
    from prune_plugin.demo_data.ppcls_data import ensure_digits
    return ensure_digits()


def test_paddleclas_src_is_a_clone():
    assert os.path.isfile(os.path.join(SRC, 'ppcls', 'engine', 'engine.py')), \
        f"PADDLECLAS_SRC={SRC} is not a PaddleClas clone (no ppcls/engine/engine.py)"


def run_engine(tmp_path, epochs, *extra):
    """The clone's own train script with the hook line (as in tools/train.py)."""
    script = tmp_path / 'run_engine.py'
    script.write_text(RUNNER.format(src=SRC, repo=REPO, demo=DEMO))
    out = tmp_path / 'out'
    cmd = [sys.executable, str(script), f"Global.epochs={epochs}", f"Global.output_dir={out}",
           'Arch.name=MobileNetV1_x0_25', 'Global.eval_interval=100', *NO_STABLE_PHASE, *extra]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith('ENGINE_RESULT')][-1]
    _, iteration, sparsity = line.split()
    return int(iteration), float(sparsity), out


def expected_ratio(iteration):
    from prune_plugin.adapters.ppcls.config import load_config, validate_config
    from prune_plugin.core import gmp_ratio_at
    from prune_plugin.core.schedule import GMPSchedule

    spec = validate_config(load_config(DEMO, NO_STABLE_PHASE))
    return gmp_ratio_at(iteration - 1, GMPSchedule.from_configs(spec.ratio,
                                                                spec.gmp_configs(STEPS)))


def test_engine_trains_sparse_and_resumes_the_schedule(tmp_path):
    iteration, sparsity, out = run_engine(tmp_path, 1)
    assert iteration == STEPS
    zeros, total = conv1x1_zeros(plain_ppcls_model(str(out / 'latest')))
    assert zeros == round(expected_ratio(STEPS) * total) == round(sparsity * total)
    state = paddle.load(str(out / 'latest.pdopt'))
    assert state[0]['prune_plugin.pruner'] == {'iteration': STEPS}

    iteration, sparsity, out = run_engine(tmp_path, 2, f"Global.checkpoints={out / 'latest'}")
    assert iteration == 2 * STEPS  # continued from 20, not restarted at 0
    zeros, total = conv1x1_zeros(plain_ppcls_model(str(out / 'latest')))
    assert zeros == round(expected_ratio(2 * STEPS) * total)
    assert np.isclose(sparsity, zeros / total)


def test_engine_with_ema_saves_exactly_sparse_ema_weights(tmp_path):
    iteration, sparsity, out = run_engine(tmp_path, 1, 'EMA.decay=0.9')
    # develop saves the EMA copy as .pdparams and the model as .pdema; 2.5.2 the model as
    # .pdparams and the EMA copy as .ema.pdparams
    if (out / 'latest.pdema').is_file():
        model_file, ema_file = out / 'latest.pdema', out / 'latest.pdparams'
    else:
        model_file, ema_file = out / 'latest.pdparams', out / 'latest.ema.pdparams'
    model = [a for _, a in conv1x1_items(paddle.load(str(model_file)))]
    ema = [a for _, a in conv1x1_items(paddle.load(str(ema_file)))]
    total = sum(a.size for a in model)
    assert iteration == STEPS
    assert sum(int((a == 0).sum()) for a in ema) == round(sparsity * total) > 0
    assert zero_positions_digest(ema) == zero_positions_digest(model)


def test_prune_train_with_paddleclas_src_runs_the_clone_engine(tmp_path):
    result = run(['prune-train', '-c', DEMO, '-o', 'Global.epochs=1',
                  f"Global.output_dir={tmp_path / 'out'}", 'Arch.name=MobileNetV1_x0_25',
                  'Global.eval_interval=100', *(f"{o}" for o in NO_STABLE_PHASE)], REPO,
                 PADDLECLAS_SRC=SRC)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"(clone {os.path.abspath(SRC)})" in result.stdout
    assert "[prune_plugin] attached to PaddleClas's Engine" in result.stdout
    zeros, total = conv1x1_zeros(plain_ppcls_model(str(tmp_path / 'out' / 'latest')))
    assert zeros == round(expected_ratio(STEPS) * total)
