"""``UnstructuredPruner`` / ``GMPUnstructuredPruner`` for static programs (PaddleSlim's static
API), on PIR programs and on the legacy IR.

The selection, thresholds, exact counts, tie rule, masks, GMP schedule and argument checks are
the dygraph engine's (:mod:`prune_plugin.core`): these classes only change where the weights come
from. The parameters are enumerated from the program (:mod:`.selection`), and each call works on
the scope's tensors seen as dygraph tensors (:mod:`.scope_tensors`). Unlike PaddleSlim, no mask
op is added to the program: ``step()`` zeroes the pruned weights in the scope after every
``exe.run``, so they are exactly 0 after every step, and the optimizer moments of newly pruned
weights are zeroed at prune events.
"""
import dataclasses
import functools

import paddle

from ..core import pruner as core_pruner
from ..core.errors import PruneConfigError
from ..core.gmp import GMPUnstructuredPruner as CoreGMPUnstructuredPruner
from .optimizer_vars import optimizer_vars
from .program import program_params, underlying_program
from .scope_tensors import UnboundWeight, dense_tensor, dygraph_mode, tensor_of, write_back
from .selection import select_program_params
from .stats import total_sparse, total_sparse_conv1x1

__all__ = ['UnstructuredPruner', 'GMPUnstructuredPruner']


def _place_of(place):
    if place is None:
        return paddle.CPUPlace()
    try:
        return paddle.base.framework._get_paddle_place(place)
    except (ValueError, TypeError) as err:
        raise PruneConfigError("place", place, f"a paddle place or None ({err})") from None


