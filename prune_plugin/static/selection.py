"""Which parameters of a static program are pruned: the engine's rules, read from the program.

The default skip set is PaddleSlim's static one: every input of an operator whose type contains
``norm`` (batch/layer/group/instance norm), and every 1-D parameter. The axes of a weight come
from the operator that reads it (transposed convs keep [in, out, ...]).
"""
import re

from ..core.selection import PrunableParam, channel_axes, is_conv1x1_shape
from .program import FLOAT_DTYPES, program_ops, program_params

TRANSPOSED_CONV_OPS = frozenset(['conv2d_transpose', 'conv3d_transpose',
                                 'depthwise_conv2d_transpose', 'conv1d_transpose'])


def norm_op_inputs(program):
    """Names read by normalization operators (forward ones, not their ``*_grad``)."""
    names = set()
    for op in program_ops(program):
        if 'norm' in op.type and 'grad' not in op.type:
            names.update(op.inputs)
    return names


def default_skip_params(program):
    """PaddleSlim's default skip set on a program: norm operators' inputs and 1-D parameters.

    Returns:
        set of parameter names.
    """
    skipped = norm_op_inputs(program)
    skipped.update(p.name for p in program_params(program) if len(p.shape) <= 1)
    return skipped


def conv1x1_param_names(program):
    """Names of the 4-D 1x1 weights that no normalization operator reads."""
    norms = norm_op_inputs(program)
    return {p.name for p in program_params(program)
            if p.name not in norms and is_conv1x1_shape(p.shape)}


def _transposed_weights(program):
    return {name for op in program_ops(program) if op.type in TRANSPOSED_CONV_OPS
            for name in op.inputs}


def select_program_params(program, tensor_for, skip_params_func=None, conv1x1_only=False,
                          prune_params=None, skip_params=None):
    """List the program's parameters to prune, in program order (the engine's rules).

    Args:
        program: A ``Program`` or ``pir.Program`` (not a CompiledProgram).
        tensor_for: ``fn(name) -> tensor`` giving the weight each :class:`PrunableParam` holds.
        skip_params_func: ``fn(program) -> set`` of parameter names; replaces the default skip set.
        conv1x1_only, prune_params, skip_params: as for
            :func:`prune_plugin.core.selection.select_prunable`.

    Returns:
        list of :class:`~prune_plugin.core.selection.PrunableParam` named by variable name.
    """
    skip_set = set(skip_params_func(program)) if skip_params_func else default_skip_params(program)
    include = [re.compile(p) for p in (prune_params or [])]
    exclude = [re.compile(p) for p in (skip_params or [])]
    transposed = _transposed_weights(program)
    chosen = []
    for param in program_params(program):
        name = param.name
        if name in skip_set or (conv1x1_only and not is_conv1x1_shape(param.shape)):
            continue
        if include and not any(r.search(name) for r in include):
            continue
        if any(r.search(name) for r in exclude):
            continue
        if not param.trainable or param.dtype not in FLOAT_DTYPES:
            continue
        out_axis, in_axis = channel_axes(len(param.shape), name in transposed)
        chosen.append(PrunableParam(name, tensor_for(name), out_axis, in_axis))
    return chosen
