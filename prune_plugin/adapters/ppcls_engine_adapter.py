"""Attach the pruner to PaddleClas's own ``Engine`` (users with a PaddleClas source checkout).

PaddleClas's Engine has no callback API; its train loop (``ppcls/engine/train/train.py``) does,
per iteration::

    loss.backward()
    if (iter_id + 1) % update_freq == 0:
        engine.optimizer[i].step()            # or engine.scaler.minimize(engine.optimizer[i], ..)
        engine.optimizer[i].clear_grad(); engine.lr_sch[i].step()
        engine.model_ema.update(engine.model)  # when EMA is on

so, as detectron2 advises for loops without hooks, the pruner is attached by wrapping the first
optimizer's ``step`` and ``minimize`` (AMP): after every real update, ``pruner.step()`` runs. EMA
updates are wrapped too, so the EMA weights PaddleClas evaluates and saves are exactly sparse.

The one line that enables it, in PaddleClas's ``tools/train.py`` after the Engine is built::

    engine = Engine(config, mode="train")
    from prune_plugin.adapters.ppcls_engine_adapter import attach_pruner; attach_pruner(engine)
    engine.train()

The config gets the same ``slim: UnstructuredPrune`` block as every other suite. On resume
(``Global.checkpoints``), the pruner's iteration is derived from the checkpoint's epoch
(``.pdstates``): ``epoch * (iters_per_epoch // update_freq)``; it is set before the first update,
after ``Engine.train`` has loaded the sparse weights, so GMP continues where it stopped.
"""
import logging
import os

import paddle

from ..config import spec_from_config

logger = logging.getLogger('prune_plugin')


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


def updates_per_epoch(engine):
    """Optimizer updates per epoch of ``engine`` (``iter_per_epoch // update_freq``)."""
    iters = getattr(engine, 'iter_per_epoch', None) or len(engine.train_dataloader)
    return max(1, int(iters) // int(getattr(engine, 'update_freq', 1) or 1))


def resume_iteration(engine):
    """The pruner iteration a ``Global.checkpoints`` resume continues from (0 without one)."""
    checkpoints = engine.config['Global'].get('checkpoints')
    if not checkpoints or not os.path.isfile(f"{checkpoints}.pdstates"):
        return 0
    epoch = int(paddle.load(f"{checkpoints}.pdstates").get('epoch', 0))
    return epoch * updates_per_epoch(engine)


class EnginePruneHook:
    """Runs ``pruner.step()`` after each real update of a PaddleClas Engine's optimizer.

    Args:
        pruner: The pruner (built on the unwrapped model).
        resume_at: Iteration to restore before the first update (0: fresh run).
        ema_model: The EMA copy's layer, masked after every EMA update (or None).
    """

    def __init__(self, pruner, resume_at=0, ema_model=None):
        self.pruner = pruner
        self.resume_at = resume_at
        self.ema_model = ema_model
        self._inside = False

    def _before_first_update(self):
        if self.resume_at:
            self.pruner.set_state_dict({'iteration': self.resume_at})
            if paddle.distributed.get_rank() == 0:
                logger.info("pruner resumed at iteration %d", self.resume_at)
            self.resume_at = 0

    def wrap(self, fn):
        """``fn`` (an optimizer's step / minimize), then ``pruner.step()``; once per update."""
        def wrapped(*args, **kwargs):
            if self._inside:
                return fn(*args, **kwargs)
            self._inside = True
            try:
                self._before_first_update()
                out = fn(*args, **kwargs)
                self.pruner.step()
                return out
            finally:
                self._inside = False
        wrapped.__wrapped__ = fn
        return wrapped

    def wrap_ema_update(self, fn):
        """EMA ``update`` followed by zeroing the pruned positions of the EMA weights."""
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            self.mask_ema()
            return out
        wrapped.__wrapped__ = fn
        return wrapped

    def mask_ema(self):
        if self.ema_model is not None:
            self.pruner.apply_masks_to(_unwrap(self.ema_model).state_dict())


def attach_pruner(engine, spec=None, skip_params_func=None):
    """Attach the config's pruner to a PaddleClas ``Engine`` built with ``mode="train"``.

    Args:
        engine: ``ppcls.engine.engine.Engine`` (train mode; optimizers built).
        spec: A PruneSpec; default: read from ``engine.config`` (``slim: UnstructuredPrune``).
        skip_params_func: Optional ``fn(model) -> set`` of names not to prune.

    Returns:
        The pruner, or None when the config has no ``slim`` block (nothing attached).

    Raises:
        PruneConfigError / RegistryError: a bad ``slim`` block (before any training).
        ValueError: ``engine`` is not in train mode.
    """
    spec = spec or spec_from_config(dict(engine.config))
    if spec is None:
        return None
    if getattr(engine, 'mode', 'train') != 'train' or getattr(engine, 'optimizer', None) is None:
        raise ValueError("attach_pruner needs an Engine built with mode='train'")
    optimizer = _as_list(engine.optimizer)[0]
    network = _unwrap(engine.model)
    pruner = spec.build(network, steps_per_epoch=updates_per_epoch(engine), optimizer=optimizer,
                        skip_params_func=skip_params_func)
    ema = getattr(engine, 'model_ema', None)
    hook = EnginePruneHook(pruner, resume_iteration(engine),
                           getattr(ema, 'module', None) if ema else None)
    optimizer.step = hook.wrap(optimizer.step)
    optimizer.minimize = hook.wrap(optimizer.minimize)
    if ema is not None:
        ema.update = hook.wrap_ema_update(ema.update)
    engine.pruner = pruner
    if paddle.distributed.get_rank() == 0:
        logger.info("prune_plugin attached to the PaddleClas Engine: %d prunable parameters, "
                    "%s", len(pruner.params), type(pruner).__name__)
    return pruner
