"""Argument checks shared by the pruners and the config block: each names what is allowed."""
import re

import numpy as np

from .errors import PruneConfigError

MODES = ('ratio', 'threshold')
PRUNE_PARAMS_TYPES = (None, 'conv1x1_only')


def is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def parse_sparse_pattern(pattern):
    """Parse ``'n:m'`` into ``(n, m)``.

    Raises:
        PruneConfigError: the pattern is not two ints ``n:m`` with ``0 < n < m``.
    """
    if pattern is None:
        return None
    allowed = "a string 'n:m' with ints 0 < n < m, e.g. '2:4'"
    if not isinstance(pattern, str) or pattern.count(':') != 1:
        raise PruneConfigError("sparse_pattern", pattern, allowed)
    n_text, m_text = pattern.split(':')
    if not (n_text.strip().isdigit() and m_text.strip().isdigit()):
        raise PruneConfigError("sparse_pattern", pattern, allowed)
    n, m = int(n_text), int(m_text)
    if not 0 < n < m:
        raise PruneConfigError("sparse_pattern", pattern, allowed)
    return n, m


def validate_pruner_args(mode, threshold, ratio, prune_params_type, skip_params_func,
                         local_sparsity, sparse_block, prune_params, skip_params):
    """Check the pruner arguments that need no model.

    Raises:
        PruneConfigError: naming the argument, its value and what is allowed.
    """
    if mode not in MODES:
        raise PruneConfigError("mode", mode, f"one of {list(MODES)}")
    if not is_number(threshold) or not np.isfinite(threshold) or threshold < 0:
        raise PruneConfigError("threshold", threshold, "a float >= 0")
    if not is_number(ratio) or not 0.0 <= ratio < 1.0:
        raise PruneConfigError("ratio", ratio, "a float in [0, 1)")
    if prune_params_type not in PRUNE_PARAMS_TYPES:
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
            or not all(is_int(v) and v > 0 for v in sparse_block)):
        raise PruneConfigError("sparse_block", sparse_block,
                               "two positive ints [m, n], e.g. [1, 1] or [2, 1]")
    for key, value in (("prune_params", prune_params), ("skip_params", skip_params)):
        if value is None:
            continue
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise PruneConfigError(key, value, "a list of regular expressions (strings)")
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as err:
                raise PruneConfigError(key, pattern, f"a valid regular expression ({err})")
