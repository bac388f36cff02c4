"""Attach the pruner to PaddleClas's own ``Engine`` (a clone of PaddleClas, develop or 2.5.2).

PaddleClas's Engine has no callback API. Its train loop (``ppcls/engine/train/train.py``, the
same in develop and release/2.5.2) does, per iteration::

    scaler.scale(loss).backward()
    if (iter_id + 1) % update_freq == 0:
        for opt in engine.optimizer:  scaler.step(opt); scaler.update()   # -> opt.step()
        for opt in engine.optimizer:  opt.clear_grad()
        for lr in engine.lr_sch:      lr.step()
        if engine.ema:                engine.model_ema.update(engine.model)

and every checkpoint is written by ``save_load.save_model``:
``paddle.save([opt.state_dict() for opt in engine.optimizer], prefix + '.pdopt')`` beside the
weights (``.pdparams``; with EMA, develop writes the EMA copy as ``.pdparams`` and the model as
``.pdema``, 2.5.2 the model as ``.pdparams`` and the EMA copy as ``.ema.pdparams``). Resuming
(``Global.checkpoints``), ``init_model`` loads the weights first, then
``opt.set_state_dict(...)``.

So, as detectron2 advises for loops without hooks, :class:`EnginePruneHook` wraps, on the
instances the Engine holds (nothing in the clone is edited):

* the last optimizer's ``step`` and ``minimize``: ``pruner.step()`` after every real update
  (AMP's ``scaler.step`` and ``scaler.minimize`` end in one of them);
* that optimizer's ``state_dict`` / ``set_state_dict``: the pruner state ``{'iteration': n}``
  travels inside every ``.pdopt`` the Engine writes (key ``prune_plugin.pruner``), and comes
  back, after the sparse weights, when the Engine resumes; a checkpoint without it resumes at
  ``epoch x updates per epoch`` from its ``.pdstates``;
* ``engine.model_ema.update``: the EMA weights are masked after every EMA update, so the EMA
  copy PaddleClas evaluates and saves is exactly as sparse as the model;
* ``engine.train``: the run's plan (schedule, the sparsity it will reach, a warning when that
  is below the target) is logged before training, the reached sparsity after.

The one line that enables it in PaddleClas's own ``tools/train.py``, after the Engine is built::

    engine = Engine(config, mode="train")
    from prune_plugin.ppcls import attach_pruner; attach_pruner(engine)
    engine.train()
"""
import logging
import os

import paddle

from ...config import spec_from_config
from ...core.errors import PruneConfigError
from ...core.plan import check_steps_per_epoch, run_plan, run_result
from ...report.safe_pickle import load_numpy
from ..suite_logging import log_through

logger = logging.getLogger('prune_plugin')

PRUNER_STATE_KEY = 'prune_plugin.pruner'


def _is_rank0():
    return paddle.distributed.get_rank() == 0


def _unwrap(model):
    """The layer inside ``paddle.DataParallel`` (and similar ``_layers`` wrappers)."""
    for _ in range(4):
        inner = getattr(model, '_layers', None)
        if inner is None:
            break
        model = inner
    return model


def _as_list(optimizer):
    return list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer]


def _ppcls_logger():
    from ppcls.utils import logger as ppcls_logger
    return ppcls_logger


def log_through_ppcls():
    """Route the ``prune_plugin`` logger to ``ppcls.utils.logger`` (once per process)."""
    log_through(_ppcls_logger, replace_handlers=True, force_info=True)


def updates_per_epoch(engine):
    """Optimizer updates per epoch of a train-mode ``engine``.

    ``Engine.iter_per_epoch`` is already a multiple of ``Global.update_freq``.

    Raises:
        PruneConfigError: 0 updates per epoch (a batch larger than the training data).
    """
    iters = getattr(engine, 'iter_per_epoch', None)
    if iters is None:
        iters = len(engine.train_dataloader)
    updates = int(iters) // max(1, int(getattr(engine, 'update_freq', 1) or 1))
    if updates >= 1:
        return updates
    loader = engine.train_dataloader
    dataset = getattr(loader, 'dataset', None)
    sampler_cfg = engine.config['DataLoader']['Train'].get('sampler') or {}
    return check_steps_per_epoch(updates, len(dataset) if dataset is not None else None,
                                 sampler_cfg.get('batch_size'),
                                 key='DataLoader.Train.sampler.batch_size')


def _read_pdstates_epoch(prefix):
    path = f"{prefix}.pdstates"
    if not os.path.isfile(path):
        return 0
    states = load_numpy(path)  # a user's file: read without running it
    return int(states.get('epoch', 0)) if isinstance(states, dict) else 0


