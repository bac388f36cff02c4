"""Argument checks shared by the pruners and the config block: each names what is allowed.

Every check tests the type before it compares, so a string, list, dict, null or bool where a
number belongs is a :class:`PruneConfigError`, never a ``TypeError`` from ``<=``.
"""
import math
import re

import numpy as np

from .errors import PruneConfigError

MODES = ('ratio', 'threshold')
PRUNE_PARAMS_TYPES = (None, 'conv1x1_only')
MAX_INT = 2**31 - 1  # iterations, epochs, steps, block sizes: larger is a typo, not a schedule


def is_int(value):
    """An int (Python or numpy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value):
    """A real int or float (Python or numpy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def finite_float(value):
    """``float(value)`` for a finite real number, else None (NaN, inf, 10**400, '0.5', True)."""
    if not is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def text_hint(value):
    """A hint for a number that arrived as text (PyYAML reads ``1e-3`` as a string)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return ''
        if math.isfinite(number):
            return " (a number, not text: PyYAML reads 1e-3 as text; write 1.0e-3)"
    return ''


def check_int(key, value, minimum=0, maximum=MAX_INT):
    """``value`` if it is an int in ``[minimum, maximum]``.

    Raises:
        PruneConfigError: a bool, float, string, null... or an int out of range.

    Example:
        >>> check_int('UnstructuredPrune.gmp.pruning_steps', 10, minimum=1)
        10
    """
    if not is_int(value) or not minimum <= value <= maximum:
        raise PruneConfigError(key, value, f"an int in [{minimum}, {maximum}]{text_hint(value)}")
    return int(value)


def check_ratio(key, value):
    """``float(value)`` for a number in ``[0, 1)``.

    Raises:
        PruneConfigError: not a number, NaN, inf, or out of range.
    """
    number = finite_float(value)
    if number is None or not 0.0 <= number < 1.0:
        raise PruneConfigError(key, value, f"a float in [0, 1){text_hint(value)}")
    return number


def check_initial_ratio(key, value, target):
    """``float(value)`` for a GMP initial ratio in ``[0, target]``.

    Raises:
        PruneConfigError: not a number, NaN, inf, or out of range.
    """
    number = finite_float(value)
    if number is None or not 0.0 <= number <= target:
        raise PruneConfigError(key, value, f"a float in [0, ratio={target}]{text_hint(value)}")
    return number


def parse_sparse_pattern(pattern):
    """Parse ``'n:m'`` into ``(n, m)``.

    Raises:
        PruneConfigError: the pattern is not two ints ``n:m`` with ``0 < n < m``.
    """
    if pattern is None:
        return None
    allowed = f"a string 'n:m' with ints 0 < n < m <= {MAX_INT}, e.g. '2:4'"
    if not isinstance(pattern, str) or pattern.count(':') != 1:
        raise PruneConfigError("sparse_pattern", pattern, allowed)
    n_text, m_text = (text.strip() for text in pattern.split(':'))
    if not (n_text.isdecimal() and m_text.isdecimal()):
        raise PruneConfigError("sparse_pattern", pattern, allowed)
    n, m = int(n_text), int(m_text)
    if not 0 < n < m <= MAX_INT:
        raise PruneConfigError("sparse_pattern", pattern, allowed)
    return n, m


def _check_patterns(key, value):
    if value is None:
        return
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise PruneConfigError(key, value, "a list of regular expressions (strings)")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as err:
            raise PruneConfigError(key, pattern, f"a valid regular expression ({err})")


def validate_pruner_args(mode, threshold, ratio, prune_params_type, skip_params_func,
                         local_sparsity, sparse_block, prune_params, skip_params):
    """Check the pruner arguments that need no model.

    Raises:
        PruneConfigError: naming the argument, its value and what is allowed.
    """
    if not isinstance(mode, str) or mode not in MODES:
        raise PruneConfigError("mode", mode, f"one of {list(MODES)}")
    if finite_float(threshold) is None or threshold < 0:
        raise PruneConfigError("threshold", threshold, f"a float >= 0{text_hint(threshold)}")
    check_ratio("ratio", ratio)
    if prune_params_type is not None and (not isinstance(prune_params_type, str)
                                          or prune_params_type not in PRUNE_PARAMS_TYPES):
        raise PruneConfigError("prune_params_type", prune_params_type,
                               f"one of {list(PRUNE_PARAMS_TYPES)}")
    if skip_params_func is not None and not callable(skip_params_func):
        raise PruneConfigError("skip_params_func", skip_params_func,
                               "a callable fn(model) -> set of parameter names")
    if not isinstance(local_sparsity, (bool, np.bool_)):
        raise PruneConfigError("local_sparsity", local_sparsity, "true or false")
    if local_sparsity and mode == 'threshold':
        raise PruneConfigError("local_sparsity", local_sparsity,
                               "false with mode='threshold' (local sparsity needs a ratio)")
    if (not isinstance(sparse_block, (list, tuple)) or len(sparse_block) != 2
            or not all(is_int(v) and 0 < v <= MAX_INT for v in sparse_block)):
        raise PruneConfigError("sparse_block", sparse_block,
                               f"two positive ints [m, n] (at most {MAX_INT}), e.g. [1, 1] or "
                               "[2, 1]")
    _check_patterns("prune_params", prune_params)
    _check_patterns("skip_params", skip_params)
