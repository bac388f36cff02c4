"""Attach a pruner to ``paddleseg.core.train``, which has no callbacks.

``paddleseg.core.train`` (2.8) runs, per iteration::

    loss.backward(); optimizer.step()                # fp32 (optimizer may be Fleet's wrapper)
    scaler.minimize(optimizer, scaled)               # --precision fp16: calls optimizer.minimize
    lr.step(); model.clear_gradients()
    update_ema_model(ema_model, model)               # --use_ema: ema = d * ema + (1 - d) * model
    every save_interval: paddle.save(model.state_dict()), paddle.save(optimizer.state_dict()),
                         paddle.save(ema_model.state_dict())

and before the loop ``resume()`` does ``model.set_state_dict(...)`` then
``optimizer.set_state_dict(...)``; ``ema_model`` is a ``deepcopy(model)`` made at the start.

So the plugin attaches at two places, both on objects paddleseg is given:

* :class:`OptimizerPruneHook` replaces, on the optimizer instance, ``step`` and ``minimize``
  (the pruner steps after each update, whichever of the two ran, also when Fleet's
  ``HybridParallelOptimizer`` or the AMP scaler calls them), and ``state_dict`` /
  ``set_state_dict`` (the pruner's state travels inside ``model.pdopt``, next to the weights of
  the same checkpoint, and comes back exactly when paddleseg resumes, after the weights).
* :func:`mask_state_dicts_of` registers a ``state_dict`` hook on the model that zeroes the pruned
  positions of every tensor it returns. ``deepcopy`` carries the hook to the EMA model, whose
  ``state_dict()`` paddleseg reads at every EMA update and save: EMA weights stay exactly as
  sparse as the model.
"""
import hashlib
import logging

import numpy as np

logger = logging.getLogger('prune_plugin')

PRUNER_STATE_KEY = 'prune_plugin.pruner'


class OptimizerPruneHook:
    """Makes ``optimizer`` step ``pruner`` after every update and carry its state.

    Args:
        optimizer: The ``paddle.optimizer.Optimizer`` that paddleseg's train will use.
        pruner: An ``UnstructuredPruner`` built on the same model.
        resume_iteration: Used when a resumed ``model.pdopt`` has no pruner state (a checkpoint
            from a run without the plugin): the iteration paddleseg resumes at.

    Example:
        >>> hook = OptimizerPruneHook(optimizer, pruner)
        >>> paddleseg.core.train(model, ds, optimizer=optimizer, ...)
        >>> hook.updates        # {'step': iters, 'minimize': 0}
    """

    def __init__(self, optimizer, pruner, resume_iteration=None):
        self.optimizer = optimizer
        self.pruner = pruner
        self.resume_iteration = resume_iteration
        self.updates = {'step': 0, 'minimize': 0}
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

    def _state_dict(self, *args, **kwargs):
        state = self._original['state_dict'](*args, **kwargs)
        state[PRUNER_STATE_KEY] = self.pruner.state_dict()
        return state

    def _set_state_dict(self, state, *args, **kwargs):
        state = dict(state)
        pruner_state = state.pop(PRUNER_STATE_KEY, None)
        result = self._original['set_state_dict'](state, *args, **kwargs)
        if pruner_state is None:
            if self.resume_iteration is None:
                return result
            logger.warning("the resumed optimizer state has no pruner state: continuing the "
                           "prune schedule at iteration %d (from the checkpoint's name)",
                           self.resume_iteration)
            pruner_state = {'iteration': int(self.resume_iteration)}
        elif self.resume_iteration is not None and pruner_state['iteration'] != \
                self.resume_iteration:
            logger.warning("pruner state says iteration %d but paddleseg resumes at %d (the "
                           "folder name): the prune schedule follows the pruner state",
                           pruner_state['iteration'], self.resume_iteration)
        # paddleseg's resume() loads the model first: masks come back from its zeros.
        self.pruner.set_state_dict({'iteration': int(pruner_state['iteration'])})
        logger.info("pruner resumed at iteration %d, sparsity %.1f%%", self.pruner.iteration,
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
