"""Sparsity lines for PaddleClas eval / export, and the warning for weights that were not pruned.

``prune-eval`` and ``prune-export`` never prune: they read weights. A config with a
``slim: UnstructuredPrune`` block given dense weights (a checkpoint trained without the pruner,
or the clone's own ``tools/train.py`` without the hook line) would silently evaluate or export
a dense model; :func:`unpruned_weights_warning` says so.
"""
from ...core.selection import select_prunable
from ...core.stats import sparsity_of_params, total_sparse, total_sparse_conv1x1


def prunable_sparsity(spec, network):
    """Zero fraction of the weights ``spec`` would prune in ``network`` (nothing is changed)."""
    params = select_prunable(network, conv1x1_only=spec.prune_params_type == 'conv1x1_only',
                             prune_params=spec.prune_params and list(spec.prune_params),
                             skip_params=spec.skip_params and list(spec.skip_params))
    return sparsity_of_params([p.param for p in params])


def _target(spec):
    if spec.sparse_pattern:
        n, m = (int(v) for v in spec.sparse_pattern.split(':'))
        return 1.0 - n / m
    return spec.ratio if spec.mode == 'ratio' else None


def unpruned_weights_warning(spec, network, weights):
    """A warning line when ``network``'s weights are less sparse than ``spec`` asks, else None.

    Args:
        spec: The config's PruneSpec (None: no block, no warning).
        network: The model with ``weights`` loaded.
        weights: What was loaded (a path, for the message), or None (fresh weights).

    Returns:
        str or None.
    """
    if spec is None:
        return None
    reached = prunable_sparsity(spec, network)
    target = _target(spec)
    source = weights or "the freshly initialised model (no Global.pretrained_model)"
    if target is not None and reached + 5e-4 < target:
        return (f"the config has 'slim: {spec.name}' ({target:.0%} of the prunable weights) "
                f"but {source} has {reached:.2%} zeros there: these weights were not trained "
                f"with the pruner (evaluating and exporting do not prune; train with "
                f"prune-train or the attach_pruner line)")
    if target is None and reached == 0.0:
        return (f"the config has 'slim: {spec.name}' (threshold {spec.threshold:g}) but {source} "
                f"has no zero in the prunable weights: they were not trained with the pruner")
    return None


def sparsity_summary(network, spec=None):
    """``'total_sparse 0.6012  total_sparse_conv1x1 0.7500'`` (+ the prunable share with a spec)."""
    line = (f"total_sparse {total_sparse(network):.4f}  "
            f"total_sparse_conv1x1 {total_sparse_conv1x1(network):.4f}")
    if spec is not None:
        line += f"  prunable_sparse {prunable_sparsity(spec, network):.4f}"
    return line
