"""Magnitude pruners: ``UnstructuredPruner`` (ratio / threshold) and ``GMPUnstructuredPruner``.

The call order in a training loop, as in PaddleSlim::

    pruner = UnstructuredPruner(model, mode='ratio', ratio=0.55)
    for batch in loader:
        loss.backward(); optimizer.step(); optimizer.clear_grad()
        pruner.step()          # after every optimizer update
    UnstructuredPruner.total_sparse(model)

``step()`` advances the pruner's iteration, recomputes masks when the schedule asks for it and
zeroes every pruned weight, whatever the optimizer did to it. Masks are bool tensors held by the
pruner, never added to the model: checkpoints are plain (sparse) weights, and the masks can be
read back from their zeros.
"""
import logging

import numpy as np
import paddle

from . import masks as mask_ops
from .errors import PruneConfigError
from .validation import is_int, is_number, parse_sparse_pattern, validate_pruner_args
from .schedule import GMPSchedule, gmp_ratio_at, resume_iteration_of
from .selection import select_prunable
from .stats import sparsity_of_params, total_sparse, total_sparse_conv1x1

logger = logging.getLogger('prune_plugin')

def _rank():
    try:
        return paddle.distributed.get_rank()
    except Exception:  # pragma: no cover - before init on odd builds
        return 0