class EnginePruneHook:
    """Runs ``pruner.step()`` after each update of a PaddleClas Engine and keeps its state.

    Args:
        engine: The train-mode Engine.
        pruner: The pruner, built on the Engine's (unwrapped) model.
        steps_per_epoch: Optimizer updates per epoch.

    Attributes:
        updates: ``{'step': n, 'minimize': m}``, the updates seen through each method.
        resumed_from: Where the pruner state came from on resume: ``'checkpoint'`` (the
            ``.pdopt``), ``'epoch'`` (the ``.pdstates`` epoch) or None (a fresh run).
    """

    def __init__(self, engine, pruner, steps_per_epoch):
        self.engine = engine
        self.pruner = pruner
        self.steps_per_epoch = steps_per_epoch
        self.updates = {'step': 0, 'minimize': 0}
        self.resumed_from = None
        self._inside = False
        optimizers = _as_list(engine.optimizer)
        self.optimizer = optimizers[-1]  # stepped last: every optimizer has updated by then
        ema = getattr(engine, 'model_ema', None) if getattr(engine, 'ema', False) else None
        self.ema_layer = getattr(ema, 'module', None) if ema is not None else None
        checkpoints = engine.config['Global'].get('checkpoints')
        self.epoch_resume_iteration = (_read_pdstates_epoch(checkpoints) * steps_per_epoch
                                       if checkpoints else 0)
        self._ema = ema
        self._ema_masked_at = None  # pruner.mask_updates when the EMA was last masked

    def install(self):
        """Wrap the optimizer, the EMA update and ``engine.train`` (instance attributes only)."""
        opt = self.optimizer
        opt.step = self._after_update(opt.step, 'step')
        opt.minimize = self._after_update(opt.minimize, 'minimize')
        opt.state_dict = self._with_pruner_state(opt.state_dict)
        opt.set_state_dict = self._restoring_pruner_state(opt.set_state_dict)
        if self._ema is not None:
            self._ema.update = self._masking_ema(self._ema.update)
        self.engine.train = self._logging_plan(self.engine.train)
        return self

    # ----- per update ------------------------------------------------------------------
    def _after_update(self, fn, kind):
        def wrapped(*args, **kwargs):
            if self._inside:  # minimize() may call step() on some optimizers: count once
                return fn(*args, **kwargs)
            self._inside = True
            try:
                self._resume_from_epoch_if_needed()
                out = fn(*args, **kwargs)
                self.updates[kind] += 1
                self.pruner.step()
                return out
            finally:
                self._inside = False
        wrapped.__wrapped__ = fn
        return wrapped

    def _masking_ema(self, fn):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            if self._masks_may_have_changed():
                self.mask_ema()
            return out
        wrapped.__wrapped__ = fn
        return wrapped

    def _masks_may_have_changed(self):
        """Whether the EMA needs masking after this update.

        PaddleClas's EMA is linear (``decay * ema + (1 - decay) * w``): a position that is 0 in
        both stays 0, so the EMA needs masking only after the masks changed: at prune events
        (``pruner.mask_updates``), or at every step in threshold mode, whose masks narrow on the
        device without a count.
        """
        if self.pruner.mode == 'threshold' and getattr(self.pruner, 'pattern', None) is None:
            return True
        if self.pruner.mask_updates == self._ema_masked_at:
            return False
        self._ema_masked_at = self.pruner.mask_updates
        return True

    def mask_ema(self):
        """Zero the pruned positions of the EMA weights (PaddleClas evaluates and saves them)."""
        if self.ema_layer is not None:
            self.pruner.apply_masks_to(_unwrap(self.ema_layer).state_dict())

    # ----- checkpoint state --------------------------------------------------------------
    def _with_pruner_state(self, fn):
        def wrapped(*args, **kwargs):
            state = fn(*args, **kwargs)
            state[PRUNER_STATE_KEY] = self.pruner.state_dict()
            return state
        wrapped.__wrapped__ = fn
        return wrapped

    def _restoring_pruner_state(self, fn):
        def wrapped(state, *args, **kwargs):
            state = dict(state)
            pruner_state = state.pop(PRUNER_STATE_KEY, None)
            out = fn(state, *args, **kwargs)
            if pruner_state is not None:
                # init_model loaded the sparse weights first: the masks come back from the zeros
                self.pruner.set_state_dict({'iteration': int(pruner_state['iteration'])})
                self.resumed_from = 'checkpoint'
                if _is_rank0():
                    logger.info("pruner resumed at iteration %d (%.2f%% pruned) from the "
                                "checkpoint", self.pruner.iteration, 100 * self.pruner.sparsity())
            return out
        wrapped.__wrapped__ = fn
        return wrapped

    def _resume_from_epoch_if_needed(self):
        """A resumed checkpoint without pruner state: continue at epoch x updates per epoch."""
        if self.resumed_from is not None or not self.epoch_resume_iteration:
            self.resumed_from = self.resumed_from or 'fresh'
            return
        self.pruner.set_state_dict({'iteration': self.epoch_resume_iteration})
        self.resumed_from = 'epoch'
        if _is_rank0():
            logger.warning("the resumed checkpoint %s has no pruner state (written without "
                           "prune_plugin): the schedule continues at iteration %d (its epoch x %d "
                           "updates per epoch)", self.engine.config['Global']['checkpoints'],
                           self.epoch_resume_iteration, self.steps_per_epoch)

    # ----- plan and result -----------------------------------------------------------------
    def _logging_plan(self, fn):
        def wrapped(*args, **kwargs):
            self.log_plan()
            out = fn(*args, **kwargs)
            self.mask_ema()
            if _is_rank0():
                logger.info("result: %s", run_result(self.pruner))
            return out
        wrapped.__wrapped__ = fn
        return wrapped

    def log_plan(self):
        """Log (rank 0) the schedule and the sparsity this run reaches; warn when short."""
        epochs = int(self.engine.config['Global']['epochs'])
        plan = run_plan(self.pruner, epochs * self.steps_per_epoch, self.steps_per_epoch,
                        self.epoch_resume_iteration)
        if _is_rank0():
            logger.info("plan: %s", plan.summary)
            if plan.warning:
                logger.warning(plan.warning)
        return plan


