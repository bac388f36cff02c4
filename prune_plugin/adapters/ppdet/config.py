"""Read a PaddleDetection config with a ``slim: UnstructuredPrune`` block for ppdet's Trainer.

The config is read with ppdet's own ``load_config`` / ``merge_config`` (``_BASE_``, tags, ``-o``)
the way ppdet's ``tools/train.py`` reads it: the config, then ``--slim_config`` merged over it
(its file name becomes the run's name, as in ppdet), the flags (ppdet's ``merge_args``), then
``-o``. Before anything is built, the ``slim`` key and its block are validated into a
:class:`PruneSpec` and taken out, so ppdet's own slim handling (its built-in pruner) never runs,
and what the plugin cannot train is refused in one line: semi-supervised (``ssod_method``) and
co-tuning (``use_cot``) configs, other slim methods (QAT, PTQ, distillation, OFA, structured
pruning). Demo dataset folders are generated on first use.
"""
import copy
import os

import ppdet.engine  # noqa: F401  (registers every ppdet module before the snapshot below)
from ppdet.core.config.schema import SchemaDict
from ppdet.core.workspace import global_config, load_config, merge_config

from ...config import spec_from_config
from ...config_files import ConfigFileError, read_yaml
from ...core.errors import PruneConfigError
from ...core.spec import PPDET_BUILTIN_KEYS, PruneSpec
from ...demo_data.ppdet_data import DATASETS, ensure_dataset
from .args import merge_flags
from .compat import needs_int64_gt_class, use_int64_gt_class

DATASET_KEYS = ('TrainDataset', 'EvalDataset', 'TestDataset')
_SLIM_KEYS = ('slim', 'slim_type', 'unstructured_prune')
PRUNE_SLIM = ('UnstructuredPrune', 'UnstructuredPruner')
# ppdet's other slim methods (configs/slim/*): trained by ppdet's tools, not by the plugin.
OTHER_SLIM = {'QAT': 'quantization-aware training', 'PTQ': 'post-training quantization',
              'Distill': 'distillation', 'DistillPrune': 'distillation with channel pruning',
              'OFA': 'once-for-all search', 'Pruner': 'structured (channel) pruning',
              'PrunerQAT': 'channel pruning with QAT'}


def _refuse_other_slim(name, where):
    if name in OTHER_SLIM:
        raise PruneConfigError(f"{where}: slim", name, f"'UnstructuredPrune' or ppdet's "
                               f"'UnstructuredPruner': {name} ({OTHER_SLIM[name]}) is ppdet's "
                               "own slim method, train it with ppdet's tools/train.py")


def _check_yaml_name(path, flag):
    if os.path.splitext(path)[1] not in ('.yml', '.yaml'):
        raise ConfigFileError(f"{flag} {path}: ppdet reads only .yml / .yaml files")


def refuse_unsupported(cfg, command='train'):
    """Stop, before anything is built, on configs the plugin does not attach to.

    Raises:
        PruneConfigError: ``ssod_method`` / ``use_cot`` in training (ppdet runs them with
            other trainers), ``ssod_method: ARSL`` in eval/export, another slim method.
    """
    ssod = cfg.get('ssod_method')
    if ssod and (command == 'train' or ssod == 'ARSL'):
        raise PruneConfigError('ssod_method', ssod, "no ssod_method: semi-supervised configs "
                               "run on ppdet's semi-supervised trainers (Trainer_DenseTeacher, "
                               "Trainer_ARSL, ...), which prune_plugin does not attach to")
    if command == 'train' and cfg.get('use_cot'):
        raise PruneConfigError('use_cot', cfg.get('use_cot'), "no use_cot: co-tuning configs "
                               "run on ppdet's TrainerCot, which prune_plugin does not attach to")
    slim = cfg.get('slim')
    if isinstance(slim, str):
        _refuse_other_slim(slim, cfg.get('filename', 'config'))


