"""The per-step work on the weights' own device: zero pruned weights, narrow threshold masks.

Only paddle ops on the tensors' place: no copy to or from the host, no host sync, so a training
step on a GPU never waits for the pruner. A mask is a bool tensor, True where the weight is kept.

On CPU the weights already live in host memory: a float32 weight and its bool mask are worked on
in place through numpy arrays that share their memory (no copy: the array is a view of the
tensor's own buffer, ``Tensor.data_ptr()``), in cache-sized slices with reused scratch buffers.
Paddle's CPU elementwise kernels cost ~20 us per call and allocate every output, which made the
threshold step 2-3x slower. The per-weight loops themselves are ``_host_kernels`` (C, one fused
pass, built by setup.py) when it was compiled, else numpy (four passes per slice, same bits).
Other dtypes, non-contiguous tensors and Paddle builds without ``data_ptr`` take the paddle-op
path, in slices of ``CPU_SLICE`` elements whose temporaries stay in cache. On other devices (GPU)
only paddle ops run, a tensor is one slice: fewer kernel launches, and nothing crosses to the
host.
"""
import ctypes
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import paddle

try:
    from . import _host_kernels
except ImportError:  # installed without a C compiler: the numpy loops below do the same work
    _host_kernels = None

CPU_SLICE = 1 << 17
HOST_SLICE = 1 << 16  # 256 KiB of float32 scratch: stays in L2
_HOST_TYPES = {paddle.float32: (ctypes.c_float, np.float32), paddle.bool: (ctypes.c_bool, np.bool_)}
_scratch = threading.local()
# Many tensors at once (a model's step) are spread over host threads when they hold at least
# this many weights: numpy releases the GIL, and Paddle's own CPU threads are idle between steps.
HOST_PARALLEL_MIN = 1 << 20
# A weight larger than this is cut into pieces of this size for the threads (native loops only:
# they take any contiguous range), so one large tensor does not leave the other threads idle.
HOST_PIECE = 1 << 20
_pool = {}


def native_loops():
    """True when the compiled host loops are in use (False: the numpy fallback)."""
    return _host_kernels is not None


def host_threads():
    """Threads for host-side work: ``$PRUNE_PLUGIN_CPU_THREADS``, else the usable cores (<= 4)."""
    value = os.environ.get('PRUNE_PLUGIN_CPU_THREADS', '')
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _spread(items, work):
    """Run ``work(*item)`` for every item, the host threads taking balanced shares by size."""
    threads = host_threads()
    total = sum(item[0].size for item in items)
    if threads == 1 or total < HOST_PARALLEL_MIN or len(items) < 2:
        for item in items:
            work(*item)
        return
    shares, sizes = [[] for _ in range(threads)], [0] * threads
    for item in sorted(items, key=lambda item: -item[0].size):
        least = sizes.index(min(sizes))
        shares[least].append(item)
        sizes[least] += item[0].size
    if threads not in _pool:
        _pool[threads] = ThreadPoolExecutor(threads - 1, thread_name_prefix='prune_plugin')
    futures = [_pool[threads].submit(_run_share, share, work) for share in shares[1:] if share]
    _run_share(shares[0], work)
    for future in futures:
        future.result()


def _run_share(share, work):
    for item in share:
        work(*item)


def host_view(tensor):
    """A flat numpy array sharing ``tensor``'s memory (writes change the tensor), or None.

    Only for contiguous float32 / bool tensors in CPU memory; None for anything else (those go
    through paddle ops). The view is valid while ``tensor`` keeps its buffer: make it per use.
    """
    types = _HOST_TYPES.get(tensor.dtype)
    if types is None or not tensor.place.is_cpu_place() or not hasattr(tensor, 'data_ptr') \
            or not tensor.is_contiguous():
        return None
    size = math.prod(tensor.shape)
    if size == 0:
        return None
    buffer = (types[0] * size).from_address(tensor.data_ptr())
    return np.frombuffer(buffer, dtype=types[1])


