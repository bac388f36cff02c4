"""Sparsity and size of a saved ``.pdparams``, read from the file alone (no model, no pruner).

Used by ``benchmarks.suites``. PaddleSlim's pruner (ppdet's built-in) registers one float32
``<param>_mask`` buffer per parameter, so those land in its checkpoints: they are counted in the
file size, listed apart and left out of the weight counts.
"""
import os
import zlib

import numpy as np

MASK_SUFFIX = '_mask'


def is_conv1x1(array):
    """A 4-D weight with a 1x1 kernel (what ``prune_params_type: conv1x1_only`` prunes)."""
    return array.ndim == 4 and tuple(array.shape[2:]) == (1, 1)


def expected_zeros(arrays, ratio, local_sparsity):
    """How many of ``arrays``' weights the plugin prunes for ``ratio`` (its own rounding).

    Global: ``round(ratio * N)`` over all prunable weights; local: ``round(ratio * n)`` per
    parameter, summed (Python's ``round``, as the pruner uses).
    """
    if local_sparsity:
        return sum(round(ratio * int(a.size)) for a in arrays)
    return round(ratio * sum(int(a.size) for a in arrays))


def measure_checkpoint(path, prune=None):
    """Zero counts and sizes of one checkpoint file.

    Args:
        path: A ``.pdparams`` file.
        prune: Optional ``{'ratio', 'local_sparsity', 'prune_params_type', ...}`` of the run
            (as ``launcher.py`` records it); adds ``expected_zeros`` for the prunable
            weights when the block is one this count covers (element-wise ratio on the 1x1 convs).

    Returns:
        A dict: ``bytes``, ``zlib_bytes`` (the file deflated at level 6: what its zeros save
        on disk or on the wire), ``weights`` / ``zeros`` (all float arrays but masks),
        ``conv1x1_weights`` / ``conv1x1_zeros``, ``mask_buffers`` / ``mask_bytes`` and, with
        ``prune``, ``expected_zeros`` (None when not computable).
    """
    import paddle

    state = paddle.load(path, return_numpy=True)
    with open(path, 'rb') as handle:
        raw = handle.read()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    masks = {k: v for k, v in arrays.items() if k.endswith(MASK_SUFFIX)}
    weights = {k: v for k, v in arrays.items()
               if k not in masks and np.issubdtype(v.dtype, np.floating)}
    conv1x1 = [v for v in weights.values() if is_conv1x1(v)]
    result = {
        'path': os.path.abspath(path),
        'bytes': len(raw),
        'zlib_bytes': len(zlib.compress(raw, 6)),
        'weights': int(sum(v.size for v in weights.values())),
        'zeros': int(sum(np.count_nonzero(v == 0) for v in weights.values())),
        'conv1x1_weights': int(sum(v.size for v in conv1x1)),
        'conv1x1_zeros': int(sum(np.count_nonzero(v == 0) for v in conv1x1)),
        'mask_buffers': len(masks),
        'mask_bytes': int(sum(v.nbytes for v in masks.values())),
    }
    if prune is not None:
        result['expected_zeros'] = _expected_for(prune, conv1x1)
    return result


def _expected_for(prune, conv1x1):
    simple = (prune.get('mode') == 'ratio' and prune.get('prune_params_type') == 'conv1x1_only'
              and tuple(prune.get('sparse_block') or (1, 1)) == (1, 1)
              and not prune.get('sparse_pattern') and not prune.get('prune_params')
              and not prune.get('skip_params'))
    if not simple:
        return None
    return expected_zeros(conv1x1, prune['ratio'], prune.get('local_sparsity', False))