class UnstructuredPruner:
    """Magnitude pruning by ratio or threshold, element-wise, in blocks or in an n:m pattern.

    Args:
        model: The ``paddle.nn.Layer`` to prune.
        mode: ``'ratio'`` (prune the smallest ``ratio`` of the prunable weights) or
            ``'threshold'`` (prune weights with |w| < ``threshold``).
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
        self.mask_updates = 0  # how many times the masks were recomputed (cheap change check)
        self._ties = {}
        self._optimizer = None
        self._score_cache = {}
        self._masks = {}  # name -> bool tensor, True where kept (1 byte per weight)
        self._needs_update = True
        params = select_prunable(model, skip_params_func=skip_params_func,
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
        if optimizer is not None:
            self.attach_optimizer(optimizer)

    def _params_fitting_pattern(self, params):
        n, m = self.pattern
        kept = [p for p in params if mask_ops.pattern_fits(p.shape, p.in_axis, m)]
        skipped = [p.name for p in params if p not in kept]
        if skipped and _rank() == 0:
            logger.info("sparse_pattern %d:%d skips %d parameters whose input channels are not a "
                        "multiple of %d: %s", n, m, len(skipped), m, ', '.join(skipped))
        return kept

    # ----- optimizer --------------------------------------------------------------------
    def attach_optimizer(self, optimizer):
        """Also mask ``optimizer``'s moments (at prune events) and master weights (every step).

        Accepts Fleet / AMP wrappers; the innermost ``paddle.optimizer.Optimizer`` is used.
        """
        inner = optimizer
        for _ in range(8):
            nxt = getattr(inner, '_inner_opt', None) or getattr(inner, '_optimizer', None)
            if nxt is None or nxt is inner:
                break
            inner = nxt
        self._optimizer = inner
        return self

    def _optimizer_tensors(self, param):
        """The optimizer's moments shaped like ``param``, and its fp32 master copy if any."""
        opt = self._optimizer
        if opt is None:
            return []
        found = []
        for per_param in getattr(opt, '_accumulators', {}).values():
            acc = per_param.get(param.name)
            if acc is not None and tuple(acc.shape) == tuple(param.shape):
                found.append(acc)
        master = getattr(opt, '_master_weights', {}).get(param.name)
        if master is not None:
            found.append(master)
        return found

    # ----- schedule ----------------------------------------------------------------------
    def _update_due(self):
        if self.mode == 'threshold':
            return True
        return self._needs_update

    def step(self):
        """Call after each optimizer update: update masks when due, then zero pruned weights."""
        if self._update_due():
            self.update_masks()
        self.update_params()
        self.iteration += 1

    def update_masks(self):
        """Recompute the masks from the current weights (``update_threshold`` then the masks)."""
        before = self.sparsity() if self._masks else 0.0
        self.thresholds = {}
        self._ties = {}
        self._score_cache = {}  # scores computed by update_threshold, reused once by the masks
        try:
            self.update_threshold()
            self._update_masks()
        finally:
            self._score_cache = {}
        self._needs_update = False
        self.mask_updates += 1
        after = self.sparsity()
        if self.mode == 'ratio' and after != before and _rank() == 0:
            logger.info("sparsity %.1f%% -> %.1f%% (target %.0f%%) @ iter %d", before * 100,
                        after * 100, self.target_ratio * 100, self.iteration)

    @property
    def target_ratio(self):
        if self.pattern is not None:
            return 1.0 - self.pattern[0] / self.pattern[1]
        return self.ratio

    # ----- masks -------------------------------------------------------------------------
    def _keep_of(self, p, default_all=True):
        mask = self._masks.get(p.name)
        if mask is None:
            return np.ones(p.shape, dtype=bool) if default_all else None
        return mask.numpy()

    def _scores(self, p, weight=None):
        cached = self._score_cache.pop(p.name, None)
        if cached is not None:
            return cached
        weight = p.param.numpy() if weight is None else weight
        scores = mask_ops.unit_scores(weight, self._keep_of(p, default_all=False),
                                      self.sparse_block, p.out_axis, p.in_axis)
        self._score_cache[p.name] = scores
        return scores

    def update_threshold(self):
        """Set the thresholds the next mask update uses (the override point for a criterion).

        Ratio mode sets ``self.threshold`` (global) or ``self.thresholds[name]`` (local) to the
        score of the last unit to prune, and ``self._ties`` to how many units scoring exactly the
        threshold are pruned too, so that exactly ``round(ratio * N)`` weights are pruned.
        A subclass may set ``self.threshold`` / ``self.thresholds`` from its own criterion: units
        scoring below the threshold are pruned (ties only if it fills ``self._ties``).
        Threshold mode keeps the configured threshold.
        """
        if self.mode != 'ratio' or self.pattern is not None:
            return
        if self.local_sparsity:
            for p in self.params:
                scores, sizes = self._scores(p)
                budget = round(self.ratio * int(np.prod(p.shape)))
                t, ties = mask_ops.smallest_threshold(
                    scores.ravel(), None if sizes is None else sizes.ravel(), budget)
                self.thresholds[p.name] = t
                self._ties[p.name] = ties
            return
        all_scores, all_sizes = [], []
        for p in self.params:
            scores, sizes = self._scores(p)
            all_scores.append(scores.ravel())
            if sizes is not None:
                all_sizes.append(sizes.ravel())
        total = sum(int(np.prod(p.shape)) for p in self.params)
        flat = np.concatenate(all_scores)
        flat_sizes = np.concatenate(all_sizes) if all_sizes else None
        self.threshold, self._ties['*'] = mask_ops.smallest_threshold(
            flat, flat_sizes, round(self.ratio * total), overwrite=True)

    def _update_masks(self):
        if self.pattern is not None:
            n, m = self.pattern
            for p in self.params:
                self._set_mask(p, mask_ops.nm_pattern_keep(p.param.numpy(), self._keep_of(p), n,
                                                           m, p.in_axis))
            return
        global_ties = self._ties.get('*', 0)
        for p in self.params:
            scores, _ = self._scores(p)
            if self.local_sparsity:
                threshold, ties = self.thresholds[p.name], self._ties.get(p.name, 0)
            else:
                threshold = self.threshold
                # global ties are taken in model order, the order update_threshold flattened
                ties = 0
                if global_ties > 0:
                    ties = min(global_ties, int(np.count_nonzero(scores == threshold)))
                    global_ties -= ties
            if self.mode == 'threshold':
                pruned_units = scores < threshold
            else:
                pruned_units = mask_ops.prune_below(scores, threshold, ties)
            if tuple(self.sparse_block) == (1, 1):
                keep = ~pruned_units
            else:
                keep = mask_ops.expand_blocks(~pruned_units, self.sparse_block, p.shape,
                                              p.out_axis, p.in_axis)
            prior = self._keep_of(p, default_all=False)
            self._set_mask(p, keep if prior is None else keep & prior)

    def _set_mask(self, p, keep):
        mask = paddle.to_tensor(keep, place=p.param.place)
        self._masks[p.name] = mask
        # momentum / Adam moments built up before the prune are dropped with the weight
        with paddle.no_grad():
            for tensor in self._optimizer_tensors(p.param):
                tensor.multiply_(mask.astype(tensor.dtype))

    def update_params(self):
        """Set every pruned weight to 0 (and the optimizer's fp32 master copy of it, if any).

        ``step()`` calls it after every optimizer update, so whatever the optimizer did (momentum,
        Adam moments, weight decay), a pruned weight is exactly 0 when the step ends.
        """
        masters = getattr(self._optimizer, '_master_weights', None) or {}
        with paddle.no_grad():
            for p in self.params:
                mask = self._masks.get(p.name)
                if mask is None:
                    continue
                p.param.multiply_(mask.astype(p.param.dtype))
                master = masters.get(p.param.name)
                if master is not None:
                    master.multiply_(mask.astype(master.dtype))

    def apply_masks_to(self, tensors):
        """Zero pruned positions in a dict of tensors keyed by structured names (e.g. EMA weights).

        Args:
            tensors: ``{structured_name: paddle.Tensor}``; names without a mask are left alone.

        Returns:
            The number of tensors masked.
        """
        done = 0
        with paddle.no_grad():
            for name, mask in self._masks.items():
                tensor = tensors.get(name)
                if tensor is None or tuple(tensor.shape) != tuple(mask.shape):
                    continue
                if isinstance(tensor, np.ndarray):
                    tensor *= mask.numpy()
                else:
                    tensor.multiply_(mask.astype(tensor.dtype))
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
        return self._keep_of(p)

    def recover_masks_from_zeros(self):
        """Rebuild masks as ``weight != 0`` (after loading a sparse checkpoint)."""
        for p in self.params:
            self._set_mask(p, p.param.numpy() != 0)

    # ----- numbers -----------------------------------------------------------------------
    def sparsity(self):
        """Fraction of the prunable weights that are pruned (from the masks)."""
        total = sum(int(np.prod(p.shape)) for p in self.params)
        pruned = 0
        for p in self.params:
            mask = self._masks.get(p.name)
            if mask is not None:
                pruned += int(mask.size) - int(mask.astype('int64').sum())
        return pruned / total

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


