"""Export a (sparse) PaddleSeg model for inference, as PaddleSeg's ``tools/export.py`` does.

Writes ``model.pdiparams`` + the program (``model.json`` under Paddle 3's PIR, ``model.pdmodel``
before) and ``deploy.yaml`` (the val transforms, as paddleseg's deploy reader expects); with
``--for_fd`` (paddleseg 2.9) ``inference.*`` and ``inference.yml``. ``deploy.yaml`` names the
program file really written (paddleseg always writes ``model.pdmodel``, which Paddle 3 no longer
produces). The exported parameters are the checkpoint's: pruned weights stay exact zeros.
"""
import logging
import os

import numpy as np
import paddle
import yaml
from paddleseg.cvlibs import SegBuilder
from paddleseg.deploy.export import WrappedModel
from paddleseg.utils import utils as seg_utils

from ... import onnx_export

logger = logging.getLogger('prune_plugin')


def _program_file(save_dir, name):
    for ext in ('.json', '.pdmodel'):
        if os.path.isfile(os.path.join(save_dir, name + ext)):
            return name + ext
    raise FileNotFoundError(f"paddle.jit.save wrote no program file {name}.json / {name}.pdmodel "
                            f"in {save_dir}")


def export_inference_model(cfg, model_path, save_dir, input_shape=None, output_op='argmax',
                           for_fd=False):
    """Load ``model_path`` into the config's model and save it with ``paddle.jit.save``.

    Args:
        cfg: A :class:`~prune_plugin.adapters.ppseg.config.PruneSegConfig`.
        model_path: A ``model.pdparams`` checkpoint, or None for the config's own weights
            (``model.pretrained``), as in paddleseg.
        save_dir: Output folder.
        input_shape: ``[N, C, H, W]`` or None (``[None, C, None, None]``).
        output_op: ``'argmax'``, ``'softmax'`` or ``'none'`` (raw logits).
        for_fd: Name the files ``inference.*`` / ``inference.yml`` (FastDeploy).

    Returns:
        dict: ``program``, ``params`` (paths), ``model`` (the loaded layer, before wrapping) and
        ``exported`` (:func:`exported_zero_counts` of the saved program: weights the program
        never uses, e.g. dead branches, are not in it).
    """
    onnx_export.check_target(os.path.join(save_dir, 'inference' if for_fd else 'model'))
    os.environ['PADDLESEG_EXPORT_STAGE'] = 'True'  # as paddleseg's export (sync BN -> BN)
    model = SegBuilder(cfg).model
    if model_path is not None:
        seg_utils.load_entire_model(model, model_path)
    model.eval()
    net = model if output_op == 'none' else WrappedModel(model, output_op)
    channels = seg_utils.get_in_channels(cfg.model_cfg) or 3
    shape = list(input_shape) if input_shape else [None, channels, None, None]
    net = paddle.jit.to_static(net, input_spec=[paddle.static.InputSpec(shape, 'float32', 'x')],
                               full_graph=True)
    name, deploy_name = ('inference', 'inference.yml') if for_fd else ('model', 'deploy.yaml')
    os.makedirs(save_dir, exist_ok=True)
    paddle.jit.save(net, os.path.join(save_dir, name))
    program = _program_file(save_dir, name)
    transforms = cfg.val_dataset_cfg.get('transforms')
    deploy = {'Deploy': {'model': program, 'params': f'{name}.pdiparams',
                         'transforms': transforms, 'input_shape': shape, 'output_op': output_op,
                         'output_dtype': 'int32' if output_op == 'argmax' else 'float32'}}
    with open(os.path.join(save_dir, deploy_name), 'w') as f:
        yaml.dump(deploy, f)
    exported = exported_zero_counts(os.path.join(save_dir, name))
    onnx_export.convert_requested(os.path.join(save_dir, name), model=model)   # --format onnx
    zeros_1x1, total_1x1 = exported['conv1x1']
    zeros_conv, total_conv = exported['conv']
    logger.info("exported %s to %s: zeros in %.2f%% of its 1x1-conv weights, %.2f%% of all conv "
                "weights", model_path or 'the config weights', save_dir,
                100 * zeros_1x1 / max(total_1x1, 1), 100 * zeros_conv / max(total_conv, 1))
    return {'program': os.path.join(save_dir, program),
            'params': os.path.join(save_dir, f'{name}.pdiparams'), 'model': model,
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
