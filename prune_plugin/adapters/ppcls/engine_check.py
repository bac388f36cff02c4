"""Check a config against a PaddleClas clone before its ``Engine`` is built.

PaddleClas's Engine builds every component by name (``getattr`` / ``eval`` in its registries:
``ppcls.arch``, ``ppcls.loss``, ``ppcls.metric``, ``ppcls.optimizer``, ``ppcls.data``,
``ppcls.data.preprocess``) and validates with ``assert``: a typo in a config is a traceback
from deep inside, often after the data was read. :func:`check_engine_config` looks every name
and argument up in the clone's own registries (nothing is built) and raises one
:class:`PruneConfigError` that names the key, the value and what the clone offers, e.g.::

    DataLoader.Train.dataset.transform_ops.1='RandCropImag' is not allowed: expected an operator
    of ppcls.data.preprocess (the clone's); did you mean 'RandCropImage'?

A registry module the clone does not have is not checked (it has no such component).
"""
import difflib
import importlib
import inspect
import os

import paddle

from ...config import spec_from_config
from ...core.errors import PruneConfigError

ENGINE_DEVICES = ('cpu', 'gpu', 'xpu', 'npu', 'mlu', 'ascend', 'intel_gpu', 'mps')


def _module(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _close(name, candidates):
    close = difflib.get_close_matches(str(name), list(candidates), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _public_names(module):
    return sorted(n for n in dir(module) if not n.startswith('_') and callable(getattr(module, n)))


def lookup(module_name, key, name, what):
    """The callable ``name`` in the clone's registry module, or a PruneConfigError.

    Args:
        module_name: ``'ppcls.data.preprocess'`` ...; a module the clone lacks: returns None.
        key: The config key to name in the error.
        name: The name the config gives.
        what: ``'an operator'`` ... for the message.
    """
    module = _module(module_name)
    if module is None:
        return None
    found = getattr(module, name, None) if isinstance(name, str) else None
    if found is None or not callable(found):
        names = _public_names(module)
        raise PruneConfigError(key, name, f"{what} of {module_name} (the clone's)"
                                          f"{_close(name, names)}")
    return found


def check_arguments(target, args, key, injected=(), popped=()):
    """Check ``args`` (a mapping) against ``target``'s constructor: unknown and missing names.

    Args:
        target: A class or function of the clone.
        args: The config's arguments (None: none).
        key: Config key of the component, for the message.
        injected: Arguments PaddleClas passes itself (``class_num``, ``epochs`` ...).
        popped: Keys PaddleClas removes before calling (``weight`` of a loss ...).
    """
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise PruneConfigError(key, args, "a mapping of arguments (or nothing)")
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return
    kinds = {p.kind for p in params.values()}
    names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    given = [a for a in args if a not in popped]
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        for arg in given:
            if arg not in names:
                valid = [n for n in names if n not in injected]
                raise PruneConfigError(f"{key}.{arg}", args[arg], f"one of the arguments "
                                       f"{valid} of {target.__name__}{_close(arg, valid)}")
    for name, param in params.items():
        if param.default is param.empty and param.kind in (param.POSITIONAL_OR_KEYWORD,
                                                           param.KEYWORD_ONLY) \
                and name not in injected and name not in args:
            raise PruneConfigError(f"{key}.{name}", None,
                                   f"a value ({target.__name__} requires it)")


def _named_items(items, key):
    """PaddleClas's ``[{Name: {args}}, ...]`` -> ``[(index, name, args)]``."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise PruneConfigError(key, items, "a list of {Name: {arguments}} entries")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or len(item) != 1:
            raise PruneConfigError(f"{key}.{i}", item, "one {Name: {arguments}} mapping")
        (name, args), = item.items()
        out.append((i, name, args))
    return out


def _check_ops(items, key, batch=False):
    for i, name, args in _named_items(items, key):
        what = "a batch operator" if batch else "an operator"
        op = lookup('ppcls.data.preprocess', f"{key}.{i}", name, what)
        if op is None:
            continue
        check_arguments(op, args, f"{key}.{i}.{name}", injected=('class_num',))
        if name == 'OpSampler':
            ops_module = 'ppcls.data.preprocess.batch_ops.batch_operators'
            if _module(ops_module) is None:
                ops_module = 'ppcls.data.preprocess'
            for sub, sub_args in (args or {}).items():
                sub_op = lookup(ops_module, f"{key}.{i}.OpSampler", sub, "a batch operator")
                if sub_op is not None:
                    check_arguments(sub_op, sub_args, f"{key}.{i}.OpSampler.{sub}",
                                    injected=('class_num',), popped=('prob',))


def _check_path(key, path, kind):
    exists = isinstance(path, str) and (os.path.isdir(path) if kind == 'folder'
                                        else os.path.isfile(path))
    if not exists:
        raise PruneConfigError(key, path, f"an existing {kind} (paths are relative to the "
                                          f"working directory {os.getcwd()})")


def _check_loader(cfg, mode, check_paths=True):
    key = f"DataLoader.{mode}"
    section = (cfg.get('DataLoader') or {}).get(mode)
    if not isinstance(section, dict):
        raise PruneConfigError(key, section, "a mapping with dataset, sampler and loader")
    dataset = section.get('dataset')
    if not isinstance(dataset, dict) or 'name' not in dataset:
        raise PruneConfigError(f"{key}.dataset", dataset, "a mapping with a name")
    args = {k: v for k, v in dataset.items() if k not in ('name', 'batch_transform_ops')}
    cls = lookup('ppcls.data', f"{key}.dataset.name", dataset['name'], "a dataset")
    if cls is not None:
        check_arguments(cls, args, f"{key}.dataset")
    if check_paths and 'image_root' in args:
        _check_path(f"{key}.dataset.image_root", args['image_root'], 'folder')
    if check_paths and 'cls_label_path' in args:
        _check_path(f"{key}.dataset.cls_label_path", args['cls_label_path'], 'file')
    _check_ops(args.get('transform_ops'), f"{key}.dataset.transform_ops")
    _check_ops(dataset.get('batch_transform_ops'), f"{key}.dataset.batch_transform_ops",
               batch=True)
    sampler = section.get('sampler')
    if isinstance(sampler, dict) and 'name' in sampler:
        cls = lookup('ppcls.data', f"{key}.sampler.name", sampler['name'], "a sampler")
        if cls is not None:
            check_arguments(cls, {k: v for k, v in sampler.items() if k != 'name'},
                            f"{key}.sampler", injected=('dataset', 'data_source',
                                                        'total_epochs'))
    elif not isinstance(sampler, dict) or 'batch_size' not in sampler:
        raise PruneConfigError(f"{key}.sampler", sampler, "a mapping with name and batch_size")


def _check_components(cfg, key, module_name, what, injected=(), popped=()):
    for i, name, args in _named_items(cfg, key):
        found = lookup(module_name, f"{key}.{i}", name, what)
        if found is not None:
            check_arguments(found, args, f"{key}.{i}.{name}", injected, popped)


def _check_optimizer(opt):
    if isinstance(opt, list):  # per-scope optimizers: [{Momentum: {scope: ..., lr: ...}}]
        items = [(f"Optimizer.{i}.{name}", dict(args or {}, name=name))
                 for i, name, args in _named_items(opt, 'Optimizer')]
    elif isinstance(opt, dict):
        items = [('Optimizer', opt)]
    else:
        raise PruneConfigError('Optimizer', opt, "a mapping with name and lr")
    for key, section in items:
        cls = lookup('ppcls.optimizer.optimizer', f"{key}.name", section.get('name'),
                     "an optimizer")
        args = {k: v for k, v in section.items()
                if k not in ('name', 'lr', 'regularizer', 'clip_norm', 'scope')}
        if cls is not None:
            check_arguments(cls, args, key, injected=('learning_rate', 'grad_clip',
                                                      'weight_decay'))
        lr = section.get('lr')
        if isinstance(lr, dict) and 'name' in lr:
            sched = lookup('ppcls.optimizer.learning_rate', f"{key}.lr.name", lr['name'],
                           "a learning-rate schedule")
            if sched is not None:
                check_arguments(sched, {k: v for k, v in lr.items() if k != 'name'},
                                f"{key}.lr", injected=('epochs', 'step_each_epoch'))
        elif not isinstance(lr, (dict, int, float)):
            raise PruneConfigError(f"{key}.lr", lr, "a mapping with a name (or learning_rate)")


def _check_global(glob, mode):
    device = glob.get('device')
    if device not in ENGINE_DEVICES:
        raise PruneConfigError('Global.device', device, f"one of {list(ENGINE_DEVICES)}"
                                                        f"{_close(device, ENGINE_DEVICES)}")
    if device == 'gpu' and not paddle.is_compiled_with_cuda():
        raise PruneConfigError('Global.device', device, "'cpu' on this machine (this paddle "
                                                        "has no CUDA): add -o Global.device=cpu")
    seed = glob.get('seed')
    if seed not in (None, False) and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise PruneConfigError('Global.seed', seed, "an int (or null)")
    checkpoints = glob.get('checkpoints')
    if mode == 'train' and checkpoints:
        hint = " (a prefix, without .pdparams)" if str(checkpoints).endswith('.pdparams') else ""
        for suffix in ('.pdparams', '.pdopt'):
            if not os.path.isfile(f"{checkpoints}{suffix}"):
                raise PruneConfigError('Global.checkpoints', checkpoints,
                                       f"a checkpoint prefix P with P.pdparams and P.pdopt on "
                                       f"disk{hint}")
    weights = glob.get('pretrained_model')
    if weights and not str(weights).startswith(('http://', 'https://')):
        path = weights if str(weights).endswith('.pdparams') else f"{weights}.pdparams"
        if not os.path.isfile(path):
            raise PruneConfigError('Global.pretrained_model', weights,
                                   "a weights prefix P with P.pdparams on disk, a URL, or null")


def check_engine_config(cfg, mode, check_paths=True):
    """Check what the clone's Engine reads in ``mode``; return the PruneSpec (or None).

    Args:
        cfg: The config as read by the clone's ``ppcls.utils.config.get_config``.
        mode: ``'train'``, ``'eval'`` or ``'export'``.
        check_paths: Also require the data folders and list files to exist.

    Returns:
        The :class:`PruneSpec` of the ``slim:`` block, or None.

    Raises:
        PruneConfigError: the first name or argument the clone does not have, a missing path,
            a bad device; the ``slim`` block's own errors.
        RegistryError: ``slim`` names an unknown pruner.
    """
    spec = spec_from_config(cfg)
    for section in ('Global', 'Arch'):
        if not isinstance(cfg.get(section), dict):
            raise PruneConfigError(section, cfg.get(section), "a mapping")
    glob = cfg['Global']
    _check_global(glob, mode)
    arch = cfg['Arch']
    if 'name' not in arch:
        raise PruneConfigError('Arch.name', None, "a model name of ppcls.arch")
    lookup('ppcls.arch', 'Arch.name', arch['name'], "a model")
    if mode == 'train':
        _check_components((cfg.get('Loss') or {}).get('Train'), 'Loss.Train', 'ppcls.loss',
                          "a loss", popped=('weight',))
        for i, name, args in _named_items((cfg.get('Loss') or {}).get('Train'), 'Loss.Train'):
            if not isinstance(args, dict) or 'weight' not in args:
                raise PruneConfigError(f"Loss.Train.{i}.{name}.weight", None,
                                       "a value (PaddleClas's CombinedLoss requires it)")
        _check_optimizer(cfg.get('Optimizer'))
        _check_loader(cfg, 'Train', check_paths)
    evaluates = mode == 'eval' or (mode == 'train' and glob.get('eval_during_train'))
    if evaluates and glob.get('eval_mode', 'classification') == 'classification':
        _check_loader(cfg, 'Eval', check_paths)
        _check_components((cfg.get('Metric') or {}).get('Eval'), 'Metric.Eval', 'ppcls.metric',
                          "a metric")
    return spec
