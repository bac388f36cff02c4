"""PaddleSeg adapter: ``tools/train.py``, ``tools/eval.py``, ``tools/export.py`` for ppseg configs.

Training is ``paddleseg.core.train`` itself, given an optimizer and a model that carry the
pruner (see :mod:`prune_plugin.adapters.ppseg_attach`)::

    python tools/train.py -c configs/ppseg/pphumanseg_lite_prune_demo.yml --do_eval
    python tools/eval.py -c configs/ppseg/pphumanseg_lite_prune_demo.yml \\
        --model_path output/ppseg_demo/best_model/model.pdparams
    python tools/export.py -c configs/ppseg/pphumanseg_lite_prune_demo.yml \\
        --model_path output/ppseg_demo/best_model/model.pdparams --save_dir output/ppseg_infer
"""
import argparse
import logging
import os
from collections import namedtuple

import paddle
from paddleseg.core import evaluate, train
from paddleseg.cvlibs import SegBuilder
from paddleseg.utils import logger as seg_logger
from paddleseg.utils import utils as seg_utils

from .ppseg_attach import OptimizerPruneHook, mask_digest, mask_state_dicts_of
from .ppseg_compat import install_metric_fixes
from .ppseg_config import PruneSegConfig
from .ppseg_export import export_inference_model
from .ppseg_losses import make_losses_paddle3_ready

logger = logging.getLogger('prune_plugin')

SegTrainRun = namedtuple('SegTrainRun', 'model pruner hook config')
EXAMPLES = """examples:
  python tools/train.py -c configs/ppseg/pphumanseg_lite_prune_demo.yml --do_eval
  python tools/train.py -c configs/ppseg/pphumanseg_lite_prune_demo.yml \\
      --resume_model output/ppseg_demo/iter_200
  python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py \\
      -c configs/ppseg/pphumanseg_lite_prune_demo.yml
"""


class _SegLoggerHandler(logging.Handler):
    """Send ``prune_plugin`` log records to paddleseg's logger (which prints on rank 0)."""

    def emit(self, record):
        message = f"[prune_plugin] {record.getMessage()}"
        if record.levelno >= logging.WARNING:
            seg_logger.warning(message)
        else:
            seg_logger.info(message)


def _prepare():
    install_metric_fixes()
    _log_through_paddleseg()


def _log_through_paddleseg():
    if not any(isinstance(h, _SegLoggerHandler) for h in logger.handlers):
        logger.addHandler(_SegLoggerHandler())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def _common_args(parser):
    parser.add_argument('-c', '--config', required=True, help="the PaddleSeg YAML config")
    parser.add_argument('--device', default='gpu', choices=['cpu', 'gpu', 'xpu', 'npu', 'mlu'],
                        help="device (falls back to cpu as in paddleseg)")
    parser.add_argument('--num_workers', type=int, default=0, help="data loader workers")
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'fp16'],
                        help="fp16 = AMP through paddleseg's GradScaler")
    parser.add_argument('--amp_level', default='O1', choices=['O1', 'O2'])
    parser.add_argument('-o', '--opts', nargs='+', default=None, metavar='KEY=VALUE',
                        help="override config keys, e.g. iters=100 UnstructuredPrune.ratio=0.5")