class GMPUnstructuredPruner(UnstructuredPruner):
    """Ratio pruning whose ratio follows the GMP cubic schedule.

    Args:
        model: The ``paddle.nn.Layer`` to prune.
        ratio: Target ratio reached at the end of the pruning phase.
        prune_params_type, skip_params_func, local_sparsity, sparse_block, prune_params,
        skip_params, optimizer: as for :class:`UnstructuredPruner`.
        configs: ``{'stable_iterations', 'pruning_iterations', 'tunning_iterations',
            'pruning_steps', 'initial_ratio'}`` and optionally ``'resume_iteration'``.

    Raises:
        PruneConfigError: a bad argument or an inconsistent schedule.

    Example:
        >>> pruner = GMPUnstructuredPruner(model, ratio=0.75, configs={
        ...     'stable_iterations': 0, 'pruning_iterations': 1000, 'tunning_iterations': 1000,
        ...     'pruning_steps': 10, 'initial_ratio': 0.15})
    """

    def __init__(self, model, ratio=0.55, prune_params_type=None, skip_params_func=None,
                 local_sparsity=False, sparse_block=(1, 1), configs=None, prune_params=None,
                 skip_params=None, optimizer=None, sparse_pattern=None):
        if sparse_pattern is not None:
            raise PruneConfigError("sparse_pattern", sparse_pattern,
                                   "None with GMP (an n:m pattern fixes the ratio; use "
                                   "UnstructuredPruner)")
        if not is_number(ratio) or not 0.0 <= ratio < 1.0:
            raise PruneConfigError("ratio", ratio, "a float in [0, 1)")
        self.schedule = GMPSchedule.from_configs(float(ratio), configs)
        resume = resume_iteration_of(configs)  # -1 (PaddleSlim's auto-compression): fresh start
        super().__init__(model, mode='ratio', threshold=0.0, ratio=ratio,
                         prune_params_type=prune_params_type, skip_params_func=skip_params_func,
                         local_sparsity=local_sparsity, sparse_block=sparse_block,
                         prune_params=prune_params, skip_params=skip_params, optimizer=optimizer)
        self.ratio = 0.0
        if resume:
            self.set_state_dict({'iteration': resume})

    @property
    def target_ratio(self):
        return self.schedule.target_ratio

    def ratio_at(self, iteration):
        """The schedule's ratio at ``iteration``."""
        return gmp_ratio_at(iteration, self.schedule)

    def _update_due(self):
        ratio = self.ratio_at(self.iteration)
        if ratio != self.ratio:
            self.ratio = ratio
            return ratio > 0 or self._needs_update
        return self._needs_update and self.ratio > 0

    def _pruning_started(self):
        return self.iteration > 0 and self.ratio_at(self.iteration - 1) > 0

    def set_state_dict(self, state):
        super().set_state_dict(state)
        self.ratio = self.ratio_at(self.iteration - 1) if self.iteration > 0 else 0.0
