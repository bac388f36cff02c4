"""PaddleClas adapter: ``prune-train`` / ``prune-eval`` / ``prune-export`` (and ``tools/*.py``)
for configs with ``Global`` / ``Arch`` / ... sections.

Two ways to run, picked by where the command runs:

* At the root of a PaddleClas clone (or with ``$PADDLECLAS_SRC``; see
  :func:`prune_plugin.suites.activated_clone`): the clone's own ``Engine`` trains, evaluates
  and exports, with the pruner attached (:mod:`.engine_cli`).
* Otherwise: the paddleclas wheel ships the model zoo (``paddleclas.ppcls.arch``) but not
  PaddleClas's Engine, so the plugin's own trainer runs the config on ``paddle.Model``
  (:mod:`.trainer`), with PaddleClas's names for every section it reads.

Command lines of the plugin's trainer (PaddleClas's flags)::

    python tools/train.py -c configs/ppcls/mobilenetv1_prune.yml [-o Global.epochs=3 ...]
    python tools/train.py -c ... --resume output/MobileNetV1/epoch_3
    python tools/eval.py -c ... -o Global.pretrained_model=output/MobileNetV1/latest
    python tools/export_model.py -c ... -o Global.pretrained_model=output/MobileNetV1/latest
"""
import argparse
import logging
import os
import sys

from ...core.errors import PruneConfigError
from ...suites import activated_clone

logger = logging.getLogger('prune_plugin')
# paddleclas imports faiss, whose loader logs two INFO lines to stderr through the root handler
# paddle installs: they would bury the one-line errors (exit 2) of bad configs.
logging.getLogger('faiss.loader').setLevel(logging.WARNING)


def _parser(command):
    parser = argparse.ArgumentParser(
        prog=f"tools/{command}.py", description=f"PaddleClas {command} with prune_plugin",
        epilog="example: python tools/train.py -c configs/ppcls/mobilenetv1_prune_demo.yml "
               "-o Global.epochs=2")
    parser.add_argument('-c', '--config', required=True, help="PaddleClas-style YAML")
    parser.add_argument('-o', '--override', action='append', default=[], nargs='+',
                        metavar='KEY=VALUE', help="override a config key, e.g. Global.epochs=3")
    parser.add_argument('-p', '--profiler_options', default=None,
                        help="PaddleClas's profiler options: used by a clone's Engine only")
    if command == 'train':
        parser.add_argument('--resume', metavar='CHECKPOINT',
                            help="checkpoint prefix to continue from (= -o Global.checkpoints=)")
    return parser


def _setup_logging():
    from .trainer import is_rank0

    plugin_logger = logging.getLogger('prune_plugin')
    if not plugin_logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter('[%(asctime)s] prune_plugin %(levelname)s: '
                                               '%(message)s', '%Y/%m/%d %H:%M:%S'))
        plugin_logger.addHandler(handler)
    plugin_logger.setLevel(logging.INFO if is_rank0() else logging.WARNING)
    plugin_logger.propagate = False


def _require_wheel():
    """The plugin's trainer needs the paddleclas wheel's model zoo (a clone brings its own)."""
    try:
        import paddleclas.ppcls.arch  # noqa: F401
    except ModuleNotFoundError as err:
        raise ImportError(f"PaddleClas needs the paddleclas package ({err.name} is missing): "
                          "run `bash scripts/install.sh` or `pip install --no-deps paddleclas`, "
                          "or run at the root of a PaddleClas clone") from err


def _engine_main(command, argv):
    """At a clone's root: the clone's Engine runs the command (None when there is no clone)."""
    if activated_clone('ppcls') is None:
        return None
    from .engine_cli import engine_main
    return engine_main(command, argv)


def _load(command, argv):
    from .config import load_config, validate_config

    _require_wheel()
    args = _parser(command).parse_args(argv)
    overrides = [item for group in args.override for item in group]
    if getattr(args, 'resume', None):
        overrides.append(f"Global.checkpoints={args.resume}")
    cfg = load_config(args.config, overrides)
    spec = validate_config(cfg, command)
    _setup_logging()
    if args.profiler_options:
        logger.warning("-p/--profiler_options is read by PaddleClas's Engine (run at the root of "
                       "a clone); the plugin's trainer does not profile")
    return cfg, spec


def _sparsity_line(label, result):
    return (f"{label:<7} top1 {result['top1']:.4f}  top5 {result['top5']:.4f}  "
            f"total_sparse {result['total_sparse']:.4f}  "
            f"total_sparse_conv1x1 {result['total_sparse_conv1x1']:.4f}")


