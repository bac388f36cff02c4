"""Shared by the PaddleClas tests: user checkouts written in PaddleClas's style, and checks.

* :func:`make_fixture_clone` copies the miniature PaddleClas of ``tests/fixtures/ppcls_clone``
  to a folder named like a user's clone, generates digits in ILSVRC2012's list layout under
  its ``dataset/ILSVRC2012`` and writes a config in PaddleClas's style under ``user_configs/``.
* :func:`run` runs an installed command (``prune-train`` ...) or a script in a subprocess.
* :func:`zeros_of_conv1x1` / :func:`zero_positions_digest` read checkpoints as plain files.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import paddle

from prune_plugin.demo_data.ppcls_data import write_imagenet_list

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
FIXTURE_CLONE = os.path.join(REPO, 'tests', 'fixtures', 'ppcls_clone')
TIMEOUT = 900

TINYNET_CONFIG = """\
# TinyNet on generated digits, in PaddleClas's config style
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: ./output/
  device: cpu
  save_interval: 1
  eval_during_train: True
  eval_interval: 1
  epochs: 2
  print_batch_step: 5
  use_visualdl: False
  image_shape: [3, 32, 32]
  save_inference_dir: ./inference
  seed: 0

# mixed precision
AMP:
  use_amp: False
  scale_loss: 128.0
  use_dynamic_loss_scaling: True
  level: O1

Arch:
  name: TinyNet
  class_num: 10

Loss:
  Train:
    - CELoss:
        weight: 1.0

Optimizer:
  name: Momentum
  momentum: 0.9
  lr:
    name: Piecewise
    learning_rate: 0.05
    decay_epochs: [30, 60, 90]
    values: [0.1, 0.01, 0.001, 0.0001]
  regularizer:
    name: 'L2'
    coeff: 0.00003

DataLoader:
  Train:
    dataset:
      name: ImageNetDataset
      image_root: ./dataset/ILSVRC2012/
      cls_label_path: ./dataset/ILSVRC2012/train_list.txt
      transform_ops:
        - DecodeImage:
            to_rgb: True
            channel_first: False
        - RandFlipImage:
            flip_code: 1
        - NormalizeImage:
            scale: 1.0/255.0
            mean: [0.485, 0.456, 0.406]
            std: [0.229, 0.224, 0.225]
            order: ''
    sampler:
      name: DistributedBatchSampler
      batch_size: 16
      drop_last: False
      shuffle: True
    loader:
      num_workers: 0
      use_shared_memory: False
  Eval:
    dataset:
      name: ImageNetDataset
      image_root: ./dataset/ILSVRC2012/
      cls_label_path: ./dataset/ILSVRC2012/val_list.txt
      transform_ops:
        - DecodeImage:
            to_rgb: True
            channel_first: False
        - NormalizeImage:
            scale: 1.0/255.0
            mean: [0.485, 0.456, 0.406]
            std: [0.229, 0.224, 0.225]
            order: ''
    sampler:
      name: DistributedBatchSampler
      batch_size: 20
      drop_last: False
      shuffle: False
    loader:
      num_workers: 0
      use_shared_memory: False

Metric:
  Eval:
    - TopkAcc:
        topk: [1, 5]

# prune_plugin: 75% of the 1x1 conv weights, GMP: 15% at update 0, 75% from update 8
slim: UnstructuredPrune
UnstructuredPrune:
  mode: ratio
  ratio: 0.75
  prune_params_type: conv1x1_only
  gmp:
    stable_iterations: 0
    pruning_iterations: 8
    tunning_iterations: 2
    pruning_steps: 4
    initial_ratio: 0.15
"""
TINYNET_STEPS_PER_EPOCH = 5  # 80 training images, batch 16


def make_fixture_clone(root, name='MyPaddleClas'):
    """A user's clone: the miniature ``ppcls`` package, data and a config (returns paths).

    Returns:
        ``(clone_root, config_path)``; the config is ``user_configs/tinynet_prune.yaml``.
    """
    clone = os.path.join(str(root), name)
    shutil.copytree(FIXTURE_CLONE, clone, ignore=shutil.ignore_patterns('__pycache__'))
    write_imagenet_list(os.path.join(clone, 'dataset', 'ILSVRC2012'), train_per_class=8,
                        val_per_class=4, size=32)
    config = os.path.join(clone, 'user_configs', 'tinynet_prune.yaml')
    os.makedirs(os.path.dirname(config))
    with open(config, 'w') as f:
        f.write(TINYNET_CONFIG)
    return clone, config


def run(args, cwd, **env):
    """Run a command (first item: an installed command name or a script path)."""
    command = args[0]
    if not command.endswith('.py') and os.path.isfile(os.path.join(BIN, command)):
        args = [os.path.join(BIN, command), *args[1:]]
    elif command.endswith('.py'):
        args = [sys.executable, *args]
    environment = {k: v for k, v in os.environ.items() if k != 'PADDLECLAS_SRC'}
    environment.update(OMP_NUM_THREADS='1', **env)
    return subprocess.run(args, cwd=str(cwd), capture_output=True, text=True, timeout=TIMEOUT,
                          env=environment)


def stderr_lines(result):
    """stderr without the environment's noise (ccache / warnings module lines)."""
    return [line for line in result.stderr.splitlines()
            if line.strip() and 'ccache' not in line and 'warnings.warn' not in line]


def conv1x1_items(state):
    """``[(name, array)]`` of the 4-D 1x1 weights of a state dict, in its order."""
    return [(k, np.asarray(v.numpy() if hasattr(v, 'numpy') else v)) for k, v in state.items()
            if len(v.shape) == 4 and tuple(v.shape[2:]) == (1, 1)]


