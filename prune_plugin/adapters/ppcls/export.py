"""Export a (sparse) ppcls checkpoint as a Paddle inference model and check its zeros survived."""
import logging
import os

import numpy as np
import paddle
from paddle.static import InputSpec

from ... import onnx_export
from ...core.stats import count_zeros, total_sparse, total_sparse_conv1x1
from .report import unpruned_weights_warning
from .trainer import build_network, is_rank0, setup_runtime

logger = logging.getLogger('prune_plugin')


def zero_count_of_params(params):
    """``(zeros, total)`` over an iterable of tensors."""
    zeros = total = 0
    for p in params:
        zeros += count_zeros(p)
        total += int(np.prod(p.shape))
    return zeros, total


def export(cfg, spec=None):
    """``paddle.jit.save`` ``Global.pretrained_model``'s model to ``Global.save_inference_dir``.

    The exported parameters are reloaded with ``paddle.jit.load`` and their zeros counted:
    they must equal the checkpoint's (nothing densified on the way).

    Args:
        cfg: A validated config with ``Global.pretrained_model`` set.
        spec: The config's PruneSpec: a warning when the weights are not pruned (or None).

    Returns:
        ``{'path', 'zeros', 'total', 'total_sparse', 'total_sparse_conv1x1'}``.

    Raises:
        RuntimeError: the exported model has other zeros than the checkpoint.
    """
    onnx_export.check_target(os.path.join(cfg['Global']['save_inference_dir'], 'inference'))
    setup_runtime(cfg)
    network = build_network(cfg)
    network.eval()
    warning = unpruned_weights_warning(spec, network, cfg['Global']['pretrained_model'])
    if warning and is_rank0():
        logger.warning(warning)
    shape = cfg['Global']['image_shape']
    folder = cfg['Global']['save_inference_dir']
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'inference')
    static = paddle.jit.to_static(network, input_spec=[InputSpec([None] + shape, 'float32',
                                                                 'x')], full_graph=True)
    paddle.jit.save(static, path)
    zeros, total = zero_count_of_params(network.parameters())
    loaded = paddle.jit.load(path)
    exported_zeros, exported_total = zero_count_of_params(loaded.parameters())
    if (exported_zeros, exported_total) != (zeros, total):
        raise RuntimeError(f"exported model has {exported_zeros}/{exported_total} zeros, the "
                           f"checkpoint {zeros}/{total}")
    result = {'path': path, 'zeros': zeros, 'total': total,
              'total_sparse': total_sparse(network),
              'total_sparse_conv1x1': total_sparse_conv1x1(network)}
    result['onnx'] = onnx_export.convert_requested(path, model=network)   # --format onnx
    if is_rank0():
        print(f"exported {path} ({', '.join(sorted(os.listdir(folder)))}): {zeros} of {total} "
              f"parameters are zero, as in {cfg['Global']['pretrained_model']}.pdparams; "
              f"total_sparse {result['total_sparse']:.4f}  "
              f"total_sparse_conv1x1 {result['total_sparse_conv1x1']:.4f}")
    return result