def _on_scope(method):
    """Run ``method`` on the scope's current tensors, in dygraph mode; copy back what changed."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        if self._scope_open:
            return method(self, *args, **kwargs)
        with dygraph_mode(self.place):
            self._scope_open = True
            self._written = []
            try:
                self._read_scope()
                result = method(self, *args, **kwargs)
                for tensor, dense in self._written:
                    write_back(tensor, dense, self.place)
            finally:
                self._scope_open = False
                self._written = []
        return result

    return run


class ProgramWeights:
    """What makes a core pruner work on a static program: its parameters, its scope's tensors and
    its optimizer's variables. Mixed in before a core pruner class.

    Nothing is read from the scope before the first call that needs the weights (``step()``,
    ``update_params()``...): the pruner may be built before the startup program runs and before
    ``optimizer.minimize`` adds the optimizer (the reference demo's order), and a checkpoint may
    be loaded after it is built; masks of a resumed run are read back from the zeros then.
    """

    _scope_open = False

    def _bind(self, program, scope, place):
        self.program = underlying_program(program)
        self.scope = paddle.static.global_scope() if scope is None else scope
        self.place = _place_of(place)
        self._written = []
        self._optimizer_vars = None
        self._masks_from_zeros_due = False
        # PaddleSlim's demo calls minimize(loss, no_grad_set=pruner.no_grad_set) for its mask
        # variables; no variable is added here, so there is nothing to leave out
        self.no_grad_set = set()

    def _tensor(self, name):
        dense = dense_tensor(self.scope, name)
        tensor = tensor_of(dense)
        self._written.append((tensor, dense))
        return tensor

    def _read_scope(self):
        """Point every parameter at its scope tensor; finish a pending mask recovery."""
        self.params = [dataclasses.replace(p, param=self._tensor(p.name)) for p in self.params]
        if self._optimizer_vars is None:
            self._optimizer_vars = optimizer_vars(self.program, [p.name for p in self.params],
                                                  self.scope)
        if self._masks_from_zeros_due:
            self._masks_from_zeros_due = False
            core_pruner.UnstructuredPruner.recover_masks_from_zeros(self)

    def _select_params(self, model, **choice):
        shapes = {p.name: p.shape for p in program_params(self.program)}
        return select_program_params(self.program, lambda name: UnboundWeight(shapes[name]),
                                     **choice)

    def _moments_of(self, p):
        return [self._tensor(name) for name in self._optimizer_vars.get(p.name, ([], None))[0]]

    def _master_of(self, p):
        master = self._optimizer_vars.get(p.name, ([], None))[1]
        return None if master is None else self._tensor(master)

    @_on_scope
    def optimizer_variables(self):
        """``{param_name: (moment names, master name or None)}`` the pruner masks."""
        return dict(self._optimizer_vars)

    def recover_masks_from_zeros(self):
        """Rebuild masks as ``weight != 0`` from the scope, at the next call that reads it.

        The checkpoint may be loaded after ``set_state_dict`` (or after a GMP pruner is built with
        ``configs['resume_iteration']``): call ``update_params()`` once after loading it and
        before the first ``exe.run``, so that the zeros are read before an update moves them.
        """
        self._masks = {}
        self._mask_version += 1
        self._masks_from_zeros_due = True

    @_on_scope
    def step(self):
        """Call after each ``exe.run`` of the training program: a prune event when due, then every
        pruned weight in the scope is set to 0."""
        return super().step()

    @_on_scope
    def update_params(self):
        """Set every pruned weight in the scope to 0 (``step()`` already does, every step)."""
        return super().update_params()

    @_on_scope
    def update_masks(self):
        """A prune event on the scope's current weights (see the dygraph engine)."""
        return super().update_masks()

    @_on_scope
    def prunable_sparsity(self):
        """Fraction of the prunable weights that are exactly zero in the scope."""
        return super().prunable_sparsity()

    @_on_scope
    def apply_masks_to(self, tensors):
        """Zero pruned positions in ``{param_name: numpy array or tensor}`` (e.g. EMA copies)."""
        return super().apply_masks_to(tensors)

    @_on_scope
    def sparsity(self):
        """Fraction of the prunable weights that are pruned (from the masks)."""
        return super().sparsity()

    @_on_scope
    def mask_of(self, name):
        """The bool mask of one parameter as numpy (all True before its first prune)."""
        return super().mask_of(name)

    total_sparse = staticmethod(total_sparse)
    total_sparse_conv1x1 = staticmethod(total_sparse_conv1x1)


class UnstructuredPruner(ProgramWeights, core_pruner.UnstructuredPruner):
    """Magnitude pruning of a static program's weights, by ratio or threshold (PaddleSlim's
    static ``UnstructuredPruner``, same argument order).

    Args:
        program: The training ``Program`` (PIR or legacy) or a ``CompiledProgram`` of it.
        mode: ``'ratio'`` or ``'threshold'``.
        ratio: Ratio in [0, 1) for ``mode='ratio'``: exactly ``round(ratio * N)`` weights pruned.
        threshold: For ``mode='threshold'``: weights with |w| < threshold pruned, every step.
        scope: The scope holding the weights (default ``paddle.static.global_scope()``).
        place: The place the weights live on (default CPU).
        prune_params_type: None or ``'conv1x1_only'``.
        skip_params_func: ``fn(program) -> set`` of parameter names to skip; replaces the default
            (inputs of normalization operators and 1-D parameters).
        local_sparsity, sparse_block, sparse_pattern, prune_params, skip_params: as for the
            dygraph :class:`prune_plugin.UnstructuredPruner` (names are variable names).

    Raises:
        PruneConfigError: any bad argument, before a weight changes.

    Example:
        >>> pruner = UnstructuredPruner(paddle.static.default_main_program(), 'ratio',
        ...                             ratio=0.55, place=paddle.CPUPlace())
        >>> exe.run(train_program, feed=batch); pruner.step()
    """

    def __init__(self, program, mode='ratio', ratio=0.55, threshold=0.01, scope=None, place=None,
                 prune_params_type=None, skip_params_func=None, local_sparsity=False,
                 sparse_block=(1, 1), sparse_pattern=None, prune_params=None, skip_params=None):
        self._bind(program, scope, place)
        core_pruner.UnstructuredPruner.__init__(
            self, self.program, mode=mode, threshold=threshold, ratio=ratio,
            prune_params_type=prune_params_type, skip_params_func=skip_params_func,
            local_sparsity=local_sparsity, sparse_block=sparse_block,
            sparse_pattern=sparse_pattern, prune_params=prune_params, skip_params=skip_params)


class GMPUnstructuredPruner(ProgramWeights, CoreGMPUnstructuredPruner):
    """Ratio pruning of a static program whose ratio follows the GMP cubic schedule
    (PaddleSlim's static ``GMPUnstructuredPruner``, same argument order).

    Args:
        program, scope, place, prune_params_type, skip_params_func, local_sparsity, sparse_block,
        prune_params, skip_params: as for :class:`UnstructuredPruner`.
        ratio: Target ratio at the end of the pruning phase.
        configs: The GMP schedule, as for the dygraph
            :class:`prune_plugin.GMPUnstructuredPruner`.

    Raises:
        PruneConfigError: a bad argument or an inconsistent schedule, before a weight changes.
    """

    def __init__(self, program, ratio=0.55, scope=None, place=None, prune_params_type=None,
                 skip_params_func=None, local_sparsity=False, sparse_block=(1, 1), configs=None,
                 prune_params=None, skip_params=None):
        self._bind(program, scope, place)
        CoreGMPUnstructuredPruner.__init__(
            self, self.program, ratio=ratio, prune_params_type=prune_params_type,
            skip_params_func=skip_params_func, local_sparsity=local_sparsity,
            sparse_block=sparse_block, configs=configs, prune_params=prune_params,
            skip_params=skip_params)
