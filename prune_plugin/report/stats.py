"""Per-parameter sparsity numbers from plain weights: ``{name: array}`` in, rows (dicts) out.

The totals use the same definitions as :func:`prune_plugin.core.total_sparse` (all parameters)
and :func:`prune_plugin.core.total_sparse_conv1x1` (4-D weights with a 1x1 kernel), so a checkpoint
reports exactly what those give on the model it came from. ``prunable`` is what the pruner's
default skip rule keeps: every parameter with more than one dimension (norm weights are 1-D).
"""
from ..core.selection import is_conv1x1_shape
from ..core.stats import count_zeros
from .patterns import check_block, check_pattern, conforms_if_flipped

KINDS = ('conv1x1', 'conv kxk', 'depthwise', 'linear', 'other')


def param_kind(shape):
    """``'conv1x1'``, ``'depthwise'`` (4-D, one input channel, kernel > 1x1), ``'conv kxk'``,
    ``'linear'`` (2-D) or ``'other'`` (1-D, 3-D, 5-D, ...).

    Example:
        >>> param_kind((32, 1, 3, 3)), param_kind((64, 32, 1, 1)), param_kind((256, 1000))
        ('depthwise', 'conv1x1', 'linear')
    """
    shape = tuple(shape)
    if is_conv1x1_shape(shape):
        return 'conv1x1'
    if len(shape) == 4:
        return 'depthwise' if shape[1] == 1 else 'conv kxk'
    if len(shape) == 2:
        return 'linear'
    return 'other'


def is_prunable_shape(shape):
    """The pruner's default rule on shapes: more than one dimension."""
    return len(shape) > 1


def param_row(name, array, block=None, pattern=None, transposed=False):
    """The numbers of one parameter.

    Args:
        name: Parameter name.
        array: numpy array.
        block: ``(m, n)`` to check, or None.
        pattern: ``(n, m)`` to check, or None.
        transposed: The weight is a transposed conv (``[in, out, k...]``).

    Returns:
        dict with ``name, shape, kind, numel, zeros, sparsity, prunable, transposed`` and, for
        prunable weights, ``block`` / ``pattern`` (``'ok'``, ``'FAIL'``, ``'n/a'``) when asked;
        a failing conv weight that would conform as a transposed conv (or the other way round)
        gets ``block_if_flipped`` / ``pattern_if_flipped`` = True.
    """
    shape = tuple(int(d) for d in array.shape)
    numel = int(array.size)
    zeros = count_zeros(array)
    prunable = is_prunable_shape(shape)
    row = {'name': name, 'shape': shape, 'kind': param_kind(shape), 'numel': numel,
           'zeros': zeros, 'sparsity': zeros / numel if numel else 0.0, 'prunable': prunable,
           'transposed': bool(transposed)}
    if prunable and (block or pattern):
        keep = array != 0
        for key, check, spec in (('block', check_block, block),
                                 ('pattern', check_pattern, pattern)):
            if spec:
                row[key] = check(keep, spec, transposed)
                if row[key] == 'FAIL' and conforms_if_flipped(keep, check, spec, transposed):
                    row[f"{key}_if_flipped"] = True
    return row


def collect_param_stats(arrays, block=None, pattern=None, transposed=(), progress=iter):
    """Rows for every array, in the file's order; each array is scanned once.

    Args:
        arrays: ``{name: numpy array}``.
        block: ``(m, n)`` to check on prunable weights, or None.
        pattern: ``(n, m)`` to check on prunable weights, or None.
        transposed: Names of transposed-conv weights (``[in, out, k...]``).
        progress: Wraps the ``(name, array)`` iterator (e.g. a tqdm bar); ``iter`` by default.

    Returns:
        list of dicts (see :func:`param_row`).
    """
    transposed = set(transposed)
    return [param_row(name, array, block, pattern, name in transposed)
            for name, array in progress(arrays.items())]


def _fraction(rows):
    numel = sum(r['numel'] for r in rows)
    zeros = sum(r['zeros'] for r in rows)
    return {'params': len(rows), 'numel': numel, 'zeros': zeros,
            'sparsity': zeros / numel if numel else 0.0}


def sparsity_totals(rows):
    """Totals over all rows (never the filtered ones).

    Returns:
        ``{'all': ..., 'prunable': ..., 'conv1x1': ...}``, each
        ``{'params', 'numel', 'zeros', 'sparsity'}``. ``all`` equals ``total_sparse(model)`` and
        ``conv1x1`` equals ``total_sparse_conv1x1(model)`` for the model the weights came from.
    """
    return {
        'all': _fraction(rows),
        'prunable': _fraction([r for r in rows if r['prunable']]),
        'conv1x1': _fraction([r for r in rows if r['kind'] == 'conv1x1']),
    }


SORT_KEYS = ('order', 'name', 'sparsity', 'numel', 'zeros', 'kind')


def select_rows(rows, sort='order', top=None, min_sparsity=None, include_1d=False):
    """Filter, sort and cut the rows for display (totals are computed before this).

    Args:
        rows: From :func:`collect_param_stats`.
        sort: One of ``SORT_KEYS``; numbers sort largest first, names and kinds A-Z,
            ``order`` keeps the file's order.
        top: Keep the first ``top`` rows after sorting.
        min_sparsity: Keep rows with ``sparsity >= min_sparsity``.
        include_1d: Also list 1-D parameters (biases, norm weights).

    Returns:
        A new list.
    """
    chosen = [r for r in rows if include_1d or r['prunable']]
    if min_sparsity is not None:
        chosen = [r for r in chosen if r['sparsity'] >= min_sparsity]
    if sort in ('sparsity', 'numel', 'zeros'):
        chosen.sort(key=lambda r: r[sort], reverse=True)
    elif sort in ('name', 'kind'):
        chosen.sort(key=lambda r: (r[sort], r['name']))
    if top is not None:
        chosen = chosen[:top]
    return chosen
