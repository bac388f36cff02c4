"""The ppdet Trainer callback that keeps a model sparse while ppdet's own loop trains it.

Call order inside ``ppdet.engine.Trainer.train`` (2.6), and what this callback does there::

    for epoch:
        for step:
            optimizer.step(); lr.step(); clear_grad()
            callbacks.on_step_end   -> pruner.step(): masks updated when due, pruned weights
                                       zeroed; the EMA copy is masked too
            ema.update()            -> the EMA of masked weights stays exactly zero there
        (snapshot epochs with EMA: model.set_dict(ema.apply()))
        callbacks.on_epoch_end      -> this callback sits BEFORE ppdet's Checkpointer: it
                                       re-masks the weights about to be saved and writes
                                       ``<checkpoint>.pdprune`` (the pruner's iteration);
                                       the Checkpointer then saves exactly sparse weights

The ``.pdprune`` file (JSON) beside ``model_final`` / ``<epoch>`` lets ``-r`` resume the GMP
schedule at the iteration it stopped at.
"""
import json
import os

import paddle.distributed as dist
from ppdet.engine.callbacks import Callback, Checkpointer, ComposeCallback, VisualDLWriter
from ppdet.utils.logger import setup_logger

from ..core.stats import total_sparse, total_sparse_conv1x1

logger = setup_logger('prune_plugin.ppdet')

STATE_SUFFIX = '.pdprune'


def _rank0():
    return dist.get_world_size() < 2 or dist.get_rank() == 0


def state_path(weights_path):
    """The ``.pdprune`` file that belongs to a ppdet checkpoint path (with or without suffix)."""
    root, ext = os.path.splitext(weights_path)
    if ext not in ('.pdparams', '.pdopt', '.pdema', ''):
        root = weights_path
    return root + STATE_SUFFIX


def read_state(weights_path):
    """The pruner state saved beside ``weights_path``, or None when there is none."""
    path = state_path(weights_path)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


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
        self._logged_sparsity = None
        self._logged_updates = -1
        self._vdl = next((c.vdl_writer for c in trainer._callbacks
                          if isinstance(c, VisualDLWriter)), None)

    @classmethod
    def attach(cls, trainer, pruner):
        """Create the callback and insert it right before ppdet's Checkpointer.

        Returns:
            The callback.
        """
        callback = cls(trainer, pruner)
        position = next((i for i, c in enumerate(trainer._callbacks)
                         if isinstance(c, Checkpointer)), len(trainer._callbacks))
        trainer._callbacks.insert(position, callback)
        trainer._compose_callback = ComposeCallback(trainer._callbacks)
        return callback

    # ----- resume -----------------------------------------------------------------------
    def resume(self, weights_path, start_epoch, steps_per_epoch):
        """Continue the pruner from a resumed checkpoint (call after ``trainer.resume_weights``).

        The iteration comes from ``<weights>.pdprune``; without one (a checkpoint of ppdet's
        built-in pruner) it is ``start_epoch * steps_per_epoch``.

        Returns:
            The iteration the pruner continues at.
        """
        state = read_state(weights_path)
        if state is None:
            iteration = int(start_epoch) * int(steps_per_epoch)
            logger.warning(f"no {state_path(weights_path)}: the pruner continues at iteration "
                           f"{iteration} (= epoch {start_epoch} x {steps_per_epoch} steps)")
        else:
            iteration = int(state['iteration'])
        self.pruner.set_state_dict({'iteration': iteration})
        self._mask_ema()
        self._log_sparsity(force=True)
        return iteration

    # ----- hooks ------------------------------------------------------------------------
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
        if status.get('mode') != 'train':
            return
        # Weights about to be saved or evaluated: the model (the EMA copy on snapshot epochs
        # with EMA), the raw weights ppdet stashed in status['weight'] and the EMA itself.
        self.pruner.update_params()
        self._mask_ema()
        if isinstance(status.get('weight'), dict):
            self.pruner.apply_masks_to(status['weight'])
        save_name = self._checkpoint_name(status['epoch_id'])
        if save_name is not None and _rank0():
            save_dir = os.path.join(self.model.cfg.save_dir, self.model.cfg.filename)
            os.makedirs(save_dir, exist_ok=True)
            with open(state_path(os.path.join(save_dir, save_name)), 'w') as f:
                json.dump({**self.pruner.state_dict(), 'epoch': status['epoch_id'] + 1,
                           'sparsity': self.pruner.sparsity()}, f)

    def on_train_end(self, status):
        self._log_sparsity(force=True)

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
        if not _rank0():
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
