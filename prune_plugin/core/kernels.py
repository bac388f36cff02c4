"""The per-step work on the weights' own device: zero pruned weights, narrow threshold masks.

Only paddle ops on the tensors' place: no copy to or from the host, no host sync, so a training
step on a GPU never waits for the pruner. A mask is a bool tensor, True where the weight is kept.

On CPU, Paddle's elementwise kernels run on one thread and allocate every output; large
tensors are therefore processed in slices of ``CPU_SLICE`` elements, whose temporaries stay in
cache and are reused by the allocator (about 2-3x faster than whole 4.7M-weight tensors on the
2-core test machine). On other devices a tensor is one slice: fewer kernel launches.
"""
import math

import numpy as np
import paddle

CPU_SLICE = 1 << 17


def _views_write_through():
    """True when in-place ops on ``t.reshape([-1])[a:b]`` change ``t`` (stride views, as in
    Paddle 3); checked once, on a CPU probe, when this module loads (in dygraph mode, even when
    it is imported under ``paddle.enable_static()``)."""
    if not paddle.in_dynamic_mode():
        with paddle.base.dygraph.guard(paddle.CPUPlace()):
            return _views_write_through()
    with paddle.no_grad():
        probe = paddle.to_tensor(np.ones((4, 2), 'float32'), place=paddle.CPUPlace())
        part = probe.reshape([-1])[2:4]
        part.multiply_(paddle.zeros_like(part))
        return float(probe.sum()) == 6.0


_SLICE_VIEWS_WORK = _views_write_through()


def _slices(tensor, keep):
    """Yield ``(tensor_part, keep_part)`` views that cover both tensors (same shape)."""
    size = math.prod(tensor.shape)  # (Tensor.size costs ~10 us here: this runs every step)
    if size <= CPU_SLICE or not tensor.place.is_cpu_place() or not _SLICE_VIEWS_WORK or not (
            tensor.is_contiguous() and keep.is_contiguous()):
        yield tensor, keep  # (a flat view of a non-contiguous tensor would be a copy)
        return
    flat_tensor, flat_keep = tensor.reshape([-1]), keep.reshape([-1])
    for start in range(0, size, CPU_SLICE):
        stop = min(start + CPU_SLICE, size)
        yield flat_tensor[start:stop], flat_keep[start:stop]


def as_multiplier(keep, dtype):
    """``keep`` as 0/1 in ``dtype`` (through a uint8 view: on CPU, uint8 -> float32 is the
    faster cast)."""
    return paddle.cast(keep.view(paddle.uint8), dtype)


def zero_pruned(tensor, keep):
    """``tensor *= keep`` in place (pruned positions become 0), slice by slice on CPU.

    Args:
        tensor: A float tensor (a parameter, its master copy, a moment or an EMA copy).
        keep: Bool tensor of the same shape, True where kept.
    """
    with paddle.no_grad():
        for part, keep_part in _slices(tensor, keep):
            part.multiply_(as_multiplier(keep_part, part.dtype))


def narrow_and_zero(weight, keep, threshold):
    """Threshold mode's step: ``keep &= |w| >= threshold``, then ``w *= keep``, in place.

    The comparison is made in float32 for float16/bfloat16 weights (as the prune events score).

    Args:
        weight: The parameter.
        keep: Its bool mask, narrowed in place (masks only grow).
        threshold: Python float.
    """
    with paddle.no_grad():
        for part, keep_part in _slices(weight, keep):
            magnitude = paddle.abs(part if part.dtype == paddle.float32
                                   else paddle.cast(part, paddle.float32))
            keep_part.logical_and_(magnitude >= threshold)
            part.multiply_(as_multiplier(keep_part, part.dtype))

