"""PaddleSeg adapter: ``prune-train`` / ``prune-eval`` / ``prune-export`` for PaddleSeg configs.

Each entry does what PaddleSeg's own ``tools/train.py`` / ``tools/val.py`` / ``tools/export.py``
does (2.8 and 2.9, same flags: :mod:`~prune_plugin.adapters.ppseg.args`), with the prune block
read and checked first and the pruner attached by the same call users add to their own
``tools/train.py`` (:func:`~prune_plugin.adapters.ppseg.hook.attach_pruner`)::

    prune-train --config contrib/PP-HumanSeg/configs/human_pp_humansegv1_lite.yml --do_eval
    prune-eval --config CONFIG --model_path output/iter_1000/model.pdparams
    prune-export --config CONFIG --model_path output/iter_1000/model.pdparams --save_dir infer
"""
import logging
from collections import namedtuple

import paddle
from paddleseg.core import evaluate, train
from paddleseg.cvlibs import SegBuilder
from paddleseg.utils import utils as seg_utils

from . import args as ppseg_args
from .attach import mask_digest
from .config import PruneSegConfig
from .export import export_inference_model
from .hook import attach_pruner, checkpoint_sparsity, prepare_paddleseg

logger = logging.getLogger('prune_plugin')

SegTrainRun = namedtuple('SegTrainRun', 'model pruner hook config')

train_parser = ppseg_args.train_parser
eval_parser = ppseg_args.eval_parser
export_parser = ppseg_args.export_parser


def _show(cfg):
    seg_utils.show_env_info()
    seg_utils.show_cfg_info(cfg)


def run_training(args):
    """``tools/train.py``'s ``main`` with the pruner attached.

    Args:
        args: Parsed :func:`train_parser` arguments.

    Returns:
        SegTrainRun(model, pruner, hook, config); pruner and hook are None without a slim block.

    Raises:
        PruneConfigError, RegistryError: a bad prune block, config or flag, before training.
    """
    ppseg_args.check_multilabel(args)
    prepare_paddleseg()
    cfg = PruneSegConfig(args.config, learning_rate=args.learning_rate, iters=args.iters,
                         batch_size=args.batch_size, opts=args.opts,
                         to_static_training=args.to_static_training)
    ppseg_args.apply_data_format(cfg, args.data_format)
    builder = SegBuilder(cfg)
    _show(cfg)
    seg_utils.set_seed(args.seed)
    seg_utils.set_device(args.device)
    seg_utils.set_cv2_num_threads(args.num_workers)
    model = seg_utils.convert_sync_batchnorm(builder.model, args.device)
    train_dataset = builder.train_dataset
    if args.repeats > 1:
        train_dataset.file_list *= args.repeats
    val_dataset = builder.val_dataset if args.do_eval else None
    optimizer = builder.optimizer
    hook = attach_pruner(builder, model, optimizer, save_dir=args.save_dir,
                         resume_model=args.resume_model)
    if args.use_multilabel:
        cfg.dic.setdefault('test_config', {})['use_multilabel'] = True
    train(model, train_dataset, val_dataset=val_dataset, optimizer=optimizer,
          save_dir=args.save_dir, iters=cfg.iters, batch_size=cfg.batch_size,
          resume_model=args.resume_model, save_interval=args.save_interval,
          log_iters=args.log_iters, num_workers=args.num_workers, use_vdl=args.use_vdl,
          use_ema=args.use_ema, losses=builder.loss,
          keep_checkpoint_max=args.keep_checkpoint_max, test_config=cfg.test_config,
          precision=args.precision, amp_level=args.amp_level,
          profiler_options=args.profiler_options, to_static_training=cfg.to_static_training)
    pruner = hook.pruner if hook else None
    if pruner is not None:
        rank = paddle.distributed.ParallelEnv().local_rank
        # one line per process (not only rank 0): lets users compare the ranks' masks
        print(f"[prune_plugin] rank {rank}: iteration {pruner.iteration}, sparsity "
              f"{100 * pruner.sparsity():.2f}% of {len(pruner.params)} params, masks sha1 "
              f"{mask_digest(pruner)}", flush=True)
    return SegTrainRun(model, pruner, hook, cfg)


def train_main(argv):
    """Entry of ``prune-train`` for PaddleSeg configs; returns the exit code."""
    run_training(train_parser().parse_args(argv))
    return 0


def _test_config(cfg, args):
    """``tools/val.py``'s ``merge_test_config``."""
    test_config = cfg.test_config
    if args.aug_eval:
        test_config.update(aug_eval=True, scales=args.scales,
                           flip_horizontal=args.flip_horizontal,
                           flip_vertical=args.flip_vertical)
    if args.is_slide:
        test_config.update(is_slide=True, crop_size=args.crop_size, stride=args.stride)
    if args.use_multilabel:
        test_config['use_multilabel'] = True
    return test_config


def evaluate_checkpoint(args):
    """``tools/val.py``'s ``main``, plus the sparsity of the weights the prune block selects.

    Returns:
        dict with ``miou``, ``acc``, ``kappa``, ``class_iou`` and ``sparsity`` (None without a
        prune block).
    """
    ppseg_args.check_multilabel(args)
    prepare_paddleseg()
    cfg = PruneSegConfig(args.config, opts=args.opts)
    ppseg_args.apply_data_format(cfg, args.data_format)
    builder = SegBuilder(cfg)
    test_config = _test_config(cfg, args)
    _show(cfg)
    seg_utils.set_device(args.device)
    model = builder.model
    if args.model_path:
        seg_utils.load_entire_model(model, args.model_path)
    sparsity = None
    if cfg.prune_spec is not None:
        sparsity = checkpoint_sparsity(cfg.prune_spec, model,
                                       args.model_path or "the config's weights")
    miou, acc, class_iou, _, kappa = evaluate(
        model, builder.val_dataset, num_workers=args.num_workers, precision=args.precision,
        amp_level=args.amp_level, **test_config)
    return {'miou': float(miou), 'acc': float(acc), 'kappa': float(kappa),
            'class_iou': [float(v) for v in class_iou], 'sparsity': sparsity}


def eval_main(argv):
    """Entry of ``prune-eval`` for PaddleSeg configs; returns the exit code."""
    evaluate_checkpoint(eval_parser().parse_args(argv))
    return 0


def export_checkpoint(args):
    """``tools/export.py``'s ``main`` (zeros kept), plus the checkpoint's sparsity.

    Returns:
        :func:`~prune_plugin.adapters.ppseg.export.export_inference_model`'s dict plus
        ``sparsity`` (None without a prune block).
    """
    ppseg_args.check_input_shape(args.input_shape)
    prepare_paddleseg()
    cfg = PruneSegConfig(args.config, opts=args.opts)
    _show(cfg)
    result = export_inference_model(cfg, args.model_path, args.save_dir, args.input_shape,
                                    args.output_op, for_fd=args.for_fd)
    result['sparsity'] = None
    if cfg.prune_spec is not None:
        result['sparsity'] = checkpoint_sparsity(cfg.prune_spec, result['model'],
                                                 args.model_path or "the config's weights")
    return result


def export_main(argv):
    """Entry of ``prune-export`` for PaddleSeg configs; returns the exit code."""
    export_checkpoint(export_parser().parse_args(argv))
    return 0
