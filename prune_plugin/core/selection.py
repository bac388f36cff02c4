"""Which parameters of a model are pruned, and how their axes are laid out.

Everything here is pure inspection of a ``paddle.nn.Layer``: no weight is changed.
"""
import re
from dataclasses import dataclass

import paddle

NORM_LAYER_NAMES = frozenset([
    'BatchNorm', 'GroupNorm', 'LayerNorm', 'SpectralNorm', 'BatchNorm1D', 'BatchNorm2D',
    'BatchNorm3D', 'InstanceNorm1D', 'InstanceNorm2D', 'InstanceNorm3D', 'SyncBatchNorm',
    'LocalResponseNorm', 'FrozenBatchNorm2d', 'RMSNorm'
])

_TRANSPOSED_CONV_NAMES = ('Conv1DTranspose', 'Conv2DTranspose', 'Conv3DTranspose')


@dataclass(frozen=True, eq=False)
class PrunableParam:
    """One parameter that the pruner owns.

    Attributes:
        name: Structured name, as in ``model.state_dict()`` (``backbone.conv1.weight``).
        param: The parameter tensor itself.
        out_axis: Axis of output channels (0 for Conv, 1 for Linear and transposed convs).
        in_axis: Axis of input channels (1 for Conv, 0 for Linear and transposed convs;
            None for 1-D parameters).
    """
    name: str
    param: object
    out_axis: int
    in_axis: int

    @property
    def shape(self):
        return tuple(self.param.shape)


def is_norm_layer(layer):
    """True for normalization layers (BatchNorm, LayerNorm, GroupNorm, ...)."""
    return type(layer).__name__ in NORM_LAYER_NAMES or isinstance(
        layer, (paddle.nn.layer.norm._BatchNormBase, paddle.nn.LayerNorm, paddle.nn.GroupNorm))


def is_conv1x1_shape(shape):
    """True for a 4-D weight with a 1x1 kernel."""
    return len(shape) == 4 and shape[2] == 1 and shape[3] == 1


def named_params_with_layers(model):
    """Yield ``(structured_name, param, owning_layer)`` for every parameter of ``model``."""
    seen = set()
    for layer_name, layer in model.named_sublayers(include_self=True):
        for pname, param in layer.named_parameters(include_sublayers=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{layer_name}.{pname}" if layer_name else pname
            yield full, param, layer


def default_skip_params(model):
    """The reference's default skip set: parameters of norm layers and every 1-D parameter.

    Returns:
        set of structured parameter names.
    """
    skipped = set()
    for name, param, layer in named_params_with_layers(model):
        if is_norm_layer(layer) or len(param.shape) <= 1:
            skipped.add(name)
    return skipped


def conv1x1_params(model):
    """Structured names of the 4-D 1x1 conv weights outside norm layers."""
    return {
        name for name, param, layer in named_params_with_layers(model)
        if not is_norm_layer(layer) and is_conv1x1_shape(param.shape)
    }


def channel_axes(ndim, transposed=False):
    """``(out_axis, in_axis)`` of a weight with ``ndim`` dimensions.

    Conv weights are [out, in, kh, kw]; Linear weights (2-D) and transposed-conv weights
    (``transposed=True``) are [in, out, ...]; 1-D parameters have no input axis.

    Example:
        >>> channel_axes(4), channel_axes(2), channel_axes(4, transposed=True), channel_axes(1)
        ((0, 1), (1, 0), (1, 0), (0, None))
    """
    if ndim <= 1:
        return 0, None
    if transposed or ndim == 2:  # paddle.nn.Linear keeps weights as [in, out]
        return 1, 0
    return 0, 1


def _axes_for(layer, param):
    return channel_axes(len(param.shape), type(layer).__name__ in _TRANSPOSED_CONV_NAMES)


def select_prunable(model, skip_params_func=None, conv1x1_only=False, prune_params=None,
                    skip_params=None):
    """List the parameters to prune, in model order.

    A parameter is pruned when it is not in the skip set (``skip_params_func(model)``, by default
    norms and 1-D parameters), is a 1x1 conv weight if ``conv1x1_only``, matches one of the
    ``prune_params`` regular expressions if given, and matches none of ``skip_params``.

    Args:
        model: The ``paddle.nn.Layer``.
        skip_params_func: ``fn(model) -> set`` of parameter names (structured names or
            ``param.name``) to skip; replaces the default skip set.
        conv1x1_only: Keep only 4-D 1x1 weights.
        prune_params: Regular expressions (``re.search``) on structured names to include.
        skip_params: Regular expressions on structured names to exclude.

    Returns:
        list of :class:`PrunableParam`.

    Example:
        >>> [p.name for p in select_prunable(model, conv1x1_only=True)][:2]
        ['conv2.pointwise.weight', 'conv3.pointwise.weight']
    """
    skip_set = set(skip_params_func(model)) if skip_params_func else default_skip_params(model)
    include = [re.compile(p) for p in (prune_params or [])]
    exclude = [re.compile(p) for p in (skip_params or [])]
    chosen = []
    for name, param, layer in named_params_with_layers(model):
        if name in skip_set or param.name in skip_set:
            continue
        if conv1x1_only and not is_conv1x1_shape(param.shape):
            continue
        if include and not any(r.search(name) for r in include):
            continue
        if any(r.search(name) for r in exclude):
            continue
        if not param.trainable or param.dtype not in (paddle.float32, paddle.float16,
                                                       paddle.bfloat16, paddle.float64):
            continue
        out_axis, in_axis = _axes_for(layer, param)
        chosen.append(PrunableParam(name, param, out_axis, in_axis))
    return chosen
