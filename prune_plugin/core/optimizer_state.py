"""The optimizer tensors that belong to a parameter: moments (dropped at prune events) and the
fp32 master copy of multi-precision optimizers (zeroed with the weight every step)."""

_WRAPPER_ATTRIBUTES = ('_inner_opt', '_optimizer')


def innermost_optimizer(optimizer):
    """The ``paddle.optimizer.Optimizer`` inside Fleet / AMP / gradient-merge wrappers."""
    inner = optimizer
    for _ in range(8):
        nested = next((getattr(inner, a) for a in _WRAPPER_ATTRIBUTES
                       if getattr(inner, a, None) is not None), None)
        if nested is None or nested is inner:
            break
        inner = nested
    return inner


def master_weight(optimizer, param):
    """The fp32 master copy of ``param`` (AMP O2 with ``multi_precision``), or None."""
    if optimizer is None:
        return None
    return (getattr(optimizer, '_master_weights', None) or {}).get(param.name)


def moments(optimizer, param):
    """The optimizer's accumulators shaped like ``param`` (velocity, Adam's moment1/moment2).

    Scalars such as Adam's beta powers are left out: they do not belong to single weights.
    """
    if optimizer is None:
        return []
    found = []
    for per_param in getattr(optimizer, '_accumulators', {}).values():
        accumulator = per_param.get(param.name)
        if accumulator is not None and tuple(accumulator.shape) == tuple(param.shape):
            found.append(accumulator)
    return found
