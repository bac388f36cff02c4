"""Sparse training from a PaddleDetection clone's own ``tools/train.py``: one line.

Add, after the script's ppdet imports::

    from ppdet.engine import Trainer, TrainerCot, init_parallel_env, set_random_seed, init_fleet_env
    from prune_plugin.ppdet import Trainer          # <- the added line

and put a ``slim: UnstructuredPrune`` block in the config (or keep ppdet's own
``--slim_config configs/slim/prune/picodet_m_unstructured_prune_75.yml``). ``Trainer`` is ppdet's
own Trainer (the clone's) with the pruner attached: GMP resumes with ``-r``, every checkpoint is
exactly sparse, ``<checkpoint>.pdprune`` is written beside it. The same line in ``tools/eval.py``
or ``tools/export_model.py`` logs how sparse the loaded weights are (and exports under the
Paddle 3 settings ppdet 2.6 needs).

Names are imported on first use, so importing this module imports nothing of ppdet:

- ``Trainer`` (= ``PruneTrainer``): the subclass of ``ppdet.engine.Trainer``.
- ``PruneCallback``: attach a pruner to a Trainer you built yourself
  (``PruneCallback.attach(trainer, pruner)``).
- ``load_ppdet_config``: read a config as ``prune-train`` does -> ``(cfg, spec)``.
"""
import importlib

_EXPORTS = {
    'Trainer': ('prune_plugin.adapters.ppdet.trainer', 'PruneTrainer'),
    'PruneTrainer': ('prune_plugin.adapters.ppdet.trainer', 'PruneTrainer'),
    'PruneCallback': ('prune_plugin.adapters.ppdet.callback', 'PruneCallback'),
    'load_ppdet_config': ('prune_plugin.adapters.ppdet.config', 'load_ppdet_config'),
}
_ANNOUNCED = []

__all__ = sorted(_EXPORTS)


def _announce():
    """Log once which ppdet package runs (path, version; the clone when it is one)."""
    if _ANNOUNCED:
        return
    _ANNOUNCED.append(True)
    import os

    import ppdet
    from ppdet.utils.logger import setup_logger

    from .suites import clone_root_at, describe_loaded_suite
    parent = os.path.dirname(os.path.dirname(os.path.abspath(ppdet.__file__)))
    # a clone has its configs/ beside ppdet/ (site-packages has neither)
    root = clone_root_at(parent, 'ppdet') if os.path.isdir(os.path.join(parent, 'configs')) \
        else None
    loaded = describe_loaded_suite('ppdet', root)
    if os.environ.get('PADDLE_TRAINER_ID', '0') in ('', '0'):
        setup_logger('prune_plugin.ppdet').info(f"prune_plugin: {loaded.describe()}")


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prune_plugin.ppdet' has no attribute {name!r} "
                             f"(it has {__all__})")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    _announce()
    globals()[name] = value
    return value
