"""The ppdet Trainer callbacks that keep a model sparse while ppdet's own loop trains it.

Call order inside ``ppdet.engine.Trainer.train`` (2.6 and develop), and what happens there::

    on_train_begin              -> PruneCallback logs the plan: schedule, sparsity at the end
    for epoch:
        for step:
            optimizer.step(); lr.step(); clear_grad()
            on_step_end         -> PruneCallback: pruner.step(): masks updated when due, pruned
                                   weights zeroed; the EMA copy is masked too
            ema.update()        -> the EMA of masked weights stays exactly zero there
        (snapshot epochs with EMA: model.set_dict(ema.apply()))
        on_epoch_end  [train]   -> PruneCallback (BEFORE ppdet's Checkpointer) re-masks the
                                   weights about to be saved; the Checkpointer saves them;
                                   PruneStateWriter (AFTER it) writes <checkpoint>.pdprune
        (--eval: evaluation, then on_epoch_end [eval]: the Checkpointer may save best_model,
         and PruneStateWriter writes best_model.pdprune if it did)
    on_train_end                -> PruneCallback logs the sparsity reached vs the target

The ``.pdprune`` file (JSON) beside each checkpoint lets ``-r`` resume the GMP schedule at the
iteration it stopped at (:mod:`.state`).
"""
import paddle.distributed as dist
from ppdet.engine.callbacks import Callback, Checkpointer, ComposeCallback, VisualDLWriter
from ppdet.utils.logger import setup_logger

from ...core.plan import run_plan, run_result
from ...core.stats import total_sparse, total_sparse_conv1x1
from .state import (checkpoint_folder, file_stamp, read_state, state_path, weights_file,
                          write_state)

logger = setup_logger('prune_plugin.ppdet')


def rank0():
    """True on the process that logs and saves (ppdet's rule)."""
    return dist.get_world_size() < 2 or dist.get_rank() == 0


def checkpointer_of(trainer):
    """ppdet's ``Checkpointer`` callback of ``trainer`` (where it saves), or None."""
    return next((c for c in trainer._callbacks if isinstance(c, Checkpointer)), None)


class PruneStateWriter(Callback):
    """Writes ``<checkpoint>.pdprune`` after ppdet's Checkpointer has saved ``<checkpoint>``.

    :meth:`remember` (called by :class:`PruneCallback`, which runs before the Checkpointer)
    notes the weights files the Checkpointer may write at this epoch end; afterwards, the state
    is written for each one that the Checkpointer really wrote (its file stamp changed).
    """

    def __init__(self, trainer, pruner, checkpointer):
        super().__init__(trainer)
        self.pruner = pruner
        self.checkpointer = checkpointer
        self._pending = {}
        self.written = []

    def remember(self, save_names):
        self._pending = {}
        if self.checkpointer is None or not rank0():
            return
        for name in save_names:
            path = weights_file(f"{checkpoint_folder(self.checkpointer, name)}/{name}")
            self._pending[path] = file_stamp(path)

    def on_epoch_end(self, status):
        pending, self._pending = self._pending, {}
        for path, before in pending.items():
            after = file_stamp(path)
            if after is None or after == before:
                continue   # the Checkpointer did not save it (e.g. no better best_model)
            state = {**self.pruner.state_dict(), 'epoch': status['epoch_id'] + 1,
                     'sparsity': self.pruner.sparsity()}
            self.written.append(write_state(path, state))


