"""Shared pieces of the benchmarks: models, PaddleSlim 2.6 made runnable on Paddle 3, tables.

PaddleSlim 2.6's dygraph pruner breaks on Paddle 3.x: its ``_update_masks`` writes a bool numpy
array into the float32 mask buffer with ``paddle.assign(bool_array, output=mask)``, which turns
the buffer bool, and the next ``param * mask`` fails (float * bool). ``SlimUnstructuredPruner`` and
``SlimGMPUnstructuredPruner`` below override ``_update_masks`` only, to write the same values as
float32; the algorithm (thresholds, block means, schedule, hooks) is PaddleSlim's own code.
"""
import contextlib
import io
import os
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(REPO_ROOT, 'benchmarks', 'results')
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import paddle  # noqa: E402

YOLOV3_MOBILENET_V1_YAML = """
architecture: YOLOv3
num_classes: 80
norm_type: bn
YOLOv3:
  backbone: MobileNet
  neck: YOLOv3FPN
  yolo_head: YOLOv3Head
  post_process: BBoxPostProcess
MobileNet:
  scale: 1
  feature_maps: [4, 6, 13]
  with_extra_blocks: false
  extra_block_filters: []
YOLOv3Head:
  anchors: [[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119],
            [116, 90], [156, 198], [373, 326]]
  anchor_masks: [[6, 7, 8], [3, 4, 5], [0, 1, 2]]
  loss: YOLOv3Loss
YOLOv3Loss:
  ignore_thresh: 0.7
  downsample: [32, 16, 8]
  label_smooth: false
BBoxPostProcess:
  decode:
    name: YOLOBox
    conf_thresh: 0.005
    downsample_ratio: 32
    clip_bbox: true
  nms:
    name: MultiClassNMS
    keep_top_k: 100
    score_threshold: 0.01
    nms_threshold: 0.45
    nms_top_k: 1000
"""


def build_mobilenet_v1(scale=1.0, class_num=1000):
    """MobileNetV1 from PaddleClas' arch (``paddleclas.ppcls.arch.build_model``).

    Args:
        scale: Width multiplier: 1.0, 0.75, 0.5 or 0.25 (PaddleClas' named variants).
        class_num: Classes of the final FC layer.

    Returns:
        The ``paddle.nn.Layer``.
    """
    from paddleclas.ppcls.arch import build_model
    names = {1.0: 'MobileNetV1', 0.75: 'MobileNetV1_x0_75', 0.5: 'MobileNetV1_x0_5',
             0.25: 'MobileNetV1_x0_25'}
    if scale not in names:
        raise ValueError(f"scale={scale!r} must be one of {sorted(names)}")
    return build_model({'Arch': {'name': names[scale], 'class_num': class_num}})


def build_yolov3_mobilenet_v1():
    """YOLOv3 with a MobileNetV1 backbone (COCO, 80 classes) built by ppdet's workspace."""
    from ppdet.core.workspace import create, load_config
    with tempfile.NamedTemporaryFile('w', suffix='.yml', delete=False) as handle:
        handle.write(YOLOV3_MOBILENET_V1_YAML)
    try:
        cfg = load_config(handle.name)
    finally:
        os.unlink(handle.name)
    return create(cfg.architecture)


def engine_version():
    """Last commit touching ``prune_plugin/core`` (``+dirty`` with uncommitted changes there)."""
    import subprocess
    try:
        commit = subprocess.run(['git', 'log', '-1', '--format=%h', '--', 'prune_plugin/core'],
                                cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--', 'prune_plugin/core'],
                               cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return 'unknown'
    return (commit or 'unknown') + ('+dirty' if dirty else '')


def count_params(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters())


def _slim_classes():
    from paddleslim.dygraph.prune import unstructured_pruner as slim
    from paddleslim.prune.unstructured_pruner_utils import cal_mxn_avg_matrix

    def _update_masks(self):
        # PaddleSlim 2.6's _update_masks, line for line, except the mask is written as float32.
        for _, sub_layer in self.model.named_sublayers():
            if not self._should_prune_layer(sub_layer):
                continue
            for param in sub_layer.parameters(include_sublayers=False):
                if param.name in self.skip_params:
                    continue
                mask = self.masks.get(param.name)
                v_param = np.array(param.value().get_tensor())
                v_param_avg = cal_mxn_avg_matrix(
                    v_param, m=self.sparse_block[0], n=self.sparse_block[1])
                if self.local_sparsity:
                    bool_tmp = (abs(v_param_avg) >= self.thresholds[param.name])
                else:
                    bool_tmp = (abs(v_param_avg) >= self.threshold)
                paddle.assign(bool_tmp.astype(np.float32), output=mask)

    def _forward_pre_hook(self, layer, inputs):
        # Same hook, timed: masking in the forward pass is part of PaddleSlim's pruning work.
        start = time.perf_counter()
        out = base_hook(self, layer, inputs)
        self.hook_seconds += time.perf_counter() - start
        return out

    base_hook = slim.UnstructuredPruner._forward_pre_hook
    members = {'_update_masks': _update_masks, '_forward_pre_hook': _forward_pre_hook,
               'hook_seconds': 0.0}
    plain = type('SlimUnstructuredPruner', (slim.UnstructuredPruner,), dict(members))
    gmp = type('SlimGMPUnstructuredPruner', (slim.GMPUnstructuredPruner,), dict(members))
    return plain, gmp


def make_slim_pruner(model, gmp=False, **kwargs):
    """PaddleSlim 2.6's (GMP)UnstructuredPruner with float32 masks (see the module docstring).

    Its constructor prints one line per parameter; that output is swallowed.
    """
    plain, gmp_cls = _slim_classes()
    cls = gmp_cls if gmp else plain
    with contextlib.redirect_stdout(io.StringIO()):
        return cls(model, **kwargs)


def slim_mask_bytes(pruner):
    """Bytes held by PaddleSlim's mask buffers (one float32 buffer per parameter of the model)."""
    return sum(int(m.numel()) * m.element_size() for m in pruner.masks.values())


def timed(fn, *args, **kwargs):
    """Run ``fn`` once; return (seconds, result)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def markdown_table(headers, rows):
    """Format rows (lists of cells already as strings) as a GitHub markdown table."""
    lines = ['| ' + ' | '.join(headers) + ' |',
             '|' + '|'.join('---' for _ in headers) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def quiet_logs():
    """Silence the suites' and PaddleSlim's INFO chatter (our own prints stay)."""
    import logging
    import warnings
    warnings.filterwarnings('ignore')
    for name in ('ppdet', 'ppcls', 'paddleslim', 'prune_plugin'):
        logging.getLogger(name).setLevel(logging.WARNING)