def _scratch_buffers():
    """This thread's reusable float32 / bool scratch of HOST_SLICE elements."""
    if not hasattr(_scratch, 'magnitude'):
        _scratch.magnitude = np.empty(HOST_SLICE, np.float32)
        _scratch.above = np.empty(HOST_SLICE, np.bool_)
    return _scratch.magnitude, _scratch.above


def _host_narrow_and_zero(weight, keep, threshold):
    """``keep &= |weight| >= threshold; weight *= keep`` on numpy views, slice by slice."""
    if _host_kernels is not None:
        _host_kernels.narrow_and_zero(weight, keep, threshold)
        return
    magnitude, above = _scratch_buffers()
    for start in range(0, weight.size, HOST_SLICE):
        stop = min(start + HOST_SLICE, weight.size)
        part, keep_part = weight[start:stop], keep[start:stop]
        mag, ok = magnitude[:stop - start], above[:stop - start]
        np.abs(part, out=mag)
        np.greater_equal(mag, threshold, out=ok)
        np.logical_and(keep_part, ok, out=keep_part)
        np.multiply(part, keep_part, out=part)


def _host_pair(tensor, keep):
    """Numpy views of a weight and its mask when both can be worked on in place, else None."""
    if tensor.dtype != paddle.float32 or keep.dtype != paddle.bool:
        return None
    weight_view = host_view(tensor)
    keep_view = host_view(keep) if weight_view is not None else None
    if keep_view is None or keep_view.size != weight_view.size:
        return None
    return weight_view, keep_view


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
    pair = _host_pair(tensor, keep)
    if pair is not None:
        _host_zero(*pair)
        return
    with paddle.no_grad():
        for part, keep_part in _slices(tensor, keep):
            part.multiply_(as_multiplier(keep_part, part.dtype))


def _host_zero(weight, keep):
    if _host_kernels is not None:
        _host_kernels.zero_pruned(weight, keep)
    else:
        np.multiply(weight, keep, out=weight)


def _many(pairs, host_work, device_work):
    """``device_work(tensor, keep)`` for pairs without host views; the others' ``host_work``
    spread over the host threads (large weights in pieces when the native loops run)."""
    host = []
    for tensor, keep in pairs:
        pair = _host_pair(tensor, keep)
        if pair is None:
            device_work(tensor, keep)
        elif _host_kernels is not None and pair[0].size > HOST_PIECE:
            host.extend((pair[0][start:start + HOST_PIECE], pair[1][start:start + HOST_PIECE])
                        for start in range(0, pair[0].size, HOST_PIECE))
        else:
            host.append(pair)
    _spread(host, host_work)


def zero_pruned_many(pairs):
    """:func:`zero_pruned` for every ``(tensor, keep)`` of ``pairs`` (host views spread over
    threads on CPU)."""
    _many(pairs, _host_zero, zero_pruned)


def narrow_and_zero_many(pairs, threshold):
    """:func:`narrow_and_zero` for every ``(weight, keep)`` of ``pairs`` (host views spread over
    threads on CPU)."""
    _many(pairs, lambda weight, keep: _host_narrow_and_zero(weight, keep, threshold),
          lambda weight, keep: narrow_and_zero(weight, keep, threshold))


def narrow_and_zero(weight, keep, threshold):
    """Threshold mode's step: ``keep &= |w| >= threshold``, then ``w *= keep``, in place.

    The comparison is made in float32 for float16/bfloat16 weights (as the prune events score).

    Args:
        weight: The parameter.
        keep: Its bool mask, narrowed in place (masks only grow).
        threshold: Python float.
    """
    pair = _host_pair(weight, keep)
    if pair is not None:
        _host_narrow_and_zero(pair[0], pair[1], threshold)
        return
    with paddle.no_grad():
        for part, keep_part in _slices(weight, keep):
            magnitude = paddle.abs(part if part.dtype == paddle.float32
                                   else paddle.cast(part, paddle.float32))
            keep_part.logical_and_(magnitude >= threshold)
            part.multiply_(as_multiplier(keep_part, part.dtype))