def _optimizer_for_moments(optimizers, pruner):
    """The optimizer that updates most of the pruned parameters (its moments are masked)."""
    if len(optimizers) == 1:
        return optimizers[0]
    pruned = {id(p.param) for p in pruner.params}

    def owned(opt):
        return sum(1 for p in getattr(opt, '_parameter_list', None) or [] if id(p) in pruned)
    return max(optimizers, key=owned)


def attach_pruner(engine, spec=None, skip_params_func=None):
    """Attach the config's pruner to a PaddleClas ``Engine`` built with ``mode="train"``.

    Args:
        engine: ``ppcls.engine.engine.Engine`` in train mode (optimizers built).
        spec: A PruneSpec; default: read from ``engine.config`` (``slim: UnstructuredPrune``).
        skip_params_func: Optional ``fn(model) -> set`` of names not to prune.

    Returns:
        The pruner, or None when the config has no ``slim`` block (nothing attached; a
        warning says the run is dense).

    Raises:
        PruneConfigError / RegistryError: a bad ``slim`` block or 0 updates per epoch,
            before any training.
        ValueError: ``engine`` is not in train mode.

    Example:
        >>> engine = Engine(config, mode="train")
        >>> from prune_plugin.ppcls import attach_pruner; attach_pruner(engine)
        >>> engine.train()
    """
    log_through_ppcls()
    spec = spec or spec_from_config(dict(engine.config))
    if spec is None:
        if _is_rank0():
            logger.warning("attach_pruner: the config has no 'slim: UnstructuredPrune' block: "
                           "nothing attached, this run trains dense")
        return None
    if getattr(engine, 'mode', 'train') != 'train' or getattr(engine, 'optimizer', None) is None:
        raise ValueError("attach_pruner needs an Engine built with mode='train'")
    if getattr(engine, 'pruner', None) is not None:
        raise ValueError("a pruner is already attached to this Engine")
    steps = updates_per_epoch(engine)
    optimizers = _as_list(engine.optimizer)
    network = _unwrap(engine.model)
    pruner = spec.build(network, steps_per_epoch=steps, skip_params_func=skip_params_func)
    pruner.attach_optimizer(_optimizer_for_moments(optimizers, pruner))
    hook = EnginePruneHook(engine, pruner, steps).install()
    engine.pruner = pruner
    engine.prune_hook = hook
    if _is_rank0():
        logger.info("attached to PaddleClas's Engine: %s on %d parameters (%s), %d updates per "
                    "epoch%s", type(pruner).__name__, len(pruner.params),
                    spec.prune_params_type or 'all weights but norms and 1-D', steps,
                    ", EMA masked" if hook.ema_layer is not None else "")
    return pruner


__all__ = ['attach_pruner', 'EnginePruneHook', 'updates_per_epoch', 'PRUNER_STATE_KEY',
           'PruneConfigError', 'log_through_ppcls']
