"""Prune events: the masks recomputed from the weights (the mixin behind ``UnstructuredPruner``).

An event reads the weights once (paddle ops on their device; numpy on CPU, see
:mod:`.array_ops`), stops on NaN/Inf before anything changes, computes the thresholds
(``update_threshold``, the override point) and then the masks, drops the optimizer moments of
newly pruned weights and logs one line. Events are rare (the first step; each GMP ratio rise):
they may read a few numbers on the host.
"""
import logging
import math

import numpy as np
import paddle

from . import kernels
from .array_ops import ops_for
from .errors import NonFiniteWeightsError
from .nm_pattern import nm_pattern_keep
from .order_stats import kept_units, smallest_threshold
from .scores import expand_blocks, unit_scores

logger = logging.getLogger('prune_plugin')


def rank():
    """This process's rank (0 without distributed training)."""
    try:
        return paddle.distributed.get_rank()
    except Exception:  # pragma: no cover - before init on odd builds
        return 0


class PruneEvents:
    """Prune events of :class:`~prune_plugin.core.pruner.UnstructuredPruner`.

    Uses the pruner's ``params``, ``mode``, ``ratio``, ``threshold``, ``local_sparsity``,
    ``sparse_block``, ``pattern``, ``iteration``, ``_masks``, ``_optimizer`` and
    ``_total_weights``; keeps ``thresholds``, ``_ties`` and ``_tie_counts`` for the masks.
    """

    def update_masks(self):
        """A prune event: recompute the masks from the current weights.

        Runs ``update_threshold`` (the override point) and then the masks; logs one line on
        rank 0. Reads a few numbers on the host (thresholds, counts): events are rare.

        Raises:
            NonFiniteWeightsError: NaN/Inf in the weights; nothing is pruned and no weight,
                mask or optimizer state changes.
        """
        self._event = {}
        try:
            self._check_finite()
            before = self._pruned_count()
            self.thresholds, self._ties, self._tie_counts = {}, {}, {}
            self.update_threshold()
            self._report_all_zero()
            self._update_masks()
        finally:
            self._event = {}
        self._needs_update = False
        self.mask_updates += 1
        after = self._pruned_count()
        if after != before and rank() == 0:
            goal = (f"threshold {self.threshold:g}" if self.mode == 'threshold'
                    and self.pattern is None else f"target {self.target_ratio * 100:.0f}%")
            logger.info("sparsity %.1f%% -> %.1f%% (%s) @ iter %d",
                        before / self._total_weights * 100, after / self._total_weights * 100,
                        goal, self.iteration)

    def _event_of(self, p):
        """``(ops, units, prior mask)`` of ``p`` for this prune event, computed once."""
        found = self._event.get(p.name)
        if found is None:
            ops = ops_for(p.param.place)
            prior = self._masks.get(p.name)
            prior = None if prior is None else ops.mask(prior)
            block = (1, 1) if self.pattern is not None else self.sparse_block
            units = unit_scores(ops, ops.weights(p.param), prior, block, p.out_axis, p.in_axis)
            found = self._event[p.name] = (ops, units, prior)
        return found

    def _units_of(self, p):
        return self._event_of(p)[1]

    def _check_finite(self):
        """Stop on NaN/Inf: one sum per parameter, read in one go (NaN and Inf survive a sum)."""
        ops = self._event_of(self.params[0])[0]
        sums = ops.read_floats([ops.total(self._units_of(p).scores) for p in self.params])
        if all(math.isfinite(v) for v in sums):
            return
        bad = [p.name for p in self.params if not bool(paddle.isfinite(p.param).all())]
        if bad:  # else a float32 sum overflowed on huge but finite weights
            raise NonFiniteWeightsError(bad, self.iteration)

    def _report_all_zero(self):
        """Log when no prunable weight is left non-zero: there was no magnitude to rank."""
        thresholds = list(self.thresholds.values()) or [self.threshold]
        if self.mode == 'ratio' and self.pattern is None and max(thresholds) > 0:
            return  # a positive k-th smallest |w|: not all zero (the common case, no extra pass)
        ops = self._event_of(self.params[0])[0]
        peaks = ops.read_floats([ops.peak(self._units_of(p).scores) for p in self.params])
        if max(peaks) <= 0 and rank() == 0:
            logger.warning("all %d prunable weights left are zero at iter %d: no magnitude to "
                           "rank, %s", self._total_weights, self.iteration,
                           "so every one is pruned" if self.mode == 'threshold' else
                           "the budget is taken in model order")

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
        ops = self._event_of(self.params[0])[0]
        if self.local_sparsity:
            for p in self.params:
                self.thresholds[p.name], self._ties[p.name], _ = smallest_threshold(
                    ops, [self._units_of(p)], round(self.ratio * int(np.prod(p.shape))),
                    count_ties=False)
            return
        units = [self._units_of(p) for p in self.params]
        self.threshold, self._ties['*'], tied = smallest_threshold(
            ops, units, round(self.ratio * self._total_weights))
        self._tie_counts = {p.name: count for p, count in zip(self.params, tied)}

    def _update_masks(self):
        remaining_ties = self._ties.get('*', 0)
        for p in self.params:
            ops, units, prior = self._event_of(p)
            if self.pattern is not None:
                n, m = self.pattern
                keep = nm_pattern_keep(ops, units.scores.reshape(list(p.shape)), prior, n, m,
                                       p.in_axis)
                self._set_mask(p, ops.to_mask(keep, p.param))
                continue
            if self.local_sparsity:
                threshold = self.thresholds.get(p.name, self.threshold)
                ties = self._ties.get(p.name, 0)
            else:
                # global ties are taken in model order, the order update_threshold flattened
                threshold, ties = self.threshold, 0
                if remaining_ties > 0:
                    tied = self._tie_counts.get(p.name)
                    if tied is None:
                        tied = ops.read_ints([ops.count(units.scores == threshold)])[0]
                    ties = min(remaining_ties, tied)
                    remaining_ties -= ties
            keep = self._expand(ops, p, units, kept_units(ops, units.scores, threshold, ties))
            self._set_mask(p, ops.to_mask(keep if prior is None else keep & prior, p.param))

    def _expand(self, ops, p, units, keep_units):
        if units.block_shape is None:
            return keep_units.reshape(list(p.shape))
        return expand_blocks(ops, keep_units.reshape(list(units.block_shape)),
                             self.sparse_block, p.shape, p.out_axis, p.in_axis)

    def _set_mask(self, p, keep):
        """Store ``keep`` (a contiguous bool tensor on the weight's device) as ``p``'s mask."""
        self._masks[p.name] = keep
        self._mask_version += 1
        # momentum / Adam moments built up before the prune are dropped with the weight
        for tensor in self._moments_of(p):
            kernels.zero_pruned(tensor, keep)

