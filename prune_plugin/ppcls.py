"""Sparse training in PaddleClas's own scripts: one line after the Engine is built.

In a PaddleClas clone's ``tools/train.py`` (develop or release/2.5.2)::

    engine = Engine(config, mode="train")
    from prune_plugin.ppcls import attach_pruner; attach_pruner(engine)
    engine.train()

and a ``slim: UnstructuredPrune`` block in the config (the same block as in every suite). The
pruner steps after every optimizer update, the EMA copy is masked, the pruner state travels in
every ``.pdopt`` the Engine writes (resume continues the schedule), and the run's plan and
result are logged through PaddleClas's logger. Without a block, nothing is attached (a warning
says so).

For ``paddle.Model.fit`` loops, :class:`PruneCallback` does the same as a hapi callback.
"""

__all__ = ['attach_pruner', 'PruneCallback']


def attach_pruner(engine, spec=None, skip_params_func=None):
    """Attach the config's pruner to a PaddleClas ``Engine`` in train mode.

    Args:
        engine: ``ppcls.engine.engine.Engine(config, mode="train")``.
        spec: A :class:`~prune_plugin.core.spec.PruneSpec`; default: the config's block.
        skip_params_func: Optional ``fn(model) -> set`` of parameter names never pruned.

    Returns:
        The pruner, or None when the config has no ``slim`` block.

    Raises:
        PruneConfigError / RegistryError: a bad block or 0 updates per epoch, before training.

    Example:
        >>> from prune_plugin.ppcls import attach_pruner; attach_pruner(engine)
    """
    from .adapters.ppcls.engine_adapter import attach_pruner as _attach

    return _attach(engine, spec=spec, skip_params_func=skip_params_func)


def __getattr__(name):
    if name == 'PruneCallback':
        from .hapi_callback import PruneCallback
        return PruneCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
