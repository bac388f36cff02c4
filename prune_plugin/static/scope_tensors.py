"""Weights in a static scope, seen as dygraph tensors so the engine's code runs on them.

The engine (:mod:`prune_plugin.core`) works on paddle tensors with paddle/numpy ops. A static
program's weights live in a ``Scope`` as ``DenseTensor``; :func:`tensor_of` wraps one as a
dygraph ``paddle.Tensor`` sharing its memory (no copy on the scope's own place), and
:func:`write_back` copies the values back only if the wrapper does not share it.
Engine code runs inside :func:`dygraph_mode` (a dygraph guard on the pruner's place); the user's
program stays in static mode around it.
"""
import contextlib

import numpy as np
import paddle

from ..core.errors import PruneConfigError


@contextlib.contextmanager
def dygraph_mode(place):
    """Run the enclosed code in dygraph mode on ``place`` (no-op when already dygraph)."""
    if paddle.in_dynamic_mode():
        yield
        return
    with paddle.base.dygraph.guard(place):
        yield


class UnboundWeight:
    """Stands for a weight before the pruner first reads the scope: only its shape is known.

    A pruner is usually built before the startup program runs (as in PaddleSlim's demo), so
    nothing is read from the scope until the first call that needs the weights.
    """

    def __init__(self, shape):
        self.shape = tuple(shape)


def dense_tensor(scope, name):
    """The scope's ``DenseTensor`` of variable ``name``.

    Raises:
        PruneConfigError: the variable is not initialized in the scope (the startup program has
            not run there).
    """
    var = scope.find_var(name)
    if var is None or not var.get_tensor()._is_initialized():
        raise PruneConfigError(
            "scope", name, "a scope in which the startup program has run (this variable of the "
            "program is not initialized in it)")
    return var.get_tensor()


def tensor_of(dense):
    """A dygraph ``paddle.Tensor`` over ``dense`` (shares its memory on the same place).

    Call inside :func:`dygraph_mode`.
    """
    return paddle.Tensor(dense)


def shares_memory(tensor, dense):
    """True when the dygraph ``tensor`` writes through to ``dense``."""
    return tensor.data_ptr() == dense._ptr()


def write_back(tensor, dense, place):
    """Copy ``tensor``'s values into ``dense`` unless they already share memory."""
    if not shares_memory(tensor, dense):
        dense.set(np.ascontiguousarray(tensor.numpy()), place)


def host_array(scope, name):
    """A numpy copy of scope variable ``name``."""
    return np.array(dense_tensor(scope, name))
