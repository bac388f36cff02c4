"""Read a PaddleDetection config with a ``slim: UnstructuredPrune`` block for ppdet's Trainer.

The config is read with ppdet's own ``load_config`` / ``merge_config`` (``_BASE_``, ``-o``),
then the ``slim`` key and its block are validated into a :class:`PruneSpec` and taken out, so
ppdet's own slim handling (which turns ``slim: UnstructuredPruner`` into its built-in pruner)
never runs. Demo dataset folders are generated on first use.
"""
import copy
import os

import ppdet.engine  # noqa: F401  (registers every ppdet module before the snapshot below)
from ppdet.core.config.schema import SchemaDict
from ppdet.core.workspace import global_config, load_config, merge_config

from ..config import spec_from_config
from ..demo_data.ppdet_data import DATASETS, ensure_dataset
from .ppdet_compat import needs_int64_gt_class, use_int64_gt_class

DATASET_KEYS = ('TrainDataset', 'EvalDataset', 'TestDataset')
_SLIM_KEYS = ('slim', 'slim_type', 'unstructured_prune')


def load_ppdet_config(config_path, opts=None, slim_config=None):
    """Load a ppdet config and take its pruning block out.

    Args:
        config_path: The YAML (``_BASE_`` files are followed by ppdet).
        opts: ``{key: value}`` overrides, as ppdet's ``-o`` gives them.
        slim_config: Optional separate slim YAML (ppdet's ``--slim_config``).

    Returns:
        ``(cfg, spec)``: ppdet's global config without ``slim`` keys, and the
        :class:`PruneSpec` (None when the config asks for no pruning).

    Raises:
        PruneConfigError: a bad or missing pruning block (before anything is built).
        RegistryError: ``slim`` names no pruner we know.
    """
    reset_global_config()
    cfg = load_config(config_path)
    if slim_config:
        cfg = load_config(slim_config)
        cfg['filename'] = os.path.splitext(os.path.basename(config_path))[0]
    if opts:
        merge_config(_set_dataset_options(cfg, dict(opts)))
    spec = spec_from_config(cfg)
    if spec is not None:
        block = cfg.get(spec.name)
        if isinstance(block, dict) and not hasattr(block, 'schema'):
            del cfg[spec.name]      # our own block; ppdet's registered UnstructuredPruner stays
    for key in _SLIM_KEYS:
        cfg.pop(key, None)
    resolve_demo_datasets(cfg)
    if needs_int64_gt_class():
        use_int64_gt_class(cfg)
    return cfg, spec


_PRISTINE = {key: copy.deepcopy(dict(value)) if isinstance(value, SchemaDict) else value
             for key, value in global_config.items()}


def reset_global_config():
    """Put ppdet's global config back as it was after import (before any YAML was merged).

    ppdet merges every loaded YAML into one module-level dict; without this, keys of a config
    loaded earlier in the same process would leak into the next one.
    """
    for key in list(global_config):
        if key not in _PRISTINE:
            del global_config[key]
        elif isinstance(global_config[key], SchemaDict):
            global_config[key].clear()
            global_config[key].update(copy.deepcopy(_PRISTINE[key]))
        else:
            global_config[key] = _PRISTINE[key]


def _set_dataset_options(cfg, opts):
    """Apply ``-o TrainDataset.sample_num=8``-style options to the dataset objects themselves.

    ppdet's ``merge_config`` would replace a dataset object by a plain dict; these options are
    set as attributes instead. Returns the remaining options.
    """
    for key in DATASET_KEYS:
        if isinstance(opts.get(key), dict) and hasattr(cfg.get(key), '__dict__'):
            for attr, value in opts.pop(key).items():
                setattr(cfg[key], attr, value)
    return opts


def resolve_demo_datasets(cfg):
    """Point datasets named like a demo dataset at ``data_root()``, generating them if needed.

    A dataset whose ``dataset_dir`` ends in one of :data:`DATASETS` and does not exist as
    written is redirected to ``<data_root()>/<name>``; ``ImageFolder`` test sets whose
    ``anno_path`` starts with such a folder are redirected the same way.

    Returns:
        The dataset names that were redirected.
    """
    redirected = []
    for key in DATASET_KEYS:
        dataset = cfg.get(key)
        if dataset is None or not hasattr(dataset, '__dict__'):
            continue
        dataset_dir = getattr(dataset, 'dataset_dir', '') or ''
        name = os.path.basename(os.path.normpath(dataset_dir)) if dataset_dir else ''
        if name in DATASETS:
            if not os.path.isdir(dataset_dir) or not _complete(dataset_dir):
                dataset.dataset_dir = ensure_dataset(name)
                redirected.append(key)
            continue
        anno = getattr(dataset, 'anno_path', '') or ''
        parts = os.path.normpath(anno).split(os.sep)
        hit = next((i for i, part in enumerate(parts) if part in DATASETS), None)
        if hit is not None and not os.path.exists(anno):
            folder = ensure_dataset(parts[hit])
            dataset.anno_path = os.path.join(folder, *parts[hit + 1:])
            redirected.append(key)
    return redirected


def _complete(folder):
    return os.path.exists(os.path.join(folder, '.complete'))

