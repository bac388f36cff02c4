"""Mask arithmetic on numpy arrays: scores, exact selection, blocks and n:m patterns.

Pure functions, no paddle: the pruner converts weights to numpy at prune events only.
A mask is a bool array, True where the weight is kept. Pruned positions score -1 so that
they are always the first chosen again: masks only grow.
"""
import numpy as np

PRUNED_SCORE = -1.0


def _to_oir(weight, out_axis, in_axis):
    """View ``weight`` as [out, in, rest] (rest = kernel elements)."""
    w = np.moveaxis(weight, out_axis, 0)
    if in_axis is None:
        return w.reshape(w.shape[0], 1, 1), w.shape
    in_axis_after = in_axis if in_axis > out_axis else in_axis + 1
    w = np.moveaxis(w, in_axis_after, 1)
    moved_shape = w.shape
    return w.reshape(w.shape[0], w.shape[1], -1), moved_shape


def _from_oir(arr, moved_shape, out_axis, in_axis):
    w = arr.reshape(moved_shape)
    if in_axis is None:
        return np.moveaxis(w, 0, out_axis)
    in_axis_after = in_axis if in_axis > out_axis else in_axis + 1
    w = np.moveaxis(w, 1, in_axis_after)
    return np.moveaxis(w, 0, out_axis)


