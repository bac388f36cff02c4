"""Train a ppdet config with PaddleDetection's *built-in* unstructured pruner, timing it.

Used by ``python -m benchmarks.suites`` for the "ppdet built-in" row; not a user command. In this
project ``slim: UnstructuredPruner`` is routed to prune_plugin by ``tools/train.py``, so this
script builds ppdet's own path by hand, as ``ppdet/slim/__init__.py`` would:

1. the config is read as ``tools/train.py`` reads it (``load_ppdet_config``: ``_BASE_``, ``-o``,
   the demo dataset, the Paddle 3 ``PadGTInt64`` fix for PicoDet's assigners); its
   ``UnstructuredPrune`` block (ratio, prune_params_type, GMP epochs) is written as ppdet's
   ``UnstructuredPruner`` block (always local sparsity, as ppdet hard-codes) and
   ``cfg['unstructured_prune'] = True``;
2. ppdet's own ``Trainer`` then creates ``UnstructuredPruner`` from its workspace, which calls
   ``paddleslim.GMPUnstructuredPruner``, steps it after each update and calls
   ``update_params()`` at each epoch end, with its EMA and Checkpointer.

The one shim (Paddle 3.3.1): PaddleSlim 2.6's ``_update_masks`` turns its float32 mask buffers
bool (``paddle.assign(bool_array, output=mask)``) and the next ``param * mask`` fails
(float * bool). Inside this process only, ``paddleslim.GMPUnstructuredPruner`` is replaced by
``benchmarks/_common.py``'s subclass that writes the same mask values as float32 (nothing else
changes). Time inside the pruner's ``step``, ``update_params`` and its forward pre-hook (it
multiplies every prunable weight by its mask before each forward) is accumulated::

    python benchmarks/suites/ppdet_builtin.py --timing-out t.json -c CFG [--seed 0] [-o k=v ...]

writes ``{"train_rc", "train_seconds", "plugin_seconds", "calls"}`` like ``launcher.py``.
"""
import argparse
import json
import os
import sys
import time

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH_DIR)

from _common import _slim_classes  # noqa: E402  (also puts the repo root on sys.path)
from suites.launcher import PluginTimer  # noqa: E402

SLIM_TIMED_METHODS = ('step', 'update_params', '_forward_pre_hook')


def ppdet_builtin_block(spec, steps_per_epoch=None):
    """ppdet's ``UnstructuredPruner`` arguments equivalent to a plugin :class:`PruneSpec`.

    Args:
        spec: The run's validated ``UnstructuredPrune`` block.
        steps_per_epoch: Needed only to turn ``*_iterations`` GMP fields into epochs.

    Returns:
        The block as ppdet's ``UnstructuredPruner`` takes it (its schedule is in epochs).

    Raises:
        ValueError: the spec is not one ppdet's built-in pruner can express (local GMP ratio
            pruning of whole epochs, no blocks / patterns / regex lists).
    """
    if not spec.gmp:
        raise ValueError("ppdet's built-in pruner is GMP only: the block needs a gmp schedule")
    gmp = spec.gmp
    block = {'ratio': spec.ratio, 'prune_params_type': spec.prune_params_type,
             'pruning_steps': gmp.get('pruning_steps'), 'initial_ratio': gmp.get('initial_ratio')}
    for phase in ('stable', 'pruning', 'tunning'):
        if f"{phase}_epochs" in gmp:
            block[f"{phase}_epochs"] = gmp[f"{phase}_epochs"]
            continue
        iterations = gmp.get(f"{phase}_iterations", 0)
        if iterations and (not steps_per_epoch or iterations % steps_per_epoch):
            raise ValueError(f"gmp.{phase}_iterations={iterations} is not a whole number of "
                             f"epochs ({steps_per_epoch} steps each)")
        block[f"{phase}_epochs"] = iterations // steps_per_epoch if iterations else 0
    if not spec.local_sparsity or tuple(spec.sparse_block) != (1, 1) or spec.sparse_pattern \
            or spec.prune_params or spec.skip_params or spec.mode != 'ratio':
        raise ValueError("ppdet's built-in pruner only does local GMP ratio pruning, 1x1 blocks")
    return block


def install_float_mask_pruner(timer):
    """Make ``paddleslim.GMPUnstructuredPruner`` the float32-mask subclass, with timed methods."""
    import paddleslim

    _, gmp_cls = _slim_classes()
    timer.patch(gmp_cls, SLIM_TIMED_METHODS, 'slim')
    paddleslim.GMPUnstructuredPruner = gmp_cls
    return gmp_cls


def train(config, opts, seed):
    """Build ppdet's Trainer with its built-in pruner and train; return the timing dict."""
    from ppdet.core.workspace import merge_config
    from ppdet.engine import Trainer, init_parallel_env, set_random_seed

    import paddle
    from prune_plugin.adapters.ppdet.config import load_ppdet_config

    timer = PluginTimer()
    install_float_mask_pruner(timer)
    start = time.perf_counter()
    cfg, spec = load_ppdet_config(config, opts)
    if spec is None:
        raise SystemExit(f"{config} has no pruning block to translate")
    paddle.set_device('cpu')
    init_parallel_env()
    if seed is not None:
        set_random_seed(seed)
    merge_config({'UnstructuredPruner': ppdet_builtin_block(spec)})  # the demo: epochs
    cfg['unstructured_prune'] = True
    trainer = Trainer(cfg, mode='train')
    if cfg.get('pretrain_weights'):
        trainer.load_weights(cfg.pretrain_weights)
    trainer.train(False)
    return {'train_rc': 0, 'train_seconds': time.perf_counter() - start,
            'plugin_seconds': timer.seconds, 'span_seconds': timer.span_seconds,
            'calls': dict(timer.calls),
            'seconds_by_label': dict(timer.seconds_by_label),
            'pruner_class': type(trainer.pruner).__name__}


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--timing-out', required=True)
    parser.add_argument('-c', '--config', required=True)
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('-o', '--opt', nargs='*', default=[], metavar='KEY=VALUE')
    args = parser.parse_args(argv)
    opts = {}
    import yaml
    for item in args.opt:
        key, value = item.split('=', 1)
        *parents, leaf = key.split('.')
        node = opts
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    return args, opts


def main(argv):
    args, opts = _parse(argv)
    result = train(args.config, opts, args.seed)
    with open(args.timing_out, 'w') as handle:
        json.dump(result, handle, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
