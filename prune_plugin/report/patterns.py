"""Block and n:m pattern checks on the zeros of one weight, reusing the engine's mask checks.

A weight conforms when its zero pattern is one the pruner with ``sparse_block=[m, n]`` or
``sparse_pattern='n:m'`` could have produced: every block all zero or all non-zero; at most n
non-zeros in every m consecutive input-channel weights.
"""
import re

from ..core.masks import pattern_fits, satisfies_block, satisfies_pattern
from ..core.pruner import parse_sparse_pattern

CONFORMS, VIOLATES, NOT_APPLICABLE = 'ok', 'FAIL', 'n/a'


def parse_block(text):
    """Parse ``'MxN'`` (M output x N input channels) into ``(M, N)``.

    Raises:
        ValueError: not two positive ints joined by ``x``.
    """
    match = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', str(text))
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"block {text!r} should be MxN with positive ints, e.g. 2x1 or 4x1")
    return int(match.group(1)), int(match.group(2))


def parse_pattern(text):
    """Parse ``'N:M'`` into ``(N, M)`` with the pruner's own rule (ints ``0 < N < M``).

    Raises:
        ValueError: a bad pattern.
    """
    try:
        return parse_sparse_pattern(text)
    except ValueError:  # the pruner's PruneConfigError names its YAML key; say it CLI-wise
        raise ValueError(f"pattern {text!r} should be N:M with ints 0 < N < M, e.g. 2:4") \
            from None


def weight_axes(shape, transposed=False):
    """``(out_axis, in_axis)`` of a weight, as the pruner lays them out.

    Conv weights are ``[out, in, k...]``, transposed convs ``[in, out, k...]`` and 2-D weights
    paddle Linear's ``[in, out]``. A shape alone cannot tell a transposed conv from a conv: that
    comes from ``transposed`` (``--transposed REGEX``, or the program of an exported model).
    """
    if len(shape) <= 1:
        return 0, None
    if len(shape) == 2 or transposed:
        return 1, 0
    return 0, 1


def check_block(keep, block, transposed=False):
    """``'ok'`` when every ``(m, n)`` block of ``keep`` is all kept or all zero, else ``'FAIL'``.

    Args:
        keep: bool array, True where the weight is non-zero (at least 2-D).
        block: ``(m, n)``: m output x n input channels x the whole kernel.
        transposed: The weight is a transposed conv's ``[in, out, k...]``.
    """
    out_axis, in_axis = weight_axes(keep.shape, transposed)
    return CONFORMS if satisfies_block(keep, block, out_axis, in_axis) else VIOLATES


def check_pattern(keep, pattern, transposed=False):
    """``'ok'`` / ``'FAIL'`` for ``pattern=(n, m)``; ``'n/a'`` when inputs do not split by m."""
    n, m = pattern
    _, in_axis = weight_axes(keep.shape, transposed)
    if not pattern_fits(keep.shape, in_axis, m):
        return NOT_APPLICABLE
    return CONFORMS if satisfies_pattern(keep, n, m, in_axis) else VIOLATES


def conforms_if_flipped(keep, check, spec, transposed=False):
    """True when a conv weight failing ``check`` passes with the conv/transposed layout flipped.

    Points at transposed convs read from a state dict (which holds no layer types).
    """
    return keep.ndim > 2 and check(keep, spec, not transposed) == CONFORMS


def summarize_check(rows, key):
    """How the prunable weights fare on one check (``key`` = ``'block'`` or ``'pattern'``).

    Args:
        rows: Parameter rows from :func:`prune_plugin.report.stats.collect_param_stats`.
        key: The row field holding the check's result.

    Returns:
        dict: ``layers``, ``conforming``, ``violating``, ``not_applicable`` (layer counts),
        ``conforming_share`` (fraction of prunable weights in conforming layers),
        ``violating_layers`` (names) and ``holds`` (no layer violates).
    """
    checked = [r for r in rows if r.get(key) is not None]
    numel = sum(r['numel'] for r in checked)
    ok = [r for r in checked if r[key] == CONFORMS]
    bad = [r['name'] for r in checked if r[key] == VIOLATES]
    return {
        'layers': len(checked),
        'conforming': len(ok),
        'violating': len(bad),
        'not_applicable': len(checked) - len(ok) - len(bad),
        'conforming_share': sum(r['numel'] for r in ok) / numel if numel else 0.0,
        'violating_layers': bad,
        'conform_if_flipped': [r['name'] for r in checked if r.get(f"{key}_if_flipped")],
        'holds': not bad,
    }
