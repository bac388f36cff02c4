"""Suite adapters. Each module imports its suite; nothing imports them but :func:`load_adapter`.

Every adapter module provides ``train_main(argv)``, ``eval_main(argv)`` and ``export_main(argv)``,
the entry points of ``tools/train.py``, ``tools/eval.py`` and ``tools/export*.py``.
"""
import importlib
import os

import yaml

SUITES = {
    'ppdet': ('prune_plugin.adapters.ppdet', 'paddledet'),
    'ppseg': ('prune_plugin.adapters.ppseg', 'paddleseg'),
    'ppcls': ('prune_plugin.adapters.ppcls', 'paddleclas'),
}


class SuiteNotFoundError(ValueError):
    """The config belongs to no suite we know."""


def _top_level_keys(path, depth=0):
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    if not isinstance(cfg, dict):
        raise SuiteNotFoundError(f"{path}: expected a YAML mapping at the top level")
    keys = set(cfg)
    bases = cfg.get('_BASE_') or cfg.get('_base_') or []
    if isinstance(bases, str):
        bases = [bases]
    for base in bases if depth < 8 else []:
        keys |= _top_level_keys(os.path.join(os.path.dirname(path), base), depth + 1)
    return keys


def detect_suite(config_path):
    """Which suite a config is for: ``'ppdet'``, ``'ppseg'`` or ``'ppcls'``.

    Decided by the folder (``configs/ppdet/...``) and otherwise by the keys each suite uses:
    ``architecture`` (ppdet), ``Global``/``Arch`` (ppcls), ``model`` + ``train_dataset`` (ppseg).

    Raises:
        SuiteNotFoundError: a missing file or keys of no known suite.
    """
    if not os.path.isfile(config_path):
        raise SuiteNotFoundError(f"config file not found: {config_path}")
    parts = os.path.normpath(os.path.abspath(config_path)).split(os.sep)
    for suite in SUITES:
        if suite in parts:
            return suite
    keys = _top_level_keys(config_path)
    if 'architecture' in keys:
        return 'ppdet'
    if 'Arch' in keys or 'Global' in keys:
        return 'ppcls'
    if 'model' in keys and ('train_dataset' in keys or 'val_dataset' in keys):
        return 'ppseg'
    raise SuiteNotFoundError(
        f"{config_path}: cannot tell the suite: expected 'architecture' (PaddleDetection), "
        "'Global'/'Arch' (PaddleClas) or 'model' + 'train_dataset' (PaddleSeg)")


def load_adapter(suite):
    """Import the adapter of ``suite``; a missing suite names the pip command that fixes it."""
    module, package = SUITES[suite]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and err.name.split('.')[0] in ('ppdet', 'paddleseg', 'paddleclas', 'paddle'):
            raise ImportError(f"{suite} needs the {package} package: run `bash scripts/install.sh` "
                              f"or `pip install --no-deps {package}`") from err
        raise
