"""Exact order statistics at a prune event: the k-th smallest score, and the threshold that
prunes exactly a budget of weights (the tie rule included).

The k-th smallest of N scores (24.5M for YOLOv3-MobileNetV1) without a full sort: a spread
sample brackets the answer between two values; one pass per parameter counts the scores below
the bracket and gathers those inside it (~1% of N); only that band is ordered. A bracket that
misses falls back to ordering everything: the result is always exact. Written once for paddle
tensors on their device and for numpy arrays (``ops``, see :mod:`.array_ops`); with paddle ops
the host reads a few numbers per event (one sync per stage), never the scores.

The 55% point of 24.5M scores on the 2-core test CPU (CPU time, the same value each way):
``paddle.kthvalue`` 0.68 s, ``paddle.topk`` 2.8 s, ``paddle.sort`` 4.5 s, ``paddle.quantile``
4.6 s; this search 0.49 s with paddle ops, 0.16 s with numpy (the host copy included).
"""
_SAMPLE_ABOVE = 1 << 21   # more scores than this: narrow down from a sample first
_SAMPLE_SIZE = 1 << 17
_SAMPLE_MARGIN = 0.004    # quantile margin around k/N: over 5 standard errors of the sample


def _coprime_step(step):
    """``step`` nudged to share no factor 2, 3, 5 or 7 with kernel and channel periods."""
    while any(step % f == 0 for f in (2, 3, 5, 7)):
        step += 1
    return step


