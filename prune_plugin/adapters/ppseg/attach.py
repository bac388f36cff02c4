"""Attach a pruner to ``paddleseg.core.train``, which has no callbacks.

``paddleseg.core.train`` (2.8 and 2.9) runs, per iteration::

    loss.backward(); optimizer.step()                # fp32 (optimizer may be Fleet's wrapper)
    scaler.minimize(optimizer, scaled)               # 2.8 --precision fp16: optimizer.minimize
    scaler.step(optimizer); scaler.update()          # 2.9 --precision fp16: optimizer.step
    lr.step(); model.clear_gradients()
    update_ema_model(ema_model, model)               # --use_ema: ema = d * ema + (1 - d) * model
    every save_interval: paddle.save(model.state_dict(), iter_N/model.pdparams),
                         paddle.save(optimizer.state_dict(), iter_N/model.pdopt),
                         paddle.save(ema_model.state_dict(), iter_N/ema_model.pdparams)

and before the loop ``resume()`` does ``model.set_state_dict(...)`` then
``optimizer.set_state_dict(...)``; ``ema_model`` is a ``deepcopy(model)`` made at the start.

So the plugin attaches at two places, both on objects paddleseg is given:

* :class:`OptimizerPruneHook` replaces, on the optimizer instance, ``step`` and ``minimize``
  (the pruner steps after each update, whichever of the two ran, also when Fleet's
  ``HybridParallelOptimizer`` or the AMP scaler calls them), and ``state_dict`` /
  ``set_state_dict``: when paddleseg saves ``iter_N`` the pruner state is written beside it
  (:mod:`~prune_plugin.adapters.ppseg.state`), and when it resumes, after the weights, the state
  is read back from there.
* :func:`mask_state_dicts_of` registers a ``state_dict`` hook on the model that zeroes the pruned
  positions of every tensor it returns. ``deepcopy`` carries the hook to the EMA model, whose
  ``state_dict()`` paddleseg reads at every EMA update and save: EMA weights stay exactly as
  sparse as the model.
"""
import hashlib
import logging
import os

import numpy as np
import paddle

from ...core.plan import run_result
from . import state as ppseg_state

logger = logging.getLogger('prune_plugin')


