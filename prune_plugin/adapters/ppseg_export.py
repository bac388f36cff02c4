"""Export a (sparse) PaddleSeg model for inference, as PaddleSeg's ``tools/export.py`` does.

Writes ``model.pdiparams`` + the program (``model.json`` under Paddle 3's PIR, ``model.pdmodel``
before) and ``deploy.yaml`` (the val transforms, as paddleseg's deploy reader expects). The
exported parameters are the checkpoint's: pruned weights stay exact zeros.
"""
import logging
import os

import numpy as np
import paddle
import yaml
from paddleseg.cvlibs import SegBuilder
from paddleseg.deploy.export import WrappedModel
from paddleseg.utils import utils as seg_utils

logger = logging.getLogger('prune_plugin')


def _program_file(save_dir):
    for name in ('model.json', 'model.pdmodel'):
        if os.path.isfile(os.path.join(save_dir, name)):
            return name
    raise FileNotFoundError(f"paddle.jit.save wrote no program file in {save_dir}")


def export_inference_model(cfg, model_path, save_dir, input_shape=None, output_op='argmax'):
    """Load ``model_path`` into the config's model and save it with ``paddle.jit.save``.

    Args:
        cfg: A :class:`~prune_plugin.adapters.ppseg_config.PruneSegConfig`.
        model_path: A ``model.pdparams`` checkpoint.
        save_dir: Output folder.
        input_shape: ``[N, C, H, W]`` or None (``[None, C, None, None]``).
        output_op: ``'argmax'``, ``'softmax'`` or ``'none'`` (raw logits).

    Returns:
        dict: ``program``, ``params`` (paths), ``sparsity`` (zero fraction of the prunable
        weights in the exported model; None without a prune block).
    """
    builder = SegBuilder(cfg)
    model = builder.model
    seg_utils.load_entire_model(model, model_path)
    model.eval()
    sparsity = None
    if cfg.prune_spec is not None:
        sparsity = cfg.prune_spec.build(model).prunable_sparsity()
    net = model if output_op == 'none' else WrappedModel(model, output_op)
    channels = seg_utils.get_in_channels(cfg.model_cfg) or 3
    shape = list(input_shape) if input_shape else [None, channels, None, None]
    net = paddle.jit.to_static(net, input_spec=[paddle.static.InputSpec(shape, 'float32', 'x')],
                               full_graph=True)
    os.makedirs(save_dir, exist_ok=True)
    paddle.jit.save(net, os.path.join(save_dir, 'model'))
    program = _program_file(save_dir)
    transforms = cfg.val_dataset_cfg.get('transforms', [{'type': 'Normalize'}])
    deploy = {'Deploy': {'model': program, 'params': 'model.pdiparams', 'transforms': transforms,
                         'input_shape': shape, 'output_op': output_op,
                         'output_dtype': 'int32' if output_op == 'argmax' else 'float32'}}
    with open(os.path.join(save_dir, 'deploy.yaml'), 'w') as f:
        yaml.safe_dump(deploy, f, sort_keys=False)
    if sparsity is not None:
        logger.info("exported %s to %s: %.2f%% of the prunable weights are zero", model_path,
                    save_dir, 100 * sparsity)
    return {'program': os.path.join(save_dir, program),
            'params': os.path.join(save_dir, 'model.pdiparams'), 'sparsity': sparsity}


def zero_fraction_of_params_file(params_path, min_ndim=4):
    """Zero fraction over the ``min_ndim``-D tensors of an exported ``.pdiparams`` program.

    Args:
        params_path: ``<dir>/model.pdiparams`` written by :func:`export_inference_model`.
        min_ndim: Only tensors with at least this many dims count (conv weights).

    Returns:
        (zeros, total) counted over the loaded inference layer's parameters.
    """
    layer = paddle.jit.load(params_path[:-len('.pdiparams')])
    zeros = total = 0
    for value in layer.state_dict().values():
        array = np.asarray(value)
        if array.ndim >= min_ndim:
            zeros += int((array == 0).sum())
            total += array.size
    return zeros, total
