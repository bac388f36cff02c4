"""Magnitude pruning by ratio or threshold: ``UnstructuredPruner`` (PaddleSlim's API).

The call order in a training loop, as in PaddleSlim::

    pruner = UnstructuredPruner(model, mode='ratio', ratio=0.55)
    for batch in loader:
        loss.backward(); optimizer.step(); optimizer.clear_grad()
        pruner.step()          # after every optimizer update
    UnstructuredPruner.total_sparse(model)

``step()`` advances the pruner's iteration, runs a prune event when the schedule asks for one
and zeroes every pruned weight, whatever the optimizer did to it. Masks are bool tensors on the
weights' device, held by the pruner and never added to the model: checkpoints are plain sparse
weights, and the masks are read back from their zeros.

Between prune events a step is device work only (:mod:`.kernels`): no host copy, no sync.
Threshold mode narrows its masks (``keep &= |w| >= threshold``) in that same device work; its
prune event is the first step (and the first after a resume without masks).
"""
import numpy as np

from . import kernels
from .array_ops import DEVICE, ops_for
from .errors import PruneConfigError
from .events import PruneEvents, logger, rank
from .masks import pattern_fits
from .optimizer_state import innermost_optimizer, master_weight, moments
from .order_stats import kept_units
from .scores import unit_scores
from .selection import select_prunable
from .stats import sparsity_of_params, total_sparse, total_sparse_conv1x1
from .validation import is_int, parse_sparse_pattern, validate_pruner_args

__all__ = ['UnstructuredPruner', 'GMPUnstructuredPruner', 'parse_sparse_pattern']