def _spread_sample(ops, parts, total):
    """About ``_SAMPLE_SIZE`` scores taken at an even stride through every part."""
    picks = []
    for part in parts:
        size = int(part.size)
        wanted = max(1, round(_SAMPLE_SIZE * size / total))
        step = _coprime_step(max(1, size // wanted)) if size > wanted else 1
        picks.append(part[step // 2::step])
    return ops.concat(picks)


def _counts_at(ops, parts, value, count_equal):
    """(number below ``value`` over all parts, [number equal to it per part] or None), one read."""
    below = [ops.count(part < value) for part in parts]
    equal = [ops.count(part == value) for part in parts] if count_equal else []
    numbers = ops.read_ints(below + equal)
    return sum(numbers[:len(parts)]), (numbers[len(parts):] if count_equal else None)


def _kth_exact(ops, parts, k, count_equal):
    value = ops.order_small(ops.concat(parts), [k])[0]
    below, equal = _counts_at(ops, parts, value, count_equal)
    return value, below, equal


def _kth_from_band(ops, parts, k, total, count_equal):
    sample = _spread_sample(ops, parts, total)
    size = int(sample.size)
    lo_i = int((k / total - _SAMPLE_MARGIN) * size)
    hi_i = int((k / total + _SAMPLE_MARGIN) * size)
    if lo_i <= 0 or hi_i >= size - 1:
        return None  # k near an end: the band would hold most scores anyway
    lo, hi = ops.order_small(sample, [lo_i, hi_i])
    below_lo, bands = [], []
    for part in parts:
        at_least_lo = part >= lo
        below_lo.append(int(part.size) - ops.count(at_least_lo))
        bands.append(ops.select(part, at_least_lo & (part <= hi)))
    below = sum(ops.read_ints(below_lo))
    band_size = sum(int(b.size) for b in bands)
    if not below <= k < below + band_size:
        return None  # the sample was unlucky
    value = ops.order_small(ops.concat(bands), [k - below])[0]
    band_below, equal = _counts_at(ops, bands, value, count_equal)
    return value, below + band_below, equal


def kth_smallest(ops, parts, k, count_equal=True):
    """The ``k``-th smallest (0-based) score over several 1-D float32 arrays; exact.

    Args:
        ops: :data:`~.array_ops.DEVICE` or :data:`~.array_ops.HOST`.
        parts: 1-D float32 tensors (one device) or numpy arrays, in model order.
        k: 0 <= k < total size.
        count_equal: Also count, per part, the scores equal to the value.

    Returns:
        ``(value, below, equal)``: the value (Python float), how many scores are below it, and
        how many equal it in each part (None without ``count_equal``).

    Example:
        >>> kth_smallest(HOST, [np.array([3., 1.], 'f4'), np.array([2., 2.], 'f4')], 2)
        (2.0, 1, [0, 2])
    """
    total = sum(int(p.size) for p in parts)
    if total > _SAMPLE_ABOVE:
        found = _kth_from_band(ops, parts, k, total, count_equal)
        if found is not None:
            return found
    return _kth_exact(ops, parts, k, count_equal)


def smallest_threshold(ops, units, budget, count_ties=True):
    """The threshold that prunes the smallest-scored units worth ``budget`` weights.

    Units with ``score < threshold`` are pruned, then the first ``ties`` units (in flat model
    order) with ``score == threshold``. With units of one size this prunes exactly
    ``budget // size`` units; with partial edge blocks it prunes the most blocks, in score
    order, whose sizes add up to at most ``budget`` (what a stable sort of the blocks followed
    by a cumulative sum of their sizes would choose).

    Args:
        ops: :data:`~.array_ops.DEVICE` or :data:`~.array_ops.HOST`.
        units: :class:`~prune_plugin.core.scores.Units` of the parameters, in model order.
        budget: Number of weights to prune.
        count_ties: Count the tied units per part (to hand ties out over several parameters).

    Returns:
        ``(threshold, ties, tied_per_part)``; ``threshold`` is ``-inf`` (and ``ties`` 0) when
        nothing is pruned; ``tied_per_part[i]`` counts the units of ``units[i]`` scoring exactly
        the threshold (None without ``count_ties``, except for unequal block sizes).
    """
    total = sum(u.weights for u in units)
    budget = int(min(max(budget, 0), total))
    nothing = float('-inf'), 0, [0] * len(units)
    if budget == 0:
        return nothing
    unit = units[0].uniform_size
    if unit and all(u.uniform_size == unit for u in units):
        count = budget // unit
        if count == 0:
            return nothing
        value, below, equal = kth_smallest(ops, [u.scores for u in units], count - 1,
                                           count_ties)
        return value, count - below, equal
    return _weighted_threshold(ops, units, budget) or nothing


def _weighted_threshold(ops, units, budget):
    # Blocks of different sizes: the k-th smallest score over the weights (each weight carries
    # its block's score). Every block below it fits in the budget; blocks tied with it are
    # then taken in flat order while they fit.
    value, _, _ = kth_smallest(ops, [ops.repeat(u.scores, u.sizes) for u in units], budget - 1,
                               count_equal=False)
    below_size, tied_size, tied = [], [], []
    for u in units:
        is_tied = u.scores == value
        below_size.append(ops.total(u.sizes * ops.int64(u.scores < value)))
        tied_size.append(ops.total(u.sizes * ops.int64(is_tied)))
        tied.append(ops.count(is_tied))
    numbers = ops.read_ints(below_size + tied_size + tied)
    n = len(units)
    below_total, tied_sizes, tied_counts = sum(numbers[:n]), numbers[n:2 * n], numbers[2 * n:]
    room, fits = budget - below_total, 0
    for u, size, count in zip(units, tied_sizes, tied_counts):
        if size <= room:
            room, fits = room - size, fits + count
            continue
        is_tied = u.scores == value
        running = ops.cumsum(u.sizes * ops.int64(is_tied))
        fits += ops.read_ints([ops.count(is_tied & (running <= room))])[0]
        break
    if fits == 0 and below_total == 0:
        return None
    return value, fits, tied_counts


def kept_units(ops, scores, threshold, ties):
    """Bool array, True where a unit is kept: ``score >= threshold`` except the first ``ties``
    units (flat order) scoring exactly ``threshold``."""
    keep = scores >= threshold
    if ties > 0:
        keep = keep & ~ops.first_true(scores == threshold, ties)
    return keep