class PruneCallback(Callback):
    """Attach a pruner (from :meth:`PruneSpec.build`) to a ppdet ``Trainer``.

    Args:
        trainer: The ``ppdet.engine.Trainer`` (mode ``'train'``).
        pruner: An ``UnstructuredPruner`` / ``GMPUnstructuredPruner`` on ``trainer.model``.

    Example:
        >>> callback = PruneCallback.attach(trainer, spec.build(trainer.model, len(trainer.loader),
        ...                                                     trainer.optimizer))
        >>> trainer.train()
    """

    def __init__(self, trainer, pruner):
        super().__init__(trainer)
        self.pruner = pruner
        self.state_writer = None
        self._logged_sparsity = None
        self._logged_updates = -1
        self._vdl = next((c.vdl_writer for c in trainer._callbacks
                          if isinstance(c, VisualDLWriter)), None)

    @classmethod
    def attach(cls, trainer, pruner):
        """Insert the callback right before ppdet's Checkpointer, its state writer right after.

        Returns:
            The callback (its :class:`PruneStateWriter` is ``callback.state_writer``).
        """
        callback = cls(trainer, pruner)
        checkpointer = checkpointer_of(trainer)
        callbacks = trainer._callbacks
        position = callbacks.index(checkpointer) if checkpointer else len(callbacks)
        callback.state_writer = PruneStateWriter(trainer, pruner, checkpointer)
        callbacks.insert(position + (1 if checkpointer else 0), callback.state_writer)
        callbacks.insert(position, callback)
        trainer._compose_callback = ComposeCallback(callbacks)
        return callback

    # ----- resume -----------------------------------------------------------------------
    def resume(self, weights_path, start_epoch, steps_per_epoch, state=None):
        """Continue the pruner from a resumed checkpoint (call after ``trainer.resume_weights``).

        The iteration comes from ``<weights>.pdprune``; without one (a checkpoint of ppdet's
        built-in pruner, or a dense one) it is ``start_epoch * steps_per_epoch``, with a warning.

        Returns:
            The iteration the pruner continues at.
        """
        state = state if state is not None else read_state(weights_path)
        if state is None:
            iteration = int(start_epoch) * int(steps_per_epoch)
            if rank0():
                logger.warning(f"prune_plugin: no {state_path(weights_path)}: the pruner "
                               f"continues at iteration {iteration} (= epoch {start_epoch} x "
                               f"{steps_per_epoch} steps)")
        else:
            iteration = int(state['iteration'])
        self.pruner.set_state_dict({'iteration': iteration})
        self._mask_ema()
        self._log_sparsity(force=True)
        return iteration

    # ----- hooks ------------------------------------------------------------------------
    def on_train_begin(self, status):
        if not rank0():
            return
        steps = status.get('steps_per_epoch') or len(self.model.loader)
        plan = run_plan(self.pruner, int(self.model.cfg.epoch) * steps, steps,
                        self.pruner.iteration)
        logger.info(f"prune_plugin: plan: {plan.summary}")
        if plan.warning:
            logger.warning(f"prune_plugin: {plan.warning}")

    def on_step_end(self, status):
        if status.get('mode') != 'train':
            return
        updates = self.pruner.mask_updates
        self.pruner.step()
        if self.pruner.mask_updates != updates:
            # ppdet's EMA is linear (decay * ema + (1 - decay) * w): once a pruned position is 0
            # in both, it stays 0, so the EMA needs masking only when the masks change.
            self._mask_ema()
        self._log_sparsity()

    def on_epoch_end(self, status):
        if status.get('mode') == 'eval':
            if status.get('save_best_model'):
                self.state_writer.remember(['best_model'])
            return
        if status.get('mode') != 'train':
            return
        # Weights about to be saved or evaluated: the model (the EMA copy on snapshot epochs
        # with EMA), the raw weights ppdet stashed in status['weight'] and the EMA itself.
        self.pruner.update_params()
        self._mask_ema()
        if isinstance(status.get('weight'), dict):
            self.pruner.apply_masks_to(status['weight'])
        save_name = self._checkpoint_name(status['epoch_id'])
        self.state_writer.remember([save_name] if save_name else [])

    def on_train_end(self, status):
        self._log_sparsity(force=True)
        if rank0():
            logger.info(f"prune_plugin: result: {run_result(self.pruner)}")

    # ----- helpers ----------------------------------------------------------------------
    def _checkpoint_name(self, epoch_id):
        """The name ppdet's Checkpointer saves under at this epoch end, or None."""
        cfg = self.model.cfg
        last = epoch_id == cfg.epoch - 1
        if (epoch_id + 1) % cfg.snapshot_epoch == 0 or last:
            return 'model_final' if last else str(epoch_id)
        return None

    def _mask_ema(self):
        ema = getattr(self.model, 'ema', None) if self.model.use_ema else None
        if ema is not None:
            self.pruner.apply_masks_to(ema.state_dict)

    def _log_sparsity(self, force=False):
        if not force and self.pruner.mask_updates == self._logged_updates:
            return  # the masks did not change since the last line: nothing new to log
        self._logged_updates = self.pruner.mask_updates
        sparsity = round(self.pruner.sparsity(), 3)
        if not force and sparsity == self._logged_sparsity:
            return
        self._logged_sparsity = sparsity
        if not rank0():
            return
        model = self.model.model
        total, conv1x1 = total_sparse(model), total_sparse_conv1x1(model)
        goal = (f"target {self.pruner.target_ratio:.0%}" if self.pruner.mode == 'ratio'
                else f"threshold {self.pruner.threshold:g}")
        logger.info(f"prune_plugin: iter {self.pruner.iteration}: prunable sparsity "
                    f"{self.pruner.sparsity():.2%} ({goal}), total {total:.2%}, "
                    f"conv1x1 {conv1x1:.2%}")
        if self._vdl is not None:
            step = self.pruner.iteration
            self._vdl.add_scalar('sparsity/prunable', self.pruner.sparsity(), step)
            self._vdl.add_scalar('sparsity/total', total, step)
            self._vdl.add_scalar('sparsity/conv1x1', conv1x1, step)
