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
