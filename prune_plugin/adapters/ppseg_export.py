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
        dict: ``program``, ``params`` (paths), ``sparsity`` (zero fraction of the weights the
        prune block selects, in the checkpoint; None without a block) and ``exported``
        (:func:`exported_zero_counts` of the saved program: weights the program never uses,
        e.g. dead branches, are not in it).
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
    exported = exported_zero_counts(os.path.join(save_dir, 'model'))
    zeros_1x1, total_1x1 = exported['conv1x1']
    zeros_conv, total_conv = exported['conv']
    logger.info("exported %s to %s: zeros in %.2f%% of its 1x1-conv weights, %.2f%% of all conv "
                "weights%s", model_path, save_dir, 100 * zeros_1x1 / max(total_1x1, 1),
                100 * zeros_conv / max(total_conv, 1), "" if sparsity is None else
                f" (checkpoint: {100 * sparsity:.2f}% of the prunable weights)")
    return {'program': os.path.join(save_dir, program),
            'params': os.path.join(save_dir, 'model.pdiparams'), 'sparsity': sparsity,
            'exported': exported}


def exported_zero_counts(program_prefix):
    """Zeros in the conv weights of an exported model, as loaded by ``paddle.jit.load``.

    Args:
        program_prefix: ``<save_dir>/model`` (the path given to ``paddle.jit.save``).

    Returns:
        ``{'conv1x1': (zeros, total), 'conv': (zeros, total)}`` over its 4-D parameters.
    """
    counts = {'conv1x1': [0, 0], 'conv': [0, 0]}
    for value in paddle.jit.load(program_prefix).state_dict().values():
        array = np.asarray(value)
        if array.ndim != 4:
            continue
        kinds = ('conv', 'conv1x1') if array.shape[2:] == (1, 1) else ('conv', )
        for kind in kinds:
            counts[kind][0] += int((array == 0).sum())
            counts[kind][1] += array.size
    return {kind: tuple(pair) for kind, pair in counts.items()}
