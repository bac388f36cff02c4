"""PaddleClas-style configs for the plugin's trainer: read, apply ``-o key=value``, validate.

The layout and key names are PaddleClas's (``Global`` / ``Arch`` / ``Loss`` / ``Optimizer`` /
``DataLoader`` / ``Metric``, ``AMP``; ``Infer`` and other sections the trainer does not read are
ignored), plus the prune block shared by every suite::

    slim: UnstructuredPrune
    UnstructuredPrune: {ratio: 0.75, prune_params_type: conv1x1_only, gmp: {...}}

Everything the trainer will read is checked here, so a typo fails in the first second with a
:class:`PruneConfigError` that names the key, the value and what is allowed.
"""
import ast
import copy
import os

import yaml

from ...config import spec_from_config
from ...core.errors import PruneConfigError

REQUIRED_SECTIONS = ('Global', 'Arch', 'Loss', 'Optimizer', 'DataLoader', 'Metric')
LOSSES = ('CELoss',)
METRICS = ('TopkAcc',)
DATASETS = ('ImageNetDataset',)
DATASET_ARGS = ('name', 'image_root', 'cls_label_path', 'transform_ops', 'batch_transform_ops',
                'delimiter', 'relabel')
SAMPLERS = ('DistributedBatchSampler', 'BatchSampler')
AMP_LEVELS = ('O1', 'O2')
GLOBAL_DEFAULTS = {
    'checkpoints': None, 'pretrained_model': None, 'output_dir': './output/', 'device': 'cpu',
    'save_interval': 1, 'eval_during_train': True, 'eval_interval': 1, 'epochs': 1,
    'print_batch_step': 10, 'use_visualdl': False, 'image_shape': [3, 224, 224],
    'save_inference_dir': './inference', 'seed': None, 'compare_dense': False, 'update_freq': 1,
}


def parse_override(text):
    """``'Global.epochs=3'`` -> ``(['Global', 'epochs'], 3)``; the value is read as YAML.

    Raises:
        PruneConfigError: no ``=`` or an empty key.
    """
    if '=' not in text:
        raise PruneConfigError('-o', text, "KEY=VALUE, e.g. Global.epochs=3")
    key, value = text.split('=', 1)
    if not key.strip():
        raise PruneConfigError('-o', text, "KEY=VALUE with a non-empty KEY")
    try:
        parsed = yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        parsed = value
    return key.strip().split('.'), parsed


def apply_override(cfg, path, value):
    """Set ``cfg[path[0]][path[1]]... = value``; list items by index (``transform_ops.1``).

    Raises:
        PruneConfigError: a path through a missing list index or a non-container.
    """
    node = cfg
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        key = int(part) if isinstance(node, list) and part.lstrip('-').isdigit() else part
        if isinstance(node, list):
            if not isinstance(key, int) or not -len(node) <= key < len(node):
                raise PruneConfigError('-o ' + '.'.join(path), value,
                                       f"an index below {len(node)} at {part!r}")
        elif not isinstance(node, dict):
            raise PruneConfigError('-o ' + '.'.join(path), value,
                                   f"a path through mappings ({'.'.join(path[:depth])} is "
                                   f"{type(node).__name__})")
        if last:
            node[key] = value
        else:
            if isinstance(node, dict) and node.get(key) is None:
                node[key] = {}
            node = node[key]
    return cfg


