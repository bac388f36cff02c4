"""``prune-train`` / ``prune-eval`` / ``prune-export`` on a PaddleClas clone's own ``Engine``.

Run at the root of a clone (or with ``$PADDLECLAS_SRC``), the commands do what the clone's
``tools/train.py``, ``tools/eval.py`` and ``tools/export_model.py`` do — same flags (``-c``,
``-o KEY=VALUE`` (repeatable), ``-p/--profiler_options``), config read by the clone's
``ppcls.utils.config.get_config`` — plus:

* before the Engine is built: the config is checked against the clone's registries and the
  ``slim: UnstructuredPrune`` block is validated (one line, exit 2, on any error);
* train: the pruner is attached (:func:`~.engine_adapter.attach_pruner`);
* eval / export: the sparsity of the loaded weights is logged, with a warning when the config
  has a prune block but the weights are not pruned; export checks that the inference model
  kept every zero.
"""
import argparse
import os

from ... import onnx_export
from ...core.errors import PruneConfigError
from .engine_adapter import _unwrap, attach_pruner, log_through_ppcls, logger
from .engine_check import check_engine_config
from .report import sparsity_summary, unpruned_weights_warning

_TOOLS = {'train': 'tools/train.py', 'eval': 'tools/eval.py',
          'export': 'tools/export_model.py'}


def parse_args(command, argv):
    """PaddleClas's ``config.parse_args()`` flags (``-o`` may also take several values)."""
    parser = argparse.ArgumentParser(
        prog=f"prune-{command}",
        description=f"PaddleClas's {_TOOLS[command]} on the clone's Engine, with prune_plugin: "
                    f"a 'slim: UnstructuredPrune' block in the config makes training sparse.",
        epilog="example: prune-train -c ppcls/configs/ImageNet/MobileNetV1/MobileNetV1.yaml "
               "-o Global.device=cpu -o Global.epochs=2")
    parser.add_argument('-c', '--config', required=True, help="config file path")
    parser.add_argument('-o', '--override', action='append', default=[], nargs='+',
                        metavar='KEY=VALUE', help="config options to be overridden")
    parser.add_argument('-p', '--profiler_options', default=None,
                        help="profiler options, 'key1=value1;key2=value2'")
    args = parser.parse_args(argv)
    args.override = [item for group in args.override for item in group]
    return args


def read_config(path, overrides):
    """The config as the clone's ``get_config`` reads it, ``-o`` applied.

    Raises:
        PruneConfigError: an override PaddleClas's parser rejects (it asserts).
    """
    from ppcls.utils import config as ppcls_config

    for option in overrides:
        if option.count('=') != 1 or not option.split('=', 1)[0].strip():
            raise PruneConfigError('-o', option, "KEY=VALUE with exactly one '=' "
                                                 "(PaddleClas's override syntax)")
    try:
        return ppcls_config.get_config(path, overrides=overrides, show=False)
    except AssertionError as err:
        raise PruneConfigError('-o', ' '.join(overrides),
                               f"keys and list indices that exist in {path} ({err})") from None


def _uniform_output(cfg):
    """What develop's ``tools/train.py`` does with ``Global.uniform_output_enabled``."""
    if not cfg['Global'].get('uniform_output_enabled', False):
        return
    import yaml
    from ppcls.utils import config as ppcls_config

    output_dir = cfg['Global']['output_dir']
    results = os.path.join(output_dir, 'train_results.json')
    if os.path.exists(results):
        os.remove(results)
    os.makedirs(output_dir, exist_ok=True)
    to_dict = getattr(ppcls_config, 'convert_to_dict', None) or dict
    with open(os.path.join(output_dir, 'config.yaml'), 'w') as f:
        yaml.dump(to_dict(cfg), f)


def _report_weights(engine, spec, cfg, verb):
    network = _unwrap(engine.model)
    weights = cfg['Global'].get('pretrained_model')
    logger.info("%s %s: %s", verb, weights or 'fresh weights', sparsity_summary(network, spec))
    warning = unpruned_weights_warning(spec, network, weights)
    if warning:
        logger.warning(warning)
    return network


def _check_export(engine, network, cfg):
    """The exported parameters hold as many zeros as the loaded weights (no re-parameterizing)."""
    import numpy as np
    import paddle

    from ...core.stats import count_zeros

    if any(hasattr(layer, 're_parameterize') for layer in network.sublayers()):
        logger.info("the model re-parameterizes on export: zeros not compared")
        return
    path = os.path.join(cfg['Global']['save_inference_dir'], 'inference')
    exported = paddle.jit.load(path)
    zeros = sum(count_zeros(p) for p in network.parameters())
    total = sum(int(np.prod(p.shape)) for p in network.parameters())
    got = sum(count_zeros(p) for p in exported.parameters())
    got_total = sum(int(np.prod(p.shape)) for p in exported.parameters())
    if (got, got_total) != (zeros, total):
        raise RuntimeError(f"the exported model {path} has {got} zeros in {got_total} "
                           f"parameters, the weights {zeros} in {total}")
    logger.info("exported %s: %d of %d parameters are zero, as in the weights", path, got, total)


def engine_main(command, argv):
    """Run ``command`` (train / eval / export) with the clone's Engine.

    Returns:
        0.

    Raises:
        PruneConfigError, RegistryError: a bad flag value, config or prune block, before the
            Engine is built.
    """
    from ppcls.engine.engine import Engine

    args = parse_args(command, argv)
    cfg = read_config(args.config, args.override)
    spec = check_engine_config(cfg, command)
    if command == 'train':
        cfg.profiler_options = args.profiler_options
        _uniform_output(cfg)
        engine = Engine(cfg, mode='train')
        attach_pruner(engine, spec)
        engine.train()
        return 0
    if command == 'eval':
        engine = Engine(cfg, mode='eval')
        log_through_ppcls()
        _report_weights(engine, spec, cfg, 'evaluating')
        engine.eval()
        return 0
    if cfg['Arch'].get('use_sync_bn', False):
        cfg['Arch']['use_sync_bn'] = False
    prefix = os.path.join(cfg['Global']['save_inference_dir'], 'inference')
    onnx_export.check_target(prefix)   # --format onnx
    engine = Engine(cfg, mode='export')
    log_through_ppcls()
    network = _report_weights(engine, spec, cfg, 'exporting')
    engine.export()
    _check_export(engine, network, cfg)
    onnx_export.convert_requested(prefix, model=network)
    return 0
