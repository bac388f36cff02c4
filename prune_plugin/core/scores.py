"""Scores of the pruning units at a prune event: elements or blocks, and block masks.

A unit is one weight or one block of ``m`` output x ``n`` input channels x the whole kernel.
Its score is its mean |w| (float32); a unit with nothing left to keep scores ``PRUNED_SCORE``,
below every live score, so it is always the first chosen again: masks only grow. Written once
for paddle tensors and numpy arrays: ``ops`` is :data:`~.array_ops.DEVICE` or
:data:`~.array_ops.HOST`.
"""
from dataclasses import dataclass

PRUNED_SCORE = -1.0


@dataclass
class Units:
    """The pruning units of one parameter.

    Attributes:
        scores: 1-D float32 scores, one per unit, in flat (row-major) order.
        weights: Number of weights the units cover (the parameter's size).
        sizes: 1-D int64 weights per unit, or None when every unit is one weight.
        block_shape: ``(ceil(O / m), ceil(I / n))`` for blocks, None for elements.
        uniform_size: The common unit size when all units have it, else None (partial blocks).
    """
    scores: object
    weights: int
    sizes: object = None
    block_shape: tuple = None
    uniform_size: int = 1


def element_scores(ops, weight, keep=None):
    """|w| per weight (float32, the weight's shape); ``PRUNED_SCORE`` where ``keep`` is False."""
    scores = ops.magnitude(weight)
    return scores if keep is None else ops.mark_pruned(scores, keep, PRUNED_SCORE)


def _layout(shape, out_axis, in_axis):
    """Permutation that moves out_axis first and in_axis second, and the [O, I, R] sizes."""
    front = [out_axis] if in_axis is None else [out_axis, in_axis]
    perm = front + [a for a in range(len(shape)) if a not in front]
    rest = 1
    for axis in perm[len(front):]:
        rest *= shape[axis]
    return perm, (shape[out_axis], 1 if in_axis is None else shape[in_axis], rest)


def _to_oir(values, perm, oir):
    moved = values if perm == sorted(perm) else values.transpose(perm)
    return moved.reshape(list(oir))


def _padded_blocks(ops, values3d, block, oir):
    """[O, I, R] -> [bo, m, bi, n, R], padded with zeros (False) at the far edges."""
    (m, n), (o, i, r) = block, oir
    bo, bi = -(-o // m), -(-i // n)
    if (bo * m, bi * n) != (o, i):
        values3d = ops.pad_end(values3d, [bo * m, bi * n, r])
    return values3d.reshape([bo, m, bi, n, r])


def block_scores(ops, weight, keep, block, out_axis, in_axis):
    """Mean |w| of each block of ``block=(m, n)``; partial edge blocks allowed.

    Args:
        ops: :data:`~.array_ops.DEVICE` or :data:`~.array_ops.HOST`.
        weight: The parameter's values (any float dtype).
        keep: Its bool mask (True = kept) or None (nothing pruned yet).
        block: ``(m, n)``: m output channels x n input channels x the whole kernel.
        out_axis: Axis of output channels.
        in_axis: Axis of input channels (None for 1-D).

    Returns:
        :class:`Units` with [bo * bi] scores (a block with nothing kept scores
        ``PRUNED_SCORE``) and their sizes.
    """
    m, n = block
    perm, oir = _layout(tuple(weight.shape), out_axis, in_axis)
    o, i, r = oir
    bo, bi = -(-o // m), -(-i // n)
    magnitude = _to_oir(ops.magnitude(weight), perm, oir)
    sums = ops.sum(_padded_blocks(ops, magnitude, block, oir), (1, 3, 4))
    rows = ops.full_like(sums[:, :1], float(m))
    rows[-1] = float(o - (bo - 1) * m)
    cols = ops.full_like(sums[:1, :], float(n))
    cols[:, -1] = float(i - (bi - 1) * n)
    sizes = rows * cols * float(r)
    scores = sums / sizes
    if keep is not None:
        kept = ops.any(_padded_blocks(ops, _to_oir(keep, perm, oir), block, oir), (1, 3, 4))
        scores = ops.where(kept, scores, ops.full_like(scores, PRUNED_SCORE))
    uniform = o % m == 0 and i % n == 0
    return Units(scores.reshape([-1]), o * i * r, ops.int64(sizes.reshape([-1])), (bo, bi),
                 m * n * r if uniform else None)


def unit_scores(ops, weight, keep, block, out_axis, in_axis):
    """:class:`Units` of one parameter: its weights (block ``(1, 1)``) or its blocks."""
    if tuple(block) == (1, 1):
        return Units(element_scores(ops, weight, keep).reshape([-1]), int(weight.size))
    return block_scores(ops, weight, keep, block, out_axis, in_axis)


def expand_blocks(ops, block_keep, block, shape, out_axis, in_axis):
    """Turn a bool [bo, bi] block mask into a bool mask of ``shape``."""
    m, n = block
    perm, (o, i, r) = _layout(tuple(shape), out_axis, in_axis)
    bo, bi = block_keep.shape
    full = ops.broadcast(block_keep.reshape([bo, 1, bi, 1]), [bo, m, bi, n])
    full = full.reshape([bo * m, bi * n])[:o, :i]
    full = ops.broadcast(full.reshape([o, i, 1]), [o, i, r]).reshape([shape[a] for a in perm])
    if perm != sorted(perm):
        full = full.transpose([perm.index(a) for a in range(len(perm))])
    return full
