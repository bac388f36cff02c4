"""Read the ``slim:`` key of any suite's config into a validated :class:`PruneSpec`."""
from .core.errors import PruneConfigError
from .core.spec import PruneSpec
from .registry import PRUNERS

PRUNERS.register('UnstructuredPrune')(PruneSpec.from_block)
PRUNERS.register('UnstructuredPruner')(PruneSpec.from_ppdet_block)


def spec_from_config(cfg):
    """The :class:`PruneSpec` a suite config asks for, or None when it has no ``slim`` key.

    Args:
        cfg: A mapping (the suite's parsed YAML).

    Raises:
        RegistryError: ``slim`` names no registered pruner.
        PruneConfigError: the block under it is missing or bad.

    Example:
        >>> spec_from_config({'slim': 'UnstructuredPrune', 'UnstructuredPrune': {'ratio': 0.75}})
    """
    name = cfg.get('slim') if hasattr(cfg, 'get') else None
    if name is None:
        return None
    reader = PRUNERS.get(name)
    if name not in cfg:
        raise PruneConfigError(name, None, f"a '{name}:' block next to 'slim: {name}'")
    return reader(cfg[name], name=name)