def zeros_of_conv1x1(path):
    """``(zeros, total)`` over the 1x1 conv weights of a ``.pdparams`` file."""
    items = conv1x1_items(paddle.load(path))
    return (sum(int((a == 0).sum()) for _, a in items), sum(a.size for _, a in items))


def zero_positions_digest(arrays):
    """sha1 of the zero masks of ``arrays`` (in order): equal digests = equal zero positions."""
    digest = hashlib.sha1()
    for array in arrays:
        digest.update(np.packbits(np.asarray(array) == 0).tobytes())
    return digest.hexdigest()


def write(path, text):
    """Write dedented ``text`` to ``path`` (folders created); return the path."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), 'w') as f:
        f.write(textwrap.dedent(text))
    return str(path)


STOCK_STYLE_CONFIG = """\
# MobileNetV1 x0.25 on the digits, written like PaddleClas's ImageNet configs: AMP section off,
# Piecewise schedule with learning_rate, AutoAugment / TimmAutoAugment / RandomErasing, and
# Mixup / Cutmix through OpSampler
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: ./output/
  device: cpu
  save_interval: 1
  eval_during_train: True
  eval_interval: 100
  epochs: 2
  print_batch_step: 10
  use_visualdl: False
  image_shape: [3, 32, 32]
  save_inference_dir: ./inference
  seed: 0

# mixed precision
AMP:
  use_amp: False
  use_fp16_test: False
  scale_loss: 128.0
  use_dynamic_loss_scaling: True
  use_promote: False
  # O1: mixed fp16, O2: pure fp16
  level: O1

Arch:
  name: MobileNetV1_x0_25
  class_num: 10

Loss:
  Train:
    - CELoss:
        weight: 1.0
        epsilon: 0.1
  Eval:
    - CELoss:
        weight: 1.0

Optimizer:
  name: Momentum
  momentum: 0.9
  lr:
    name: Piecewise
    learning_rate: 0.1
    decay_epochs: [30, 60, 90]
    values: [0.1, 0.01, 0.001, 0.0001]
  regularizer:
    name: 'L2'
    coeff: 0.00003

DataLoader:
  Train:
    dataset:
      name: ImageNetDataset
      image_root: {image_root}
      cls_label_path: {train_list}
      transform_ops:
        - DecodeImage:
            to_rgb: True
            channel_first: False
        - RandCropImage:
            size: 32
            scale: [0.8, 1.0]
        - RandFlipImage:
            flip_code: 1
        - AutoAugment:
        - TimmAutoAugment:
            config_str: rand-m9-mstd0.5-inc1
            interpolation: bicubic
            img_size: 32
        - NormalizeImage:
            scale: 1.0/255.0
            mean: [0.485, 0.456, 0.406]
            std: [0.229, 0.224, 0.225]
            order: ''
        - RandomErasing:
            EPSILON: 0.25
            sl: 0.02
            sh: 1.0/3.0
            r1: 0.3
            attempt: 10
            use_log_aspect: True
            mode: pixel
      batch_transform_ops:
        - OpSampler:
            MixupOperator:
              alpha: 0.8
              prob: 0.5
            CutmixOperator:
              alpha: 1.0
              prob: 0.5
    sampler:
      name: DistributedBatchSampler
      batch_size: 64
      drop_last: False
      shuffle: True
    loader:
      num_workers: 0
      use_shared_memory: False
  Eval:
    dataset:
      name: ImageNetDataset
      image_root: {image_root}
      cls_label_path: {val_list}
      transform_ops:
        - DecodeImage:
            to_rgb: True
            channel_first: False
        - ResizeImage:
            resize_short: 36
        - CropImage:
            size: 32
        - NormalizeImage:
            scale: 1.0/255.0
            mean: [0.485, 0.456, 0.406]
            std: [0.229, 0.224, 0.225]
            order: ''
    sampler:
      name: DistributedBatchSampler
      batch_size: 128
      drop_last: False
      shuffle: False
    loader:
      num_workers: 0
      use_shared_memory: False

Infer:
  infer_imgs: docs/images/inference_deployment/whl_demo.jpg
  batch_size: 10
  transforms:
    - DecodeImage:
        to_rgb: True
        channel_first: False
  PostProcess:
    name: Topk
    topk: 5
    class_id_map_file: ppcls/utils/imagenet1k_label_list.txt

Metric:
  Train:
    - TopkAcc:
        topk: [1, 5]
  Eval:
    - TopkAcc:
        topk: [1, 5]

slim: UnstructuredPrune
UnstructuredPrune:
  mode: ratio
  ratio: 0.75
  prune_params_type: conv1x1_only
  gmp:
    stable_iterations: 0
    pruning_iterations: 8
    tunning_iterations: 2
    pruning_steps: 4
    initial_ratio: 0.15
"""


def write_stock_style_config(folder, train_count=320, val_count=256):
    """The stock-style config in ``folder/cls_configs/`` over the first digits (lists there).

    Returns:
        The config path.
    """
    from prune_plugin.demo_data.ppcls_data import ensure_digits

    data = ensure_digits()
    lists = os.path.join(str(folder), 'lists')
    os.makedirs(lists, exist_ok=True)
    for split, count in (('train', train_count), ('val', val_count)):
        with open(os.path.join(data, f"{split}_list.txt")) as f:
            lines = f.readlines()[:count]
        with open(os.path.join(lists, f"{split}.txt"), 'w') as f:
            f.writelines(lines)
    text = STOCK_STYLE_CONFIG.format(image_root=data, train_list=os.path.join(lists, 'train.txt'),
                                     val_list=os.path.join(lists, 'val.txt'))
    return write(os.path.join(str(folder), 'cls_configs', 'MobileNetV1_digits.yaml'), text)