def load_ppdet_config(config_path, opts=None, slim_config=None, flags=None, command='train'):
    """Load a ppdet config as ppdet's tools do and take its pruning block out.

    Args:
        config_path: The YAML (``_BASE_`` files are followed by ppdet).
        opts: ``{key: value}`` overrides, as ppdet's ``-o`` gives them.
        slim_config: Optional separate slim YAML (ppdet's ``--slim_config``).
        flags: Parsed command-line flags, merged into the config as ppdet's ``merge_args``
            does (None: none, as in ppdet's export).
        command: ``'train'``, ``'eval'`` or ``'export'`` (what is refused depends on it).

    Returns:
        ``(cfg, spec)``: ppdet's global config without ``slim`` keys, and the
        :class:`PruneSpec` (None when the config asks for no pruning).

    Raises:
        ConfigFileError: a config or slim file that is not .yml / .yaml, or not YAML.
        PruneConfigError: a bad or missing pruning block, or a config the plugin does not
            train (ssod, cot, another slim method), before anything is built.
        RegistryError: ``slim`` names no pruner we know.
    """
    _check_yaml_name(config_path, '-c')
    if slim_config:
        _check_yaml_name(slim_config, '--slim_config')
        _refuse_other_slim(read_yaml(slim_config).get('slim'), slim_config)
    reset_global_config()
    cfg = load_config(config_path)
    if slim_config:
        cfg = load_config(slim_config)   # as ppdet: the run is named after the slim file
    if flags is not None:
        merge_flags(cfg, flags)
    if opts:
        merge_config(_set_dataset_options(cfg, dict(opts)))
    refuse_unsupported(cfg, command)
    spec = take_prune_block(cfg)
    resolve_demo_datasets(cfg)
    if needs_int64_gt_class():
        use_int64_gt_class(cfg)
    return cfg, spec


def take_prune_block(cfg):
    """Validate the pruning block of ``cfg`` and take it and the ``slim`` keys out (in place).

    Reads ``slim: UnstructuredPrune`` + its block, ``slim: UnstructuredPruner`` + ppdet's
    block, and what ppdet's ``build_slim_model`` leaves for ``--slim_config`` of its built-in
    pruner (``cfg['slim']`` the created ``UnstructuredPruner``, ``slim_type``,
    ``unstructured_prune``). Other slim methods are left in place for ppdet.

    Returns:
        The :class:`PruneSpec`, or None (no pruning block).

    Raises:
        PruneConfigError, RegistryError: a bad block.
    """
    slim = cfg.get('slim')
    if slim is not None and cfg.get('slim_type') not in (None, 'UnstructuredPruner'):
        return None              # ppdet built its QAT / OFA / ... for this run: its business
    if slim is None:
        spec = None
    elif isinstance(slim, str):
        spec = spec_from_config(cfg)
        block = cfg.get(spec.name)
        if isinstance(block, dict) and not hasattr(block, 'schema'):
            del cfg[spec.name]      # our own block; ppdet's registered UnstructuredPruner stays
    else:                           # the UnstructuredPruner object build_slim_model created
        spec = PruneSpec.from_ppdet_block(
            {k: getattr(slim, k) for k in PPDET_BUILTIN_KEYS if hasattr(slim, k)})
    for key in _SLIM_KEYS:
        cfg.pop(key, None)
    return spec


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

    ppdet's ``merge_config`` would replace a dataset object (a ``!COCODataSet`` tag) by a plain
    dict; these options are set as attributes instead. Datasets written as a mapping
    (``name: COCODataSet``, release/2.6's configs/datasets) are merged as keys, as ppdet does.
    Returns the remaining options.
    """
    for key in DATASET_KEYS:
        dataset = cfg.get(key)
        if isinstance(opts.get(key), dict) and not isinstance(dataset, dict) \
                and hasattr(dataset, '__dict__'):
            for attr, value in opts.pop(key).items():
                setattr(dataset, attr, value)
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
        if not isinstance(dataset_dir, str):
            continue          # e.g. the list of folders of ppdet's pose3d datasets
        name = os.path.basename(os.path.normpath(dataset_dir)) if dataset_dir else ''
        if name in DATASETS:
            if not os.path.isdir(dataset_dir) or not _complete(dataset_dir):
                dataset.dataset_dir = ensure_dataset(name)
                redirected.append(key)
            continue
        anno = getattr(dataset, 'anno_path', '') or ''
        if not isinstance(anno, str):
            continue
        parts = os.path.normpath(anno).split(os.sep)
        hit = next((i for i, part in enumerate(parts) if part in DATASETS), None)
        if hit is not None and not os.path.exists(anno):
            folder = ensure_dataset(parts[hit])
            dataset.anno_path = os.path.join(folder, *parts[hit + 1:])
            redirected.append(key)
    return redirected


def _complete(folder):
    return os.path.exists(os.path.join(folder, '.complete'))