def block_scores(weight, keep, block, out_axis, in_axis):
    """Score each block of ``block=(m, n)`` by its mean |w|; partial edge blocks allowed.

    Args:
        weight: numpy array of the parameter.
        keep: bool array, current mask (True = kept), same shape.
        block: (m, n): m output channels x n input channels x the whole kernel.
        out_axis: Axis of output channels.
        in_axis: Axis of input channels (None for 1-D).

    Returns:
        (scores, sizes): float32 arrays of shape [ceil(O/m), ceil(I/n)]; a block that is
        already pruned scores ``PRUNED_SCORE``; sizes is the number of weights in each block.
    """
    m, n = block
    w, _ = _to_oir(np.abs(weight, dtype=np.float32), out_axis, in_axis)
    k, _ = _to_oir(keep, out_axis, in_axis)
    o, i, r = w.shape
    bo, bi = -(-o // m), -(-i // n)
    padded = np.zeros((bo * m, bi * n, r), dtype=np.float32)
    padded[:o, :i] = w
    sums = padded.reshape(bo, m, bi, n, r).sum(axis=(1, 3, 4))
    rows = np.full(bo, m, dtype=np.int64)
    rows[-1] = o - (bo - 1) * m
    cols = np.full(bi, n, dtype=np.int64)
    cols[-1] = i - (bi - 1) * n
    sizes = np.outer(rows, cols) * r
    scores = (sums / sizes).astype(np.float32)
    kept_any = np.zeros((bo * m, bi * n), dtype=bool)
    kept_any[:o, :i] = k.any(axis=2)
    kept_any = kept_any.reshape(bo, m, bi, n).any(axis=(1, 3))
    scores[~kept_any] = PRUNED_SCORE
    return scores, sizes


def expand_blocks(block_keep, block, shape, out_axis, in_axis):
    """Turn a [ceil(O/m), ceil(I/n)] bool block mask back into a mask of ``shape``."""
    m, n = block
    probe = np.empty(shape, dtype=bool)
    oir, moved_shape = _to_oir(probe, out_axis, in_axis)
    o, i, r = oir.shape
    full = np.repeat(np.repeat(block_keep, m, axis=0), n, axis=1)[:o, :i]
    full = np.broadcast_to(full[:, :, None], (o, i, r))
    return np.ascontiguousarray(_from_oir(full, moved_shape, out_axis, in_axis))


def unit_scores(weight, keep, block, out_axis, in_axis):
    """Scores and sizes of the pruning units of one parameter (elements or blocks).

    ``keep`` may be None (nothing pruned yet).
    """
    if tuple(block) == (1, 1):
        scores = np.abs(weight, dtype=np.float32)
        if keep is not None:
            scores[~keep] = PRUNED_SCORE
        return scores, None
    if keep is None:
        keep = np.ones(weight.shape, dtype=bool)
    return block_scores(weight, keep, block, out_axis, in_axis)


_SAMPLE_ABOVE = 1 << 21   # arrays larger than this are narrowed down from a sample first
_SAMPLE_SIZE = 1 << 17
_SAMPLE_MARGIN = 0.004    # quantile margin around k/n: over 5 standard errors of the sample


def kth_smallest(values, k):
    """The ``k``-th smallest (0-based) of a 1-D array, by partial selection; exact.

    Large arrays are narrowed first: a random sample brackets the answer between two values,
    one pass counts what lies below the bracket and collects what lies inside it, and only
    those (~1% of the array) are partitioned. When the sample misses, a full partition runs.
    ``values`` may be reordered (callers pass temporaries).
    """
    n = values.size
    if n > _SAMPLE_ABOVE:
        rng = np.random.default_rng(k)
        sample = values[rng.integers(0, n, _SAMPLE_SIZE)]
        q = k / n
        lo_i = int((q - _SAMPLE_MARGIN) * _SAMPLE_SIZE)
        hi_i = int((q + _SAMPLE_MARGIN) * _SAMPLE_SIZE)
        if lo_i > 0 and hi_i < _SAMPLE_SIZE - 1:
            sample.partition([lo_i, hi_i])
            lo, hi = sample[lo_i], sample[hi_i]
            below = int(np.count_nonzero(values < lo))
            band = values[(values >= lo) & (values <= hi)]
            if below <= k < below + band.size:
                band.partition(k - below)
                return band[k - below]
    values.partition(k)
    return values[k]


def smallest_threshold(scores, sizes, budget, overwrite=False):
    """Find the threshold that prunes the smallest-scored units worth ``budget`` weights.

    Units with ``score < threshold`` are pruned, then the first ``ties`` units (in flat order)
    with ``score == threshold``. When all units have size 1 this prunes exactly ``budget``
    units; with blocks it prunes the most blocks, in score order, whose sizes add up to at
    most ``budget``. Uses a partial selection (:func:`kth_smallest`), never a full sort.

    Args:
        scores: 1-D float array.
        sizes: 1-D int array of unit sizes, or None for all ones.
        budget: Number of weights to prune.
        overwrite: ``scores`` is a temporary the selection may reorder (saves a copy).

    Returns:
        (threshold, ties): ``threshold`` is ``-inf`` when nothing is pruned.
    """
    total = scores.size if sizes is None else int(sizes.sum())
    budget = int(min(max(budget, 0), total))
    if budget == 0 or scores.size == 0:
        return float('-inf'), 0
    if sizes is None or (sizes == sizes.flat[0]).all():
        unit = 1 if sizes is None else int(sizes.flat[0])
        count = budget // unit
        if count == 0:
            return float('-inf'), 0
        t = kth_smallest(scores if overwrite else scores.copy(), count - 1)
        below = int(np.count_nonzero(scores < t))
        return float(t), count - below
    # Blocks of different sizes: the k-th smallest score over the weights (each weight carries
    # its block's score) is a partial selection too. Every block scoring below it fits in the
    # budget; blocks tied with it are then taken in flat order while they fit, which is what
    # a stable sort of the blocks followed by a cumulative sum of their sizes would choose.
    t = kth_smallest(np.repeat(scores, sizes), budget - 1)
    below = scores < t
    room = budget - int(sizes[below].sum())
    tied_sizes = sizes[scores == t]
    fits = int(np.searchsorted(np.cumsum(tied_sizes), room, side='right'))
    if fits == 0 and not below.any():
        return float('-inf'), 0
    return float(t), fits


def prune_below(scores, threshold, ties):
    """Bool array, True where a unit is pruned: ``score < threshold`` plus the first ``ties`` equal ones."""
    pruned = scores < threshold
    if ties > 0:
        tied = np.flatnonzero(scores == threshold)[:ties]
        pruned.flat[tied] = True
    return pruned


def pattern_fits(shape, in_axis, m):
    """True when the input-channel axis of ``shape`` splits into groups of ``m``."""
    return in_axis is not None and len(shape) >= 2 and shape[in_axis] % m == 0


def nm_pattern_keep(weight, keep, n, m, in_axis):
    """Mask keeping the ``n`` largest |w| in every ``m`` consecutive input-channel weights.

    Already pruned weights stay pruned (they score -1, so they are dropped first).

    Args:
        weight: numpy array; ``weight.shape[in_axis]`` must be divisible by ``m``.
        keep: current bool mask.
        n, m: keep at most n of every m.
        in_axis: The input-channel axis.

    Returns:
        bool array of weight's shape.
    """
    scores = np.abs(weight, dtype=np.float32)
    scores[~keep] = PRUNED_SCORE
    moved = np.moveaxis(scores, in_axis, -1)
    groups = moved.reshape(-1, m)
    order = np.argsort(groups, axis=1, kind='stable')
    drop = np.zeros_like(groups, dtype=bool)
    np.put_along_axis(drop, order[:, :m - n], True, axis=1)
    new_keep = ~drop.reshape(moved.shape)
    return np.moveaxis(new_keep, -1, in_axis) & keep


def satisfies_block(keep, block, out_axis, in_axis):
    """True when every block of ``keep`` is all kept or all pruned."""
    m, n = block
    k, _ = _to_oir(keep, out_axis, in_axis)
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
