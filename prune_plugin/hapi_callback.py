"""Sparse training for ``paddle.Model.fit``: a ``paddle.callbacks.Callback`` that owns the pruner.

Call order inside ``Model.fit`` (Paddle's hapi), and what the callback does there::

    on_train_begin        refuse 0 steps per epoch; build the pruner (if given a PruneSpec) with
                          the updates per epoch, attach the optimizer, restore {'iteration'} from
                          a resumed checkpoint's .pdprune file; log the run's plan (rank 0)
    for each epoch:
        for each batch:   train_batch (forward, backward, optimizer update)
            on_train_batch_end   pruner.step(): masks when due, then pruned weights -> 0
        on_epoch_end      write <save_dir>/<epoch>.pdprune when ModelCheckpoint saves
    on_train_end          write <save_dir>/final.pdprune; log the sparsity reached

User callbacks run before hapi's own ``ModelCheckpoint`` and ``LRScheduler``, so every checkpoint
``fit`` writes holds exactly sparse weights. The pruner state is one integer, saved as JSON beside
each checkpoint (``<prefix>.pdprune``); the masks come back from the zeros of the weights.

Example:
    >>> from prune_plugin.hapi_callback import PruneCallback
    >>> spec = PruneSpec.from_block({'ratio': 0.75, 'prune_params_type': 'conv1x1_only',
    ...     'gmp': {'pruning_epochs': 2, 'tunning_epochs': 1, 'pruning_steps': 10}})
    >>> model = paddle.Model(net); model.prepare(optimizer, loss, metrics)
    >>> model.fit(train_data, epochs=3, save_dir='out', callbacks=[PruneCallback(spec,
    ...           save_dir='out')])
"""
import json
import logging
import os

import paddle

from .checkpoint_guard import without_files, write_state_file
from .core.errors import PruneConfigError
from .core.plan import check_steps_per_epoch, run_plan, run_result
from .core.spec import PruneSpec

logger = logging.getLogger('prune_plugin')

STATE_SUFFIX = '.pdprune'


def pruner_state_path(checkpoint_prefix):
    """File holding the pruner state of the checkpoint ``<prefix>.pdparams``."""
    return f"{checkpoint_prefix}{STATE_SUFFIX}"


def save_pruner_state(pruner, checkpoint_prefix, weights_suffixes=()):
    """Write ``pruner.state_dict()`` beside the checkpoint ``<prefix>.pdparams`` (atomically).

    Args:
        pruner: An ``UnstructuredPruner`` or ``GMPUnstructuredPruner``.
        checkpoint_prefix: The path the checkpoint was saved to, without extension.
        weights_suffixes: Files ``<prefix><suffix>`` already written: their fingerprints go into
            the state, so a resume refuses weights the state was not written with.

    Returns:
        The path written.
    """
    return write_state_file(pruner_state_path(checkpoint_prefix), pruner.state_dict(),
                            [f"{checkpoint_prefix}{suffix}" for suffix in weights_suffixes])


def load_pruner_state(checkpoint_prefix):
    """Read the pruner state saved beside ``<prefix>.pdparams``.

    Raises:
        FileNotFoundError: there is no ``<prefix>.pdprune`` (the checkpoint was not written by a
            pruned run, or by an older one): resuming GMP without it would restart the schedule.
    """
    path = pruner_state_path(checkpoint_prefix)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: the pruner state (iteration) of checkpoint {checkpoint_prefix} is "
            "needed to continue the pruning schedule")
    with open(path) as f:
        return without_files(json.load(f))


def _is_rank0():
    return paddle.distributed.ParallelEnv().local_rank == 0


