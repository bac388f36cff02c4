"""The arithmetic a prune event needs, for paddle tensors on their device and for numpy arrays.

The prune-event algorithms (:mod:`.scores`, :mod:`.order_stats`, :mod:`.nm_pattern`) are
written once against these few operations. ``ops_for(place)`` picks:

- :data:`DEVICE` (paddle ops on the weights' device) everywhere but CPU: nothing is copied to
  the host; the host reads a handful of numbers per event (thresholds, counts).
- :data:`HOST` (numpy) on CPU, where the device memory *is* host memory: one copy of the
  weights per prune event (``param.numpy()``, a memcpy there) costs less than Paddle's
  single-threaded CPU kernels doing the same work: a prune event on YOLOv3-MobileNetV1 took
  147 ms of CPU time with numpy and 432 ms with paddle ops (global ratio), 303 ms and
  1,471 ms (2x1 blocks), on the 2-core test machine. The steps between events use paddle ops
  on every device (:mod:`.kernels`).
"""
import numpy as np
import paddle

from .kernels import as_multiplier


class DeviceOps:
    """Paddle ops on the tensors' own device; counts stay 0-d tensors until :meth:`read`."""

    @staticmethod
    def weights(param):
        return param

    @staticmethod
    def mask(keep):
        return keep

    @staticmethod
    def to_mask(keep, param):
        return keep if keep.is_contiguous() else keep.contiguous()

    @staticmethod
    def magnitude(weight):
        return paddle.abs(weight if weight.dtype == paddle.float32 else weight.astype('float32'))

    @staticmethod
    def mark_pruned(scores, keep, value):
        kept = as_multiplier(keep, 'float32')
        # kept: s * 1 + 0 = s exactly; pruned: s * 0 + (value - 0) (weights are finite here)
        return scores * kept + (1.0 - kept) * value

    @staticmethod
    def read_floats(values):
        """0-d tensors -> Python floats, in one sync."""
        return paddle.stack([v.astype('float64') for v in values]).tolist() if values else []

    @staticmethod
    def read_ints(values):
        """0-d tensors (integral values) -> Python ints, in one sync."""
        return [int(v) for v in DeviceOps.read_floats(values)]

    @staticmethod
    def count(mask):
        if int(mask.size) < 1 << 24:  # float32 counts exactly up to 2**24: the fastest sum
            return paddle.sum(as_multiplier(mask.reshape([-1]), 'float32'))
        return paddle.sum(mask.reshape([-1]).astype('int64'))

    @staticmethod
    def total(values):
        return paddle.sum(values.astype('int64') if values.dtype != paddle.float32 else values)

    @staticmethod
    def peak(values):
        return paddle.max(values)

    @staticmethod
    def select(values, mask):
        return paddle.masked_select(values, mask)

    @staticmethod
    def concat(parts):
        return paddle.concat(parts) if len(parts) > 1 else parts[0]

    @staticmethod
    def cumsum(values):
        return paddle.cumsum(values).reshape(values.shape)

    @staticmethod
    def first_true(mask, count):
        """``mask`` with only its first ``count`` True entries (flat order) left True."""
        return mask & (paddle.cumsum(mask.astype('int64')).reshape(mask.shape) <= count)

    @staticmethod
    def repeat(values, sizes):
        return paddle.repeat_interleave(values, sizes)

    @staticmethod
    def argsort_stable(values, axis):
        return paddle.argsort(values, axis=axis, stable=True)

    @staticmethod
    def pad_end(values, shape):
        """``values`` padded with zeros (False) at the end of each axis up to ``shape``."""
        pad = []
        for have, want in zip(values.shape, shape):
            pad += [0, want - have]
        if values.dtype == paddle.bool:
            return paddle.nn.functional.pad(values.astype('int32'), pad).astype('bool')
        return paddle.nn.functional.pad(values, pad)

    @staticmethod
    def full_like(values, fill):
        return paddle.full_like(values, fill)

    @staticmethod
    def where(condition, a, b):
        return paddle.where(condition, a, b)

    @staticmethod
    def broadcast(values, shape):
        return values.expand(shape)

    @staticmethod
    def sum(values, axis):
        return values.sum(axis=list(axis))

    @staticmethod
    def any(values, axis):
        return values.any(axis=list(axis))

    @staticmethod
    def order_small(values, positions):
        """Values at 0-based ``positions`` of ``sorted(values)`` (Python floats, one sync)."""
        ordered = paddle.sort(values)
        return DeviceOps.read_floats([ordered[p] for p in positions])

    @staticmethod
    def int64(values):
        return values.astype('int64')


class HostOps:
    """numpy on host copies: what a prune event on CPU uses (see the module docstring)."""

    @staticmethod
    def weights(param):
        # numpy has no bfloat16: Paddle would hand over the raw bits as uint16
        return (param.astype('float32') if param.dtype == paddle.bfloat16 else param).numpy()

    @staticmethod
    def mask(keep):
        return keep.numpy()

    @staticmethod
    def to_mask(keep, param):
        return paddle.to_tensor(np.ascontiguousarray(keep), place=param.place)

    @staticmethod
    def magnitude(weight):
        return np.abs(weight, dtype=np.float32)

    @staticmethod
    def mark_pruned(scores, keep, value):
        scores[~keep] = value
        return scores

    @staticmethod
    def read_floats(values):
        return [float(v) for v in values]

    @staticmethod
    def read_ints(values):
        return [int(v) for v in values]

    @staticmethod
    def count(mask):
        return int(np.count_nonzero(mask))

    @staticmethod
    def total(values):
        return values.sum(dtype=np.float32 if values.dtype == np.float32 else np.int64)

    @staticmethod
    def peak(values):
        return values.max()

    @staticmethod
    def select(values, mask):
        return values[mask]

    @staticmethod
    def concat(parts):
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    @staticmethod
    def cumsum(values):
        return np.cumsum(values.ravel()).reshape(values.shape)

    @staticmethod
    def first_true(mask, count):
        """``mask`` with only its first ``count`` True entries (flat order) left True."""
        first = np.zeros(mask.shape, dtype=bool)
        first.flat[np.flatnonzero(mask)[:count]] = True
        return first

    @staticmethod
    def repeat(values, sizes):
        return np.repeat(values, sizes)

    @staticmethod
    def argsort_stable(values, axis):
        return np.argsort(values, axis=axis, kind='stable')

    @staticmethod
    def pad_end(values, shape):
        """``values`` padded with zeros (False) at the end of each axis up to ``shape``."""
        padded = np.zeros(shape, dtype=values.dtype)
        padded[tuple(slice(0, n) for n in values.shape)] = values
        return padded

    @staticmethod
    def full_like(values, fill):
        return np.full_like(values, fill)

    @staticmethod
    def where(condition, a, b):
        return np.where(condition, a, b)

    @staticmethod
    def broadcast(values, shape):
        return np.broadcast_to(values, shape)

    @staticmethod
    def sum(values, axis):
        return values.sum(axis=tuple(axis))

    @staticmethod
    def any(values, axis):
        return values.any(axis=tuple(axis))

    @staticmethod
    def order_small(values, positions):
        host = values.copy()
        host.partition(positions)
        return [float(host[p]) for p in positions]

    @staticmethod
    def int64(values):
        return values.astype(np.int64)


DEVICE = DeviceOps()
HOST = HostOps()


def ops_for(place):
    """:data:`HOST` for CPU places, :data:`DEVICE` for the rest (see the module docstring)."""
    return HOST if place.is_cpu_place() else DEVICE
