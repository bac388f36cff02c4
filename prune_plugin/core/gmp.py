"""``GMPUnstructuredPruner``: ratio pruning whose ratio follows the GMP cubic schedule."""
from .errors import PruneConfigError
from .pruner import UnstructuredPruner
from .schedule import GMPSchedule, gmp_ratio_at, resume_iteration_of
from .validation import is_number


class GMPUnstructuredPruner(UnstructuredPruner):
    """Ratio pruning whose ratio follows the GMP cubic schedule.

    Args:
        model: The ``paddle.nn.Layer`` to prune.
        ratio: Target ratio reached at the end of the pruning phase.
        prune_params_type, skip_params_func, local_sparsity, sparse_block, prune_params,
        skip_params, optimizer: as for :class:`UnstructuredPruner`.
        configs: ``{'stable_iterations', 'pruning_iterations', 'tunning_iterations',
            'pruning_steps', 'initial_ratio'}`` and optionally ``'resume_iteration'`` (-1, as
            PaddleSlim's auto-compression passes it, is a fresh start like 0).

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
        resume = resume_iteration_of(configs)
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