def train_parser():
    """The argument parser of ``tools/train.py`` for PaddleSeg configs (paddleseg's options)."""
    parser = argparse.ArgumentParser(
        prog='tools/train.py', description="Train a PaddleSeg model with paddleseg.core.train; "
        "a 'slim: UnstructuredPrune' block in the config makes it sparse.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_args(parser)
    parser.add_argument('--save_dir', default='./output', help="checkpoint folder")
    parser.add_argument('--do_eval', action='store_true', help="evaluate at each save")
    parser.add_argument('--use_vdl', action='store_true', help="log to VisualDL")
    parser.add_argument('--use_ema', action='store_true', help="keep EMA weights (also sparse)")
    parser.add_argument('--resume_model', default=None, help="a checkpoint folder iter_N")
    parser.add_argument('--iters', type=int, default=None)
    parser.add_argument('--batch_size', type=int, default=None, help="per process")
    parser.add_argument('--learning_rate', type=float, default=None)
    parser.add_argument('--save_interval', type=int, default=1000)
    parser.add_argument('--log_iters', type=int, default=10)
    parser.add_argument('--keep_checkpoint_max', type=int, default=5)
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--profiler_options', default=None)
    return parser


def _steps_per_epoch(dataset_size, batch_size):
    nranks = max(1, paddle.distributed.ParallelEnv().nranks)
    per_rank = -(-dataset_size // nranks)
    return max(1, per_rank // batch_size)


def _resume_iteration(resume_model):
    """The iteration paddleseg resumes at (its rule: the number after the last '_')."""
    if not resume_model:
        return None
    tail = os.path.normpath(resume_model).split('_')[-1]
    return int(tail) if tail.isdigit() else None


def run_training(args):
    """Build paddleseg's components, attach the pruner, run ``paddleseg.core.train``.

    Args:
        args: Parsed :func:`train_parser` arguments.

    Returns:
        SegTrainRun(model, pruner, hook, config); pruner and hook are None without a slim block.

    Raises:
        PruneConfigError, RegistryError: a bad prune block, before anything is built.
    """
    _prepare()
    cfg = PruneSegConfig(args.config, learning_rate=args.learning_rate,
                         batch_size=args.batch_size, iters=args.iters, opts=args.opts)
    builder = SegBuilder(cfg)
    seg_utils.set_seed(args.seed)
    seg_utils.set_device(args.device)
    model = seg_utils.convert_sync_batchnorm(builder.model, args.device)
    train_dataset = builder.train_dataset
    val_dataset = builder.val_dataset if args.do_eval else None
    optimizer = builder.optimizer
    make_losses_paddle3_ready(builder.loss)
    pruner = hook = None
    if cfg.prune_spec is None:
        logger.info("no 'slim:' key in %s: training dense", args.config)
    else:
        pruner = cfg.prune_spec.build(
            model, steps_per_epoch=_steps_per_epoch(len(train_dataset), cfg.batch_size),
            optimizer=optimizer)
        hook = OptimizerPruneHook(optimizer, pruner, _resume_iteration(args.resume_model))
        mask_state_dicts_of(model, pruner)
        logger.info("%s: %d prunable weights in %d parameters, target sparsity %.0f%%",
                    type(pruner).__name__, sum(p.param.size for p in pruner.params),
                    len(pruner.params), 100 * pruner.target_ratio)
    train(model, train_dataset, val_dataset=val_dataset, optimizer=optimizer,
          save_dir=args.save_dir, iters=cfg.iters, batch_size=cfg.batch_size,
          resume_model=args.resume_model, save_interval=args.save_interval,
          log_iters=args.log_iters, num_workers=args.num_workers, use_vdl=args.use_vdl,
          use_ema=args.use_ema, losses=builder.loss,
          keep_checkpoint_max=args.keep_checkpoint_max, test_config=cfg.test_config,
          precision=args.precision, amp_level=args.amp_level,
          profiler_options=args.profiler_options, to_static_training=cfg.to_static_training)
    if pruner is not None:
        rank = paddle.distributed.ParallelEnv().local_rank
        # one line per process (not only rank 0): lets users compare the ranks' masks
        print(f"[prune_plugin] rank {rank}: iteration {pruner.iteration}, sparsity "
              f"{100 * pruner.sparsity():.2f}% of {len(pruner.params)} params, masks sha1 "
              f"{mask_digest(pruner)}", flush=True)
    return SegTrainRun(model, pruner, hook, cfg)


def train_main(argv):
    """Entry of ``tools/train.py`` for PaddleSeg configs; returns the exit code."""
    run_training(train_parser().parse_args(argv))
    return 0


def eval_parser():
    """The argument parser of ``tools/eval.py`` for PaddleSeg configs."""
    parser = argparse.ArgumentParser(prog='tools/eval.py',
                                     description="Evaluate a PaddleSeg checkpoint (mIoU).")
    _common_args(parser)
    parser.add_argument('--model_path', required=True, help="a model.pdparams file")
    return parser


def evaluate_checkpoint(args):
    """Evaluate ``args.model_path`` on the config's ``val_dataset``.

    Returns:
        dict with ``miou``, ``acc``, ``kappa`` and ``sparsity`` (zero fraction of the weights the
        config's prune block selects; None without a block).
    """
    _prepare()
    cfg = PruneSegConfig(args.config, opts=args.opts)
    builder = SegBuilder(cfg)
    seg_utils.set_device(args.device)
    model = builder.model
    seg_utils.load_entire_model(model, args.model_path)
    sparsity = None
    if cfg.prune_spec is not None:
        sparsity = cfg.prune_spec.build(model).prunable_sparsity()
        logger.info("%s: %.2f%% of the prunable weights are zero", args.model_path,
                    100 * sparsity)
    miou, acc, _, _, kappa = evaluate(model, builder.val_dataset, num_workers=args.num_workers,
                                      precision=args.precision, amp_level=args.amp_level,
                                      **cfg.test_config)
    return {'miou': float(miou), 'acc': float(acc), 'kappa': float(kappa),
            'sparsity': sparsity}


def eval_main(argv):
    """Entry of ``tools/eval.py`` for PaddleSeg configs; returns the exit code."""
    evaluate_checkpoint(eval_parser().parse_args(argv))
    return 0


def export_parser():
    """The argument parser of ``tools/export.py`` for PaddleSeg configs."""
    parser = argparse.ArgumentParser(prog='tools/export.py',
                                     description="Export a sparse PaddleSeg inference model.")
    parser.add_argument('-c', '--config', required=True, help="the PaddleSeg YAML config")
    parser.add_argument('--model_path', required=True, help="a model.pdparams file")
    parser.add_argument('--save_dir', default='./output/inference_model')
    parser.add_argument('--input_shape', nargs=4, type=int, default=None,
                        metavar=('N', 'C', 'H', 'W'), help="fixed input shape, e.g. 1 3 192 192")
    parser.add_argument('--output_op', default='argmax', choices=['argmax', 'softmax', 'none'])
    parser.add_argument('-o', '--opts', nargs='+', default=None, metavar='KEY=VALUE')
    return parser


def export_main(argv):
    """Entry of ``tools/export.py`` for PaddleSeg configs; returns the exit code."""
    _prepare()
    args = export_parser().parse_args(argv)
    export_inference_model(PruneSegConfig(args.config, opts=args.opts), args.model_path,
                           args.save_dir, args.input_shape, args.output_op)
    return 0
