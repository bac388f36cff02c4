"""n:m sparsity at a prune event: keep at most n of every m consecutive input-channel weights
(the largest |w|; already pruned weights go first, so masks only grow)."""


def nm_pattern_keep(ops, scores, keep, n, m, in_axis):
    """Bool mask keeping the ``n`` best-scored of every ``m`` consecutive input-channel weights.

    Ties go as a stable sort orders them: of equal scores, the earlier weight is dropped first.

    Args:
        ops: :data:`~.array_ops.DEVICE` or :data:`~.array_ops.HOST`.
        scores: Element scores shaped like the parameter (|w|, ``PRUNED_SCORE`` where pruned,
            see :func:`~prune_plugin.core.scores.element_scores`); ``shape[in_axis]`` must be
            divisible by ``m``.
        keep: The current bool mask, or None (nothing pruned yet).
        n, m: Keep at most n of every m.
        in_axis: The input-channel axis.

    Returns:
        A bool mask of the parameter's shape.
    """
    ndim = len(scores.shape)
    perm = [a for a in range(ndim) if a != in_axis] + [in_axis]
    moved = scores if in_axis == ndim - 1 else scores.transpose(perm)
    groups = moved.reshape([-1, m])
    order = ops.argsort_stable(groups, 1)
    rank = ops.argsort_stable(order, 1)  # where each weight stands in its group's order
    new_keep = (rank >= m - n).reshape(list(moved.shape))
    if in_axis != ndim - 1:
        new_keep = new_keep.transpose([perm.index(a) for a in range(ndim)])
    return new_keep if keep is None else new_keep & keep
