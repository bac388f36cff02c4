"""PaddleSeg config reading, the demo data, one-line errors and the AMP scaler path.

(The Paddle 3 loss and metric fixes: ``test_ppseg_losses.py``.)"""
import os
import subprocess
import sys

import numpy as np
import paddle
import paddle.amp.grad_scaler as grad_scaler
import pytest
from paddleseg.cvlibs import SegBuilder
from paddleseg.models import PPHumanSegLite

from prune_plugin.adapters.ppseg.attach import OptimizerPruneHook
from prune_plugin.adapters.ppseg.config import PaddleSegInputError, PruneSegConfig
from prune_plugin.core import UnstructuredPruner
from prune_plugin.core.errors import PruneConfigError
from prune_plugin.demo_data import ppseg_data

ROOT = os.path.join(os.path.dirname(__file__), '..')
CONFIGS = os.path.join(ROOT, 'configs', 'ppseg')


def test_config_takes_the_prune_block_out_and_uses_the_demo_data():
    cfg = PruneSegConfig(os.path.join(CONFIGS, 'pphumanseg_lite_prune_demo.yml'),
                         iters=7, opts=['UnstructuredPrune.ratio=0.5'])
    assert cfg.prune_spec.ratio == 0.5 and cfg.prune_spec.prune_params_type == 'conv1x1_only'
    assert cfg.prune_spec.gmp['pruning_iterations'] == 500
    assert 'slim' not in cfg.dic and 'UnstructuredPrune' not in cfg.dic and cfg.iters == 7
    assert cfg.train_dataset_cfg['dataset_root'] == ppseg_data.default_root()
    assert cfg.loss_cfg['types'][0]['type'] == 'CrossEntropyLoss'  # the config is not renamed
    dataset = SegBuilder(cfg).train_dataset  # paddleseg's own Dataset reads the file list
    assert type(dataset).__name__ == 'Dataset' and len(dataset) == 64
    sample = dataset[0]
    assert sample['img'].shape == (3, 64, 64) and set(np.unique(sample['label'])) <= {0, 1}
    block2x1 = PruneSegConfig(os.path.join(CONFIGS, 'pphumanseg_lite_prune_block2x1.yml'))
    assert block2x1.prune_spec.sparse_block == (2, 1) and block2x1.prune_spec.ratio == 0.75


def test_demo_data_is_deterministic(tmp_path):
    a = ppseg_data.ensure_portrait_dataset(tmp_path / 'a', num_train=3, num_val=1, size=32)
    b = ppseg_data.ensure_portrait_dataset(tmp_path / 'b', num_train=3, num_val=1, size=32)
    for name in ('train.txt', 'labels/train_0002.png', 'images/val_0000.jpg'):
        with open(os.path.join(a, name), 'rb') as fa, open(os.path.join(b, name), 'rb') as fb:
            assert fa.read() == fb.read()


def stderr_lines(text):
    """stderr without the lines Paddle itself prints on import (ccache, warnings)."""
    return [line for line in text.splitlines()
            if line.strip() and 'ccache' not in line and 'warnings.warn' not in line]


@pytest.mark.parametrize('entry', ['tools/train.py', 'prune-train'])
def test_bad_prune_block_stops_before_training_in_one_line(tmp_path, entry):
    bad = tmp_path / 'bad.yml'
    bad.write_text(f"_base_: {os.path.join(CONFIGS, 'pphumanseg_lite_prune_demo.yml')}\n"
                   "UnstructuredPrune:\n  ratioo: 0.5\n")
    with pytest.raises(PruneConfigError, match="ratioo.*did you mean 'ratio'"):
        PruneSegConfig(str(bad))
    command = [sys.executable, os.path.join(ROOT, 'tools', 'train.py')] \
        if entry == 'tools/train.py' else [os.path.join(os.path.dirname(sys.executable), entry)]
    result = subprocess.run(command + ['-c', str(bad), '--save_dir', str(tmp_path / 'out')],
                            capture_output=True, text=True, timeout=900, cwd=str(tmp_path),
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 2, result.stderr[-2000:]
    assert stderr_lines(result.stderr) == [
        "error: UnstructuredPrune.ratioo=0.5 is not allowed: expected one of the keys "
        "['mode', 'ratio', 'threshold', 'prune_params_type', 'local_sparsity', 'sparse_block', "
        "'sparse_pattern', 'prune_params', 'skip_params', 'gmp']; did you mean 'ratio'?"]
    assert 'Traceback' not in result.stderr + result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bad.yml']


def test_paddleseg_config_errors_are_one_line(tmp_path):
    demo = os.path.join(CONFIGS, 'pphumanseg_lite_prune_demo.yml')
    with pytest.raises(PaddleSegInputError) as err:
        PruneSegConfig(demo, opts=['train_dataset.nothere.size=3'])
    assert str(err.value) == (f"{demo}: Can not update train_dataset.nothere.size, because it is "
                              "not in config.")
    mismatch = tmp_path / 'classes.yml'
    mismatch.write_text(f"_base_: {demo}\nmodel:\n  num_classes: 3\n")
    with pytest.raises(PaddleSegInputError, match=r"classes\.yml: Sanity check .*num_classes"):
        PruneSegConfig(str(mismatch))
    assert '\n' not in str(err.value)


def test_enabled_grad_scaler_path_steps_the_pruner_with_exact_zeros(monkeypatch):
    """The GPU code path of core.train's AMP branch, run on CPU.

    Paddle only enables GradScaler on GPU/XPU/custom places; here it is built as on a GPU
    (the place check sees a GPU), so scaler.minimize unscales the gradients, checks them for
    inf/nan and calls optimizer.minimize: the path paddleseg's ``--precision fp16`` takes there.
    """
    real_tracer = grad_scaler._dygraph_tracer

    class GpuLookingPlace:
        def __init__(self, place):
            self.place = place

        def is_gpu_place(self):
            return True

        def __getattr__(self, name):
            return getattr(self.place, name)

    class Tracer:
        def __init__(self):
            self._expected_place = GpuLookingPlace(real_tracer()._expected_place)

    monkeypatch.setattr(grad_scaler, '_dygraph_tracer', Tracer)
    scaler = paddle.amp.GradScaler(init_loss_scaling=1024)
    monkeypatch.setattr(grad_scaler, '_dygraph_tracer', real_tracer)
    assert scaler._enable and float(scaler._scale) == 1024.0
    paddle.seed(0)
    model = PPHumanSegLite(num_classes=2)
    optimizer = paddle.optimizer.Momentum(0.05, parameters=model.parameters(), momentum=0.9)
    pruner = UnstructuredPruner(model, ratio=0.5, prune_params_type='conv1x1_only')
    hook = OptimizerPruneHook(optimizer, pruner)
    images = paddle.rand([2, 3, 32, 32])
    total = sum(p.param.size for p in pruner.params)
    for _ in range(3):
        scaled = scaler.scale(model(images)[0].mean())
        scaled.backward()
        scaler.minimize(optimizer, scaled)
        model.clear_gradients()
        zeros = sum(int((p.param.numpy() == 0).sum()) for p in pruner.params)
        assert zeros == round(0.5 * total)
    assert hook.updates == {'step': 0, 'minimize': 3} and pruner.iteration == 3
    assert not bool(scaler._found_inf)  # gradients were unscaled and checked finite