class OptimizerPruneHook:
    """Makes ``optimizer`` step ``pruner`` after every update and save / restore its state.

    Args:
        optimizer: The ``paddle.optimizer.Optimizer`` paddleseg's train will use.
        pruner: An ``UnstructuredPruner`` built on the same model.
        save_dir: paddleseg's ``save_dir``: the state goes to ``<save_dir>/iter_<N>/``.
        resume_model: paddleseg's ``resume_model`` (``<dir>/iter_<N>``), or None. Its pruner
            state is read here, so a bad one stops the run before it starts.
        total_iterations: The run's ``iters``: at its last save the result line is logged.

    Raises:
        PruneConfigError: ``resume_model`` holds a pruner state file that is not ours.

    Example:
        >>> hook = OptimizerPruneHook(optimizer, pruner, save_dir='output', total_iterations=1000)
        >>> paddleseg.core.train(model, ds, optimizer=optimizer, save_dir='output', iters=1000, ...)
        >>> hook.updates        # {'step': 1000, 'minimize': 0}
    """

    def __init__(self, optimizer, pruner, save_dir=None, resume_model=None,
                 total_iterations=None):
        self.optimizer = optimizer
        self.pruner = pruner
        self.save_dir = save_dir
        self.resume_model = resume_model
        self.total_iterations = total_iterations
        self.updates = {'step': 0, 'minimize': 0}
        self.saved = []
        # read (and checked) now, before training starts; used when paddleseg resumes
        self._resume_state = ppseg_state.read_state(resume_model) if resume_model else None
        self._original = {name: getattr(optimizer, name)
                          for name in ('step', 'minimize', 'state_dict', 'set_state_dict')}
        optimizer.step = self._step
        optimizer.minimize = self._minimize
        optimizer.state_dict = self._state_dict
        optimizer.set_state_dict = self._set_state_dict
        pruner.attach_optimizer(optimizer)

    def detach(self):
        """Give the optimizer its own methods back."""
        for name in self._original:
            self.optimizer.__dict__.pop(name, None)

    def _step(self, *args, **kwargs):
        result = self._original['step'](*args, **kwargs)
        self.updates['step'] += 1
        self.pruner.step()
        return result

    def _minimize(self, *args, **kwargs):
        result = self._original['minimize'](*args, **kwargs)
        self.updates['minimize'] += 1
        self.pruner.step()
        return result

    def train_iteration(self):
        """paddleseg's iteration count: its lr scheduler steps once per iteration (also when
        the AMP scaler skips an update), and is saved and resumed with the optimizer."""
        lr = getattr(self.optimizer, '_learning_rate', None)
        if isinstance(lr, paddle.optimizer.lr.LRScheduler):
            return int(lr.last_epoch)
        return self.pruner.iteration

    def _state_dict(self, *args, **kwargs):
        state = self._original['state_dict'](*args, **kwargs)
        iteration = self.train_iteration()
        folder = ppseg_state.checkpoint_dir(self.save_dir, iteration) if self.save_dir else None
        if folder and os.path.isdir(folder):  # paddleseg creates it just before saving into it
            self.saved.append(ppseg_state.write_state(folder, self.pruner.state_dict()))
        elif self.save_dir:
            logger.warning("no checkpoint folder %s to write the pruner state beside", folder)
        if self.total_iterations and iteration == self.total_iterations:
            logger.info(run_result(self.pruner))
        return state

    def _set_state_dict(self, state, *args, **kwargs):
        state = dict(state)
        legacy = state.pop(ppseg_state.LEGACY_OPT_KEY, None)
        result = self._original['set_state_dict'](state, *args, **kwargs)
        folder_iteration = ppseg_state.resumed_iteration(self.resume_model)
        pruner_state = self._resume_state or legacy
        if pruner_state is None:
            if folder_iteration is None:
                return result
            logger.warning("%s has no %s: continuing the prune schedule at iteration %d (from "
                           "the folder name)", self.resume_model, ppseg_state.STATE_NAME,
                           folder_iteration)
            pruner_state = {'iteration': folder_iteration}
        elif folder_iteration is not None and pruner_state['iteration'] != folder_iteration:
            logger.warning("pruner state says iteration %d but paddleseg resumes at %d (the "
                           "folder name): the prune schedule follows the pruner state",
                           pruner_state['iteration'], folder_iteration)
        # paddleseg's resume() loads the model first: masks come back from its zeros.
        self.pruner.set_state_dict({'iteration': int(pruner_state['iteration'])})
        logger.info("pruner resumed at iteration %d, sparsity %.2f%%", self.pruner.iteration,
                    100 * self.pruner.sparsity())
        return result


class _MaskStateDict:
    """A ``state_dict`` hook; ``deepcopy`` shares it (the EMA copy masks with the same pruner)."""

    def __init__(self, pruner):
        self.pruner = pruner

    def __call__(self, destination):
        self.pruner.apply_masks_to(destination)
        return None

    def __deepcopy__(self, memo):
        return self


def mask_state_dicts_of(model, pruner):
    """Zero pruned positions in everything ``model.state_dict()`` returns, and in deep copies.

    The tensors ``state_dict()`` returns share memory with the layer's parameters, so the EMA
    model (a deep copy of ``model`` in ``paddleseg.core.train``) is masked in place each time
    paddleseg reads it.

    Args:
        model: The ``paddle.nn.Layer`` the pruner prunes (before paddleseg deep-copies it).
        pruner: Its ``UnstructuredPruner``.

    Returns:
        The hook's remove helper (``.remove()`` detaches it).
    """
    return model.register_state_dict_hook(_MaskStateDict(pruner))


def mask_digest(pruner):
    """A short hash of all masks (to compare ranks or runs)."""
    digest = hashlib.sha1()
    for p in pruner.params:
        digest.update(p.name.encode())
        digest.update(np.packbits(pruner.mask_of(p.name).ravel()).tobytes())
    return digest.hexdigest()[:16]
