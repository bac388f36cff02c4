"""The package as a user gets it: a plain (non-editable) ``pip install``, used from a folder that
is not this repository, with a config the user wrote.

The package is built from this checkout's own files into a private ``--target`` folder; the
commands run with only that folder added in front of the environment (the suites and paddle
come from the environment, as after ``pip install prune_plugin``).
"""
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A PaddleClas-style config in a folder that is not named after the suite: 1 epoch on the
# generated digits, 75% of the 1x1-conv weights at the first step (ratio mode, no GMP).
CONFIG = """\
Global:
  output_dir: ./output/
  device: cpu
  seed: 0
  epochs: 1
  save_interval: 1
  eval_during_train: False
  print_batch_step: 50
  image_shape: [3, 32, 32]
Arch: {name: MobileNetV1_x0_25, class_num: 10}
slim: UnstructuredPrune
UnstructuredPrune: {mode: ratio, ratio: 0.75, prune_params_type: conv1x1_only}
Loss:
  Train: [{CELoss: {weight: 1.0}}]
  Eval: [{CELoss: {weight: 1.0}}]
Optimizer:
  name: Momentum
  momentum: 0.9
  lr: {name: Cosine, learning_rate: 0.05}
DataLoader:
  Train:
    dataset:
      name: ImageNetDataset
      image_root: ./data/digits/
      cls_label_path: ./data/digits/train_list.txt
      transform_ops:
        - DecodeImage: {to_rgb: True, channel_first: False}
        - NormalizeImage: {scale: 1.0/255.0, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}
    sampler: {name: DistributedBatchSampler, batch_size: 128, drop_last: False, shuffle: True}
  Eval:
    dataset:
      name: ImageNetDataset
      image_root: ./data/digits/
      cls_label_path: ./data/digits/val_list.txt
      transform_ops:
        - DecodeImage: {to_rgb: True, channel_first: False}
        - NormalizeImage: {scale: 1.0/255.0, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}
    sampler: {name: DistributedBatchSampler, batch_size: 256, drop_last: False, shuffle: False}
Metric:
  Eval: [{TopkAcc: {topk: [1, 5]}}]
"""


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """``pip install --no-deps --target SITE`` of a copy of this checkout's package files."""
    root = tmp_path_factory.mktemp('pip')
    source = root / 'src'
    source.mkdir()
    shutil.copy(os.path.join(REPO, 'setup.py'), source)
    shutil.copytree(os.path.join(REPO, 'prune_plugin'), source / 'prune_plugin',
                    ignore=shutil.ignore_patterns('__pycache__', '*.so', '*.pyd'))  # built here
    site = root / 'site'
    result = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index',
                             '--no-build-isolation', '--disable-pip-version-check', '-q',
                             '--target', str(site), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return site


def run(site, args, cwd, timeout=900):
    env = {**os.environ, 'PYTHONPATH': str(site), 'OMP_NUM_THREADS': '1'}
    env.pop('PRUNE_PLUGIN_DATA', None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_installed_package_is_the_one_that_runs(installed, tmp_path):
    result = run(installed, [sys.executable, '-c', 'import prune_plugin; print(prune_plugin.__file__)'],
                 tmp_path)
    assert result.stdout.strip() == str(installed / 'prune_plugin' / '__init__.py')
    for command in ('prune-train', 'prune-eval', 'prune-export', 'prune-report'):
        assert os.access(installed / 'bin' / command, os.X_OK), command
    # every subpackage is in the wheel (setup.py's find_packages), not only the top level
    for module in ('adapters/ppdet/main.py', 'adapters/ppseg/hook.py', 'adapters/ppcls/main.py',
                   'adapters/suite_logging.py', 'core/pruner.py', 'report/paddle_files.py',
                   'demo_data/ppdet_data.py'):
        assert (installed / 'prune_plugin' / module).is_file(), module
    # setup.py compiled the fused host loops into the install (kernels.native_loops())
    assert len(list((installed / 'prune_plugin' / 'core').glob('_host_kernels*.so'))) == 1
    result = run(installed, [sys.executable, '-c', 'from prune_plugin.core import kernels; '
                             'print(kernels.native_loops(), kernels._host_kernels.__file__)'],
                 tmp_path)
    assert result.stdout.split()[0] == 'True' and result.stdout.split()[1].startswith(
        str(installed)), result.stdout + result.stderr
    version = _source_version()
    assert [p.name for p in installed.glob('prune_plugin-*.dist-info')] == [
        f"prune_plugin-{version}.dist-info"]
    for command in ('prune-train', 'prune-report'):
        result = run(installed, [str(installed / 'bin' / command), '--version'], tmp_path)
        assert (result.returncode, result.stdout) == (0, f"prune_plugin {version}\n"), command


def _source_version():
    """``__version__`` of this checkout's prune_plugin/__init__.py, read as text."""
    with open(os.path.join(REPO, 'prune_plugin', '__init__.py'), encoding='utf-8') as f:
        return re.search(r"^__version__ = '([^']+)'", f.read(), re.M).group(1)


def test_prune_train_from_the_installed_package_trains_exactly_sparse(installed, tmp_path):
    import paddle

    work = tmp_path / 'my_classifier'
    (work / 'cfg').mkdir(parents=True)
    (work / 'cfg' / 'mbv1_digits.yaml').write_text(textwrap.dedent(CONFIG))
    result = run(installed, [str(installed / 'bin' / 'prune-train'), '-c', 'cfg/mbv1_digits.yaml'],
                 work)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    state = paddle.load(str(work / 'output' / 'MobileNetV1_x0_25' / 'latest.pdparams'))
    conv1x1 = [np.asarray(v) for v in state.values() if v.ndim == 4 and v.shape[2:] == [1, 1]]
    total = sum(v.size for v in conv1x1)
    zeros = sum(int((v == 0).sum()) for v in conv1x1)
    assert len(conv1x1) == 13 and zeros == round(0.75 * total), (zeros, total)
    others = [np.asarray(v) for v in state.values() if not (v.ndim == 4 and v.shape[2:] == [1, 1])]
    assert sum(int((v == 0).sum()) for v in others) < 0.01 * sum(v.size for v in others)
