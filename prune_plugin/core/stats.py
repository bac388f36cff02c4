"""Sparsity numbers of a model or of plain weights (no pruner needed).

Each function reads its answer on the host once: zeros are counted where the weights live
(numpy on CPU, where device memory is host memory; paddle ops elsewhere, one sync per call).
"""
import numpy as np

from .array_ops import ops_for
from .selection import is_conv1x1_shape, is_norm_layer, named_params_with_layers


def _zero_counts(tensors):
    """Exact zeros of each paddle tensor or numpy array, read in one go."""
    counts, on_device = [], []
    for i, tensor in enumerate(tensors):
        if isinstance(tensor, np.ndarray):
            counts.append(int(tensor.size - np.count_nonzero(tensor)))
            continue
        ops = ops_for(tensor.place)
        values = ops.weights(tensor)
        counts.append(ops.count(values == 0))
        on_device.append((i, ops))
    if on_device:
        ops = on_device[0][1]
        read = ops.read_ints([counts[i] for i, _ in on_device])
        for (i, _), value in zip(on_device, read):
            counts[i] = value
    return [int(c) for c in counts]


def count_zeros(tensor):
    """Number of exact zeros in a paddle tensor or numpy array."""
    return _zero_counts([tensor])[0]


def sparsity_of_params(params):
    """Fraction of exact zeros over a list of tensors (0.0 for an empty list)."""
    total = sum(int(np.prod(p.shape)) for p in params)
    if total == 0:
        return 0.0
    return sum(_zero_counts(list(params))) / total


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