def train_main(argv):
    """``tools/train.py``: train (and with ``Global.compare_dense``, a dense baseline first).

    Returns:
        Exit code 0.

    Raises:
        PruneConfigError: a bad config, before any training.
    """
    on_engine = _engine_main('train', argv)
    if on_engine is not None:
        return on_engine
    from .config import without_prune
    from .trainer import is_rank0, setup_runtime, train

    cfg, spec = _load('train', argv)
    setup_runtime(cfg)
    out_root = os.path.join(cfg['Global']['output_dir'], cfg['Arch']['name'])
    if not cfg['Global'].get('compare_dense'):
        result = train(cfg, spec)
        if is_rank0() and result['top1'] is not None:
            print(_sparsity_line('final', result))
        _log_mask_digest(result)
        return 0
    if spec is None:
        raise PruneConfigError('Global.compare_dense', True, "false when the config has no "
                                                             "'slim: UnstructuredPrune' block")
    if cfg['Global'].get('checkpoints'):
        raise PruneConfigError('Global.compare_dense', True, "false when resuming "
                                                             "(Global.checkpoints / --resume)")
    results = {}
    for label, run_cfg, run_spec in (('dense', without_prune(cfg), None), ('sparse', cfg, spec)):
        if is_rank0():
            print(f"==== {label} run: {'no pruning' if run_spec is None else _describe(run_spec)}"
                  f" ====", flush=True)
        setup_runtime(cfg)
        results[label] = train(run_cfg, run_spec, os.path.join(out_root, label))
    if is_rank0():
        print("==== dense vs sparse (same budget: "
              f"{cfg['Global']['epochs']} epochs) ====")
        for label in ('dense', 'sparse'):
            print(_sparsity_line(label, results[label]) + f"  ({results[label]['output_dir']})")
        gap = (results['dense']['top1'] - results['sparse']['top1']) * 100
        print(f"top1 drop from pruning: {gap:+.2f} points")
    return 0


def _describe(spec):
    gmp = ', GMP' if spec.gmp else ''
    kind = f", {spec.prune_params_type}" if spec.prune_params_type else ''
    amount = f"ratio {spec.ratio}" if spec.mode == 'ratio' else f"threshold {spec.threshold}"
    return f"{spec.name} {amount}{kind}{gmp}"


def _log_mask_digest(result):
    """One line per rank: identical digests prove that data-parallel ranks prune alike."""
    pruner = result.get('pruner')
    if pruner is None:
        return
    import hashlib

    import paddle

    import numpy as np

    digest = hashlib.sha1()  # of the pruned positions, parameter by parameter (packed bits)
    for p in pruner.params:
        digest.update(np.packbits(~pruner.mask_of(p.name)).tobytes())
    print(f"rank {paddle.distributed.ParallelEnv().local_rank}: pruner iteration "
          f"{pruner.iteration}, sparsity {pruner.sparsity():.6f}, mask sha1 {digest.hexdigest()}",
          flush=True)


def _require_pretrained_model(cfg, verb):
    if not cfg['Global'].get('pretrained_model'):
        raise PruneConfigError('Global.pretrained_model', None,
                               f"a checkpoint prefix to {verb} (-o Global.pretrained_model=...)")


def eval_main(argv):
    """``tools/eval.py``: top-1 / top-5 and sparsity of ``Global.pretrained_model``.

    Raises:
        PruneConfigError: no ``Global.pretrained_model`` or a bad config.
    """
    on_engine = _engine_main('eval', argv)
    if on_engine is not None:
        return on_engine
    from .data import build_dataloader
    from .trainer import build_network, evaluate, is_rank0, prepare_model, setup_runtime
    from ...core.stats import total_sparse, total_sparse_conv1x1

    cfg, spec = _load('eval', argv)
    _require_pretrained_model(cfg, 'evaluate')
    setup_runtime(cfg)
    network = build_network(cfg)
    loader = build_dataloader(cfg['DataLoader']['Eval'], key='DataLoader.Eval')
    model = prepare_model(cfg, network, len(loader), train=False)
    result = evaluate(model, loader)
    result.update(total_sparse=total_sparse(network),
                  total_sparse_conv1x1=total_sparse_conv1x1(network))
    if is_rank0():
        _warn_unpruned(spec, network, cfg)
        print(_sparsity_line('eval', result) + f"  ({cfg['Global']['pretrained_model']})")
    return 0


def _warn_unpruned(spec, network, cfg):
    from .report import unpruned_weights_warning

    warning = unpruned_weights_warning(spec, network, cfg['Global']['pretrained_model'])
    if warning:
        logger.warning(warning)


def export_main(argv):
    """``tools/export_model.py``: a sparse inference model (zeros kept), Global.save_inference_dir.

    Raises:
        PruneConfigError: no ``Global.pretrained_model`` or a bad config.
    """
    on_engine = _engine_main('export', argv)
    if on_engine is not None:
        return on_engine
    from .export import export

    cfg, spec = _load('export', argv)
    _require_pretrained_model(cfg, 'export')
    export(cfg, spec)
    return 0
