"""Mask layouts checked on numpy arrays: whether a shape takes an n:m pattern, whether a mask
is made of whole blocks or follows a pattern.

For reading masks back from files (``prune-report``) and for tests; the pruner computes its
masks on the device (:mod:`.scores`, :mod:`.order_stats`, :mod:`.nm_pattern`).
A mask is a bool array, True where the weight is kept.
"""
import numpy as np


def _to_oir(array, out_axis, in_axis):
    """View ``array`` as [out, in, rest] (rest = kernel elements)."""
    moved = np.moveaxis(array, out_axis, 0)
    if in_axis is None:
        return moved.reshape(moved.shape[0], 1, -1)
    in_axis_after = in_axis if in_axis > out_axis else in_axis + 1
    moved = np.moveaxis(moved, in_axis_after, 1)
    return moved.reshape(moved.shape[0], moved.shape[1], -1)


def pattern_fits(shape, in_axis, m):
    """True when the input-channel axis of ``shape`` splits into groups of ``m``."""
    return in_axis is not None and len(shape) >= 2 and shape[in_axis] % m == 0


def satisfies_block(keep, block, out_axis, in_axis):
    """True when every block of ``keep`` is all kept or all pruned."""
    m, n = block
    k = _to_oir(keep, out_axis, in_axis)
    o, i, r = k.shape
    bo, bi = -(-o // m), -(-i // n)
    padded_any = np.zeros((bo * m, bi * n, r), dtype=bool)
    padded_all = np.ones((bo * m, bi * n, r), dtype=bool)
    padded_any[:o, :i] = k
    padded_all[:o, :i] = k
    any_kept = padded_any.reshape(bo, m, bi, n, r).any(axis=(1, 3, 4))
    all_kept = padded_all.reshape(bo, m, bi, n, r).all(axis=(1, 3, 4))
    return bool((any_kept == all_kept).all())


def satisfies_pattern(keep, n, m, in_axis):
    """True when every group of ``m`` consecutive input-channel weights has at most ``n`` kept."""
    moved = np.moveaxis(keep, in_axis, -1)
    return bool((moved.reshape(-1, m).sum(axis=1) <= n).all())