class PruneCallback(paddle.callbacks.Callback):
    """Attach an unstructured pruner to ``paddle.Model.fit``.

    Args:
        pruner: A built pruner, or a :class:`PruneSpec` (built at ``on_train_begin`` on
            ``model.network`` with fit's steps per epoch, so ``*_epochs`` GMP fields work).
        save_dir: Where ``fit``'s ``ModelCheckpoint`` saves; the pruner state is written there
            beside each checkpoint. None: write nothing.
        save_freq: ``fit``'s ``save_freq`` (epochs between checkpoints).
        resume_from: Checkpoint prefix the model was loaded from (``model.load(prefix)``); its
            ``.pdprune`` state is restored at ``on_train_begin`` so GMP continues exactly.
        skip_params_func: Passed to :meth:`PruneSpec.build`.

    Raises:
        PruneConfigError: ``pruner`` is neither a pruner nor a PruneSpec, or ``save_freq`` < 1.
    """

    def __init__(self, pruner, save_dir=None, save_freq=1, resume_from=None,
                 skip_params_func=None):
        super().__init__()
        if not isinstance(pruner, PruneSpec) and not hasattr(pruner, 'step'):
            raise PruneConfigError('pruner', type(pruner).__name__,
                                   'an UnstructuredPruner / GMPUnstructuredPruner or a PruneSpec')
        if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
            raise PruneConfigError('save_freq', save_freq, 'an int >= 1')
        self.spec = pruner if isinstance(pruner, PruneSpec) else None
        self.pruner = None if self.spec is not None else pruner
        self.save_dir = save_dir
        self.save_freq = save_freq
        self.resume_from = resume_from
        self.skip_params_func = skip_params_func
        self._epoch = 0

    # ----- building ---------------------------------------------------------------------
    def build(self, network, steps_per_epoch, optimizer=None):
        """Build the pruner from the spec now (idempotent); return it."""
        if self.pruner is None:
            self.pruner = self.spec.build(network, steps_per_epoch=steps_per_epoch,
                                          optimizer=optimizer,
                                          skip_params_func=self.skip_params_func)
        elif optimizer is not None:
            self.pruner.attach_optimizer(optimizer)
        return self.pruner

    def updates_per_epoch(self):
        """Optimizer updates per epoch of this ``fit`` (None when hapi does not know the steps).

        Raises:
            PruneConfigError: 0 steps per epoch (a batch larger than the data).
        """
        steps = self.params.get('steps') if self.params else None
        if steps is None:
            return None
        steps = check_steps_per_epoch(steps, key='batch_size')
        accumulate = getattr(self.model, '_accumulate', 1) or 1
        return -(-steps // accumulate)

    def on_train_begin(self, logs=None):
        updates = self.updates_per_epoch()
        self.build(self.model.network, updates, getattr(self.model, '_optimizer', None))
        start = 0
        if self.resume_from:
            self.pruner.set_state_dict(load_pruner_state(self.resume_from))
            start = self.pruner.iteration
            if _is_rank0():
                logger.info("pruner resumed at iteration %d (ratio %.3f) from %s",
                            self.pruner.iteration, self.pruner.sparsity(), self.resume_from)
            self.resume_from = None
        epochs = self.params.get('epochs') if self.params else None
        if updates is not None and epochs is not None and _is_rank0():
            plan = run_plan(self.pruner, start + epochs * updates, updates, start)
            logger.info("plan: %s", plan.summary)
            if plan.warning:
                logger.warning(plan.warning)

    # ----- training ---------------------------------------------------------------------
    def _updated_this_step(self, step):
        """hapi only updates every ``accumulate_grad_batches`` batches (and on the last one)."""
        accumulate = getattr(self.model, '_accumulate', 1) or 1
        steps = self.params.get('steps') if self.params else None
        return (step + 1) % accumulate == 0 or (steps is not None and step + 1 == steps)

    def on_train_batch_end(self, step, logs=None):
        if self._updated_this_step(step):
            self.pruner.step()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.pruner.update_params()
        if self.save_dir and _is_rank0() and epoch % self.save_freq == 0:
            save_pruner_state(self.pruner, os.path.join(self.save_dir, str(epoch)))

    def on_eval_begin(self, logs=None):
        if self.pruner is not None:
            self.pruner.update_params()

    def on_train_end(self, logs=None):
        self.pruner.update_params()
        if self.save_dir and _is_rank0():
            save_pruner_state(self.pruner, os.path.join(self.save_dir, 'final'))
        if _is_rank0():
            logger.info("result: %s", run_result(self.pruner))