class UnstructuredPruner(PruneEvents):
    """Magnitude pruning by ratio or threshold, element-wise, in blocks or in an n:m pattern.

    Args:
        model: The ``paddle.nn.Layer`` to prune.
        mode: ``'ratio'`` (prune the smallest ``ratio`` of the prunable weights) or
            ``'threshold'`` (prune weights with |w| < ``threshold``, checked every step).
        threshold: Threshold for ``mode='threshold'``.
        ratio: Ratio in [0, 1) for ``mode='ratio'``.
        prune_params_type: None (all weights but norms and 1-D) or ``'conv1x1_only'``.
        skip_params_func: ``fn(model) -> set`` of parameter names to skip (structured names as in
            ``state_dict`` or ``param.name``); replaces the default (norms and 1-D parameters).
        local_sparsity: Each parameter gets ``ratio`` (instead of the whole model).
        sparse_block: ``[m, n]``: m output x n input channels (whole kernel) pruned together,
            scored by mean |w|. Edge blocks may be smaller.
        sparse_pattern: ``'n:m'``: keep at most n of every m consecutive input-channel weights
            (layers that cannot take it are skipped, with one log line). Replaces ratio/threshold.
        prune_params: Regular expressions; only structured names matching one are pruned.
        skip_params: Regular expressions; structured names matching one are not pruned.
        optimizer: Optional optimizer whose moments and master weights are masked too.

    Raises:
        PruneConfigError: any bad argument, before a weight changes.

    Example:
        >>> pruner = UnstructuredPruner(model, mode='ratio', ratio=0.55)
        >>> pruner.step()
        >>> round(pruner.sparsity(), 2)
        0.55
    """

    def __init__(self, model, mode='ratio', threshold=0.01, ratio=0.55, prune_params_type=None,
                 skip_params_func=None, local_sparsity=False, sparse_block=(1, 1),
                 sparse_pattern=None, prune_params=None, skip_params=None, optimizer=None):
        validate_pruner_args(mode, threshold, ratio, prune_params_type, skip_params_func,
                             local_sparsity, sparse_block, prune_params, skip_params)
        self.pattern = parse_sparse_pattern(sparse_pattern)
        if self.pattern is not None and tuple(sparse_block) != (1, 1):
            raise PruneConfigError("sparse_block", list(sparse_block),
                                   "[1, 1] when sparse_pattern is set (use one or the other)")
        self.model = model
        self.mode = mode
        self.threshold = float(threshold)
        self.ratio = float(ratio)
        self.local_sparsity = bool(local_sparsity)
        self.sparse_block = (int(sparse_block[0]), int(sparse_block[1]))
        self.thresholds = {}
        self.iteration = 0
        self.mask_updates = 0  # prune events so far: the masks changed by the schedule
        self._ties = {}
        self._tie_counts = {}
        self._optimizer = None
        self._event = {}  # name -> (ops, units, prior mask) during one prune event
        self._masks = {}  # name -> bool tensor on the weight's device, True where kept
        self._mask_version = 0  # bumped whenever a mask changes
        self._counted = (-1, 0)  # (mask version, pruned weights) of the last count
        self._needs_update = True
        params = self._select_params(model, skip_params_func=skip_params_func,
                                     conv1x1_only=prune_params_type == 'conv1x1_only',
                                     prune_params=prune_params, skip_params=skip_params)
        if self.pattern is not None:
            params = self._params_fitting_pattern(params)
        if not params:
            raise PruneConfigError(
                "model", type(model).__name__,
                "a model with at least one prunable parameter (check prune_params_type, "
                "skip_params_func, prune_params and skip_params)")
        self.params = params
        self._total_weights = sum(int(np.prod(p.shape)) for p in params)
        if optimizer is not None:
            self.attach_optimizer(optimizer)

    def _select_params(self, model, **choice):
        """The :class:`~.selection.PrunableParam` list to own (the override point for another
        kind of model, e.g. a static program: :mod:`prune_plugin.static`)."""
        return select_prunable(model, **choice)

    def _master_of(self, p):
        """The fp32 master copy of ``p``'s weight, or None (override point, as ``_select_params``)."""
        return master_weight(self._optimizer, p.param)

    def _moments_of(self, p):
        """The optimizer moments shaped like ``p``'s weight (override point, as ``_select_params``)."""
        return moments(self._optimizer, p.param)

    def _params_fitting_pattern(self, params):
        n, m = self.pattern
        kept = [p for p in params if pattern_fits(p.shape, p.in_axis, m)]
        skipped = [p.name for p in params if p not in kept]
        if skipped and rank() == 0:
            logger.info("sparse_pattern %d:%d skips %d parameters whose input channels are not a "
                        "multiple of %d: %s", n, m, len(skipped), m, ', '.join(skipped))
        return kept

    def attach_optimizer(self, optimizer):
        """Also mask ``optimizer``'s moments (at prune events) and master weights (every step).

        Accepts Fleet / AMP wrappers; the innermost ``paddle.optimizer.Optimizer`` is used.
        """
        self._optimizer = innermost_optimizer(optimizer)
        return self

    @property
    def target_ratio(self):
        if self.pattern is not None:
            return 1.0 - self.pattern[0] / self.pattern[1]
        return self.ratio

    # ----- the step ----------------------------------------------------------------------
    def _update_due(self):
        return self._needs_update or not self._masks

    def _narrows_every_step(self):
        return self.mode == 'threshold' and self.pattern is None

    def step(self):
        """Call after each optimizer update: a prune event when due, then zero pruned weights."""
        if self._update_due():
            self.update_masks()
            self.update_params()
        elif self._narrows_every_step():
            self._narrow_threshold_masks()
        else:
            self.update_params()
        self.iteration += 1

    def update_params(self):
        """Set every pruned weight to 0 (and the optimizer's fp32 master copy of it, if any).

        ``step()`` calls it after every optimizer update, so whatever the optimizer did (momentum,
        Adam moments, weight decay), a pruned weight is exactly 0 when the step ends.
        """
        for p in self.params:
            keep = self._masks.get(p.name)
            if keep is not None:
                self._zero_weight(p, keep)

    def _zero_weight(self, p, keep, weight_done=False):
        if not weight_done:
            kernels.zero_pruned(p.param, keep)
        master = self._master_of(p)
        if master is not None:
            kernels.zero_pruned(master, keep)

    def _narrow_threshold_masks(self):
        """Threshold mode between events: ``keep &= |w| >= threshold`` and zero, on device."""
        for p in self.params:
            keep = self._masks[p.name]
            if self.sparse_block == (1, 1):
                kernels.narrow_and_zero(p.param, keep, self.threshold)
                self._zero_weight(p, keep, weight_done=True)
            else:
                units = unit_scores(DEVICE, p.param, keep, self.sparse_block, p.out_axis,
                                    p.in_axis)
                narrowed = self._expand(DEVICE, p, units, kept_units(DEVICE, units.scores,
                                                                      self.threshold, 0))
                self._masks[p.name] = DEVICE.to_mask(narrowed & keep, p.param)
                self._zero_weight(p, self._masks[p.name])
        self._mask_version += 1

    # ----- masks out ---------------------------------------------------------------------
    def apply_masks_to(self, tensors):
        """Zero pruned positions in a dict of tensors keyed by structured names (e.g. EMA weights).

        Args:
            tensors: ``{structured_name: paddle.Tensor or numpy array}``; names without a mask
                (or of another shape) are left alone.

        Returns:
            The number of tensors masked.
        """
        done = 0
        for name, keep in self._masks.items():
            tensor = tensors.get(name)
            if tensor is None or tuple(tensor.shape) != tuple(keep.shape):
                continue
            if isinstance(tensor, np.ndarray):
                tensor *= keep.numpy()
            else:
                kernels.zero_pruned(tensor, keep)
            done += 1
        return done

    @property
    def masks(self):
        """``{structured_name: bool paddle.Tensor}`` (True = kept) for the parameters pruned so far."""
        return dict(self._masks)

    def mask_of(self, name):
        """The bool mask of one parameter as numpy (all True before its first prune)."""
        p = next((p for p in self.params if p.name == name), None)
        if p is None:
            raise KeyError(f"{name!r} is not a prunable parameter; prunable: "
                           f"{[q.name for q in self.params][:10]}...")
        keep = self._masks.get(name)
        return np.ones(p.shape, dtype=bool) if keep is None else keep.numpy()

    def recover_masks_from_zeros(self):
        """Rebuild masks as ``weight != 0`` (after loading a sparse checkpoint)."""
        for p in self.params:
            self._set_mask(p, p.param.astype('bool'))  # a new, contiguous tensor

    # ----- numbers -----------------------------------------------------------------------
    def _pruned_count(self):
        """Pruned weights, counted on the device when the masks changed since the last count."""
        if self._counted[0] != self._mask_version:
            ops = ops_for(self.params[0].param.place)
            kept = ops.read_ints([ops.count(ops.mask(keep)) for keep in self._masks.values()])
            count = sum(int(keep.size) for keep in self._masks.values()) - sum(kept)
            self._counted = (self._mask_version, count)
        return self._counted[1]

    def sparsity(self):
        """Fraction of the prunable weights that are pruned (from the masks).

        Counted (one sync) only when the masks changed since the last call.
        """
        return self._pruned_count() / self._total_weights

    def prunable_sparsity(self):
        """Fraction of the prunable weights that are exactly zero (from the weights)."""
        return sparsity_of_params([p.param for p in self.params])

    # ----- checkpoint state --------------------------------------------------------------
    def state_dict(self):
        """The pruner's small resumable state: the iteration. Masks come back from the zeros."""
        return {'iteration': int(self.iteration)}

    def set_state_dict(self, state):
        """Resume from ``state_dict()``, after the model's sparse weights have been loaded."""
        if not isinstance(state, dict) or not is_int(state.get('iteration')) \
                or state['iteration'] < 0:
            raise PruneConfigError("pruner state", state, "a dict {'iteration': int >= 0}")
        self.iteration = int(state['iteration'])
        if self._pruning_started():
            self.recover_masks_from_zeros()
        self._needs_update = self.mode == 'ratio'

    def _pruning_started(self):
        return self.iteration > 0

    total_sparse = staticmethod(total_sparse)
    total_sparse_conv1x1 = staticmethod(total_sparse_conv1x1)


def __getattr__(name):
    """``GMPUnstructuredPruner`` lives in gmp.py (which imports this module); older imports
    from here still find it, looked up on first use so the two modules form no import cycle."""
    if name == 'GMPUnstructuredPruner':
        from .gmp import GMPUnstructuredPruner
        return GMPUnstructuredPruner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