def merge_config(base, update):
    """``update`` merged into a copy of ``base``: mappings recursively, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path, depth=0):
    """A YAML mapping, with the files listed under ``_BASE_`` merged in below it."""
    if not os.path.isfile(path):
        raise PruneConfigError('-c' if depth == 0 else '_BASE_', path, "an existing YAML file")
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    if not isinstance(cfg, dict):
        raise PruneConfigError('-c', path, "a YAML mapping at the top level")
    bases = cfg.pop('_BASE_', None) or []
    merged = {}
    for base in [bases] if isinstance(bases, str) else bases:
        if depth >= 8:
            raise PruneConfigError('_BASE_', base, "at most 8 levels of _BASE_ files")
        merged = merge_config(merged, _read_yaml(os.path.join(os.path.dirname(path), base),
                                                 depth + 1))
    return merge_config(merged, cfg)


def literal_strings(node):
    """Turn strings that are Python literals into values, in mappings, as PaddleClas does.

    YAML reads ``1e-3`` (no dot) as a string; PaddleClas's ``create_attr_dict`` passes every
    string value of a mapping through ``ast.literal_eval`` (lists are left as they are), so
    ``learning_rate: 1e-3`` is 0.001 there. Only literals: ``'1.0/255.0'`` stays a string.
    """
    for key, value in node.items():
        if isinstance(value, dict):
            literal_strings(value)
        elif isinstance(value, str):
            try:
                node[key] = ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                pass
    return node


def load_config(path, overrides=()):
    """Read a PaddleClas-style YAML and apply ``-o`` overrides; fill ``Global`` defaults.

    A config may start from others: ``_BASE_: [base.yml]`` (paths relative to it), merged
    key by key below its own keys.

    Args:
        path: The YAML file.
        overrides: Strings ``'Section.key=value'``.

    Returns:
        The config dict (not yet validated: see :func:`validate_config`).

    Raises:
        PruneConfigError: a missing file, a non-mapping YAML or a bad override.
    """
    cfg = _read_yaml(path)
    for text in overrides or ():
        keys, value = parse_override(text)
        apply_override(cfg, keys, value)
    literal_strings(cfg)
    cfg.setdefault('Global', {})
    if isinstance(cfg['Global'], dict):
        for key, value in GLOBAL_DEFAULTS.items():
            cfg['Global'].setdefault(key, copy.deepcopy(value))
    return cfg


def _one_named(items, key, allowed, optional=False):
    """A PaddleClas list of ``{Name: {args}}`` entries -> ``[(name, args)]``, names checked."""
    if optional and not items:
        return []
    if not isinstance(items, list) or not items:
        raise PruneConfigError(key, items, f"a non-empty list of {{name: args}} with names in "
                                           f"{list(allowed)}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or len(item) != 1:
            raise PruneConfigError(f"{key}.{i}", item, "one {name: args} mapping")
        name, args = next(iter(item.items()))
        if name not in allowed:
            raise PruneConfigError(f"{key}.{i}", name, f"one of {list(allowed)} (the plugin's "
                                                       f"trainer; at the root of a PaddleClas "
                                                       f"clone its Engine builds them all)")
        if args is not None and not isinstance(args, dict):
            raise PruneConfigError(f"{key}.{i}.{name}", args, "a mapping of arguments")
        out.append((name, args or {}))
    return out


def _positive_int(key, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PruneConfigError(key, value, f"an int >= {minimum}")


def _validate_global(cfg):
    glob = cfg['Global']
    for key in ('epochs', 'eval_interval', 'print_batch_step', 'update_freq'):
        _positive_int(f"Global.{key}", glob[key])
    interval = glob['save_interval']
    if isinstance(interval, bool) or not isinstance(interval, int):
        raise PruneConfigError('Global.save_interval', interval,
                               "an int (epochs between checkpoints; <= 0: only latest)")
    if glob['device'] not in ('cpu', 'gpu', 'xpu', 'npu'):
        raise PruneConfigError('Global.device', glob['device'],
                               "one of ['cpu', 'gpu', 'xpu', 'npu']")
    shape = glob['image_shape']
    if not (isinstance(shape, list) and len(shape) == 3 and all(
            isinstance(v, int) and v > 0 for v in shape)):
        raise PruneConfigError('Global.image_shape', shape, "[channels, height, width] ints")
    for key in ('checkpoints', 'pretrained_model'):
        value = glob[key]
        if isinstance(value, str) and value.endswith('.pdparams'):
            value = glob[key] = value[:-len('.pdparams')]  # PaddleClas takes the prefix
        if value is not None and not os.path.isfile(f"{value}.pdparams"):
            raise PruneConfigError(f"Global.{key}", value,
                                   "a checkpoint prefix PATH with PATH.pdparams on disk, or null")


def _validate_arch(cfg):
    from paddleclas.ppcls import arch

    arch_cfg = cfg['Arch']
    name = arch_cfg.get('name') if isinstance(arch_cfg, dict) else None
    if not isinstance(name, str) or not callable(getattr(arch, name, None)):
        models = sorted(n for n in dir(arch) if n.startswith(('MobileNet', 'ResNet', 'PPLCNet')))
        raise PruneConfigError('Arch.name', name, f"a model of paddleclas.ppcls.arch, e.g. "
                                                  f"{models[:12]}")


def _validate_optimizer(cfg):
    from .lr import check_lr
    from .optim import check_optimizer

    check_optimizer(cfg['Optimizer'])
    check_lr(cfg['Optimizer'].get('lr'))


def _validate_loader(cfg, mode):
    from .batch_ops import build_batch_operator
    from .data import build_transforms

    key = f"DataLoader.{mode}"
    section = cfg['DataLoader'].get(mode) if isinstance(cfg['DataLoader'], dict) else None
    if not isinstance(section, dict):
        raise PruneConfigError(key, section, "a mapping with dataset, sampler and loader")
    dataset = section.get('dataset') if isinstance(section.get('dataset'), dict) else {}
    if dataset.get('name') not in DATASETS:
        raise PruneConfigError(f"{key}.dataset.name", dataset.get('name'),
                               f"one of {list(DATASETS)} (the plugin's trainer; a clone's Engine "
                               f"has every PaddleClas dataset)")
    for arg in dataset:
        if arg not in DATASET_ARGS:
            raise PruneConfigError(f"{key}.dataset.{arg}", dataset[arg],
                                   f"one of the arguments {list(DATASET_ARGS)}")
    for field in ('image_root', 'cls_label_path'):
        if not isinstance(dataset.get(field), str):
            raise PruneConfigError(f"{key}.dataset.{field}", dataset.get(field), "a path")
    ops = dataset.get('transform_ops')
    if not isinstance(ops, list) or not ops:
        raise PruneConfigError(f"{key}.dataset.transform_ops", ops,
                               "a non-empty list of {Name: {arguments}}")
    build_transforms(ops, f"{key}.dataset.transform_ops")
    if dataset.get('batch_transform_ops'):
        build_batch_operator(dataset['batch_transform_ops'], cfg['Arch'].get('class_num'),
                             f"{key}.dataset.batch_transform_ops")
    sampler = section.get('sampler') if isinstance(section.get('sampler'), dict) else {}
    if sampler.get('name', 'DistributedBatchSampler') not in SAMPLERS:
        raise PruneConfigError(f"{key}.sampler.name", sampler.get('name'),
                               f"one of {list(SAMPLERS)}")
    _positive_int(f"{key}.sampler.batch_size", sampler.get('batch_size'))


def amp_settings(cfg):
    """hapi's ``amp_configs`` for the ``AMP`` section, as PaddleClas's Engine reads it.

    The Engine turns AMP on when the section exists and ``use_amp`` is not false: stock
    configs carry ``AMP: {use_amp: False, ...}``, which means fp32.

    Returns:
        None (fp32) or ``{'level', 'init_loss_scaling', 'use_dynamic_loss_scaling'}``.
    """
    amp = cfg.get('AMP')
    if not amp or not amp.get('use_amp', True):
        return None
    settings = {'level': str(amp.get('level', 'O1')).upper()}
    settings['init_loss_scaling'] = float(amp.get('scale_loss', 1.0))
    settings['use_dynamic_loss_scaling'] = bool(amp.get('use_dynamic_loss_scaling', False))
    return settings


def validate_config(cfg, mode='train'):
    """Check everything the ``mode`` run reads; return the :class:`PruneSpec` (or None).

    Args:
        cfg: The dict from :func:`load_config`.
        mode: ``'train'``, ``'eval'`` or ``'export'``.

    Returns:
        The PruneSpec of the ``slim:`` block, or None when the config has none.

    Raises:
        PruneConfigError: the first bad key, with its value and what is allowed.
        RegistryError: ``slim`` names an unknown pruner.
    """
    for section in REQUIRED_SECTIONS if mode != 'export' else ('Global', 'Arch'):
        if not isinstance(cfg.get(section), dict):
            raise PruneConfigError(section, cfg.get(section), f"a mapping (PaddleClas configs "
                                                              f"have {list(REQUIRED_SECTIONS)})")
    spec = spec_from_config(cfg)
    _validate_global(cfg)
    _validate_arch(cfg)
    if mode != 'export':
        _validate_optimizer(cfg)
        for section in ('Loss', 'Metric'):
            for part in ('Train', 'Eval'):
                if part in cfg[section]:
                    _validate_named(cfg[section][part], f"{section}.{part}",
                                    LOSSES if section == 'Loss' else METRICS)
        _validate_loader(cfg, 'Eval')
        if mode == 'train':
            _validate_loader(cfg, 'Train')
    amp = cfg.get('AMP')
    if amp is not None and not isinstance(amp, dict):
        raise PruneConfigError('AMP', amp, "a mapping (use_amp, level, scale_loss, ...)")
    if amp_settings(cfg) and amp_settings(cfg)['level'] not in AMP_LEVELS:
        raise PruneConfigError('AMP.level', amp.get('level'), f"one of {list(AMP_LEVELS)}")
    return spec


def _validate_named(items, key, allowed):
    from .engine_check import check_arguments
    from .optim import CELoss, TopkAcc

    optional = key != 'Loss.Train'  # PaddleClas allows an empty Metric.Train and Loss.Eval
    for i, (name, args) in enumerate(_one_named(items, key, allowed, optional)):
        check_arguments({'CELoss': CELoss, 'TopkAcc': TopkAcc}[name], args, f"{key}.{i}.{name}")


def without_prune(cfg):
    """A copy of ``cfg`` with the ``slim`` block removed (the dense baseline of the demo)."""
    dense = copy.deepcopy(cfg)
    name = dense.pop('slim', None)
    if name is not None:
        dense.pop(name, None)
    return dense
