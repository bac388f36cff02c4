"""Sparsity numbers of a model or of plain weights (no pruner needed)."""
import numpy as np
import paddle

from .selection import is_conv1x1_shape, is_norm_layer, named_params_with_layers


def count_zeros(tensor):
    """Number of exact zeros in a paddle tensor or numpy array."""
    if isinstance(tensor, np.ndarray):
        return int(tensor.size - np.count_nonzero(tensor))
    return int((tensor == 0).astype('int64').sum())


def sparsity_of_params(params):
    """Fraction of exact zeros over a list of tensors (0.0 for an empty list)."""
    total = sum(int(np.prod(p.shape)) for p in params)
    if total == 0:
        return 0.0
    return sum(count_zeros(p) for p in params) / total


def total_sparse(model):
    """Fraction of exact zeros over all parameters of ``model``.

    Args:
        model: A ``paddle.nn.Layer``.

    Returns:
        float in [0, 1].

    Example:
        >>> total_sparse(paddle.vision.models.mobilenet_v1())
        0.0
    """
    return sparsity_of_params([p for _, p, _ in named_params_with_layers(model)])


def total_sparse_conv1x1(model):
    """Fraction of exact zeros over the 1x1 conv weights of ``model`` (norm layers excluded)."""
    return sparsity_of_params([
        p for _, p, layer in named_params_with_layers(model)
        if not is_norm_layer(layer) and is_conv1x1_shape(p.shape)
    ])
