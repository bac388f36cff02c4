"""Suite adapters. Each package (``ppdet/``, ``ppseg/``, ``ppcls/``) imports its suite; nothing
imports them but :func:`load_adapter` (and the public hooks ``prune_plugin.ppdet`` / ``ppseg`` /
``ppcls``); ``suite_logging`` is shared.

Every adapter's ``main`` module provides ``train_main(argv)``, ``eval_main(argv)`` and
``export_main(argv)``, the entry points of ``prune-train`` / ``prune-eval`` / ``prune-export`` (and ``tools/*.py``).
Which suite a config is for, and which copy of the suite runs, is :mod:`prune_plugin.suites`.
"""
import importlib

from ..suites import SUITES, SuiteNotFoundError, detect_suite

__all__ = ['load_adapter', 'detect_suite', 'SuiteNotFoundError']

_SUITE_PACKAGES = ('ppdet', 'paddleseg', 'paddleclas', 'ppcls', 'paddle')


def load_adapter(suite):
    """Import the adapter of ``suite`` (its ``main`` module); a missing suite names the pip
    command that fixes it."""
    info = SUITES[suite]
    try:
        return importlib.import_module(info.adapter)
    except ModuleNotFoundError as err:
        if err.name and err.name.split('.')[0] in _SUITE_PACKAGES:
            raise ImportError(f"{info.title} needs the {info.pip_name} package ({err.name} is "
                              f"missing): run `bash scripts/install.sh` or "
                              f"`pip install --no-deps {info.pip_name}`, or run at the root of "
                              f"a {info.title} clone") from err
        raise
