"""Errors raised for bad pruning arguments and configs."""


class PruneConfigError(ValueError):
    """A pruning argument or config key has a value that is not allowed.

    The message always names the argument, the value given and what is allowed, e.g.
    ``ratio=1.3 is not allowed: expected a float in [0, 1)``.

    Args:
        key: Name of the argument or config key (``"ratio"``, ``"UnstructuredPrune.gmp"``).
        value: The value that was given.
        allowed: A short description of what is allowed.
    """

    def __init__(self, key, value, allowed):
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key}={value!r} is not allowed: expected {allowed}")


class NonFiniteWeightsError(ValueError):
    """Weights to be pruned hold NaN or Inf at a prune event (a diverged run).

    Raised before anything is pruned: no threshold is computed from the bad values and no weight,
    mask or optimizer state changes.

    Args:
        names: Structured names of the parameters with non-finite values, in model order.
        iteration: The pruner's iteration at the prune event.
    """

    def __init__(self, names, iteration):
        self.names = list(names)
        self.iteration = iteration
        shown = ', '.join(self.names[:8]) + (f" and {len(self.names) - 8} more"
                                              if len(self.names) > 8 else '')
        super().__init__(
            f"NaN/Inf in {len(self.names)} prunable parameter(s) at iteration {iteration}: "
            f"{shown}; training has diverged, nothing was pruned (lower the learning rate or "
            f"resume from an earlier checkpoint)")
