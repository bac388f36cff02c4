"""PaddleDetection adapter: ``prune-train``, ``prune-eval``, ``prune-export`` (and ``tools/*.py``).

Each command takes the flags of ppdet's own script (:mod:`.args`), reads the config as
that script does (:mod:`.config`) and runs ppdet's own ``Trainer`` (the clone's when run
at the root of a clone) through :class:`PruneTrainer`, which keeps the model sparse when the
config has ``slim: UnstructuredPrune`` (or ppdet's built-in ``UnstructuredPruner``)::

    prune-train -c configs/yolov3/yolov3_mobilenet_v1_270e_voc.yml --eval
    prune-train -c configs/picodet/legacy_model/pruner/picodet_m_320_coco_pruner.yml \
        --slim_config configs/slim/prune/picodet_m_unstructured_prune_75.yml
    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py -c CONFIG
    prune-eval -c CONFIG -o weights=output/NAME/model_final
    prune-export -c CONFIG --output_dir inference -o weights=output/NAME/model_final

Bad input (flags, config, block, resume state, missing weights) is one line on stderr and exit
code 2, before anything is built.
"""
import functools
import os
import sys

import paddle
from ppdet.engine import init_fleet_env, init_parallel_env, set_random_seed
from ppdet.utils.check import check_config
from ppdet.utils.logger import setup_logger

from ... import onnx_export
from ...core.errors import PruneConfigError
from ...run_lock import acquire
from .args import FlagError, check_flags, parse_flags
from .callback import checkpointer_of
from .config import load_ppdet_config
from .state import check_resume_files, read_state, weights_file
from .trainer import PruneTrainer

logger = setup_logger('prune_plugin.ppdet')
TRACKERS = ('DeepSORT', 'ByteTrack')


def _one_line_errors(main):
    """Flag errors become ``error: ...`` on stderr and exit code 2 (the CLI handles the rest)."""
    @functools.wraps(main)
    def run(argv):
        try:
            return main(argv)
        except FlagError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    return run


def _set_device(cfg):
    """ppdet's device choice: use_gpu / use_npu / use_xpu / use_mlu, else CPU."""
    for key in ('use_gpu', 'use_npu', 'use_xpu', 'use_mlu'):
        cfg.setdefault(key, False)
    device = next((d for d in ('gpu', 'npu', 'xpu', 'mlu') if cfg.get(f'use_{d}')), 'cpu')
    try:
        paddle.set_device(device)
    except ValueError as err:    # e.g. use_gpu: true (every stock runtime.yml) without CUDA
        raise FlagError(f"use_{device}=True in the config: {' '.join(str(err).split())}; "
                        f"add -o use_{device}=false to run on the CPU") from None


def _check_required_keys(cfg, config_path):
    """What ppdet's ``check_config`` exits 1 for (after a log line): one line and exit 2 here."""
    for key in ('architecture', 'num_classes'):
        if key not in cfg:
            raise FlagError(f"{config_path}: '{key}' is not set in the config or its _BASE_ "
                            f"files (ppdet needs it)")


def _is_url(path):
    return str(path).startswith(('http://', 'https://'))


def _check_weights(path, what):
    """A local checkpoint that does not exist: one line, before anything is built."""
    if path and not _is_url(path) and not os.path.exists(weights_file(str(path))) \
            and not os.path.exists(str(path)):
        raise FlagError(f"{what} {path}: {weights_file(str(path))} not found")


def _check_resume(path):
    _check_weights(path, '-r')
    if not _is_url(path):
        check_resume_files(str(path))
    try:
        return read_state(path)
    except ValueError as err:
        raise FlagError(f"-r {path}: {err}") from None


@_one_line_errors
def train_main(argv):
    """``prune-train``: train with ppdet's Trainer, sparse when the config asks for it.

    Args:
        argv: ppdet's ``tools/train.py`` flags, e.g. ``['-c', 'x.yml', '--eval']``.

    Returns:
        0 on success, 2 for a bad flag.

    Raises:
        PruneConfigError, ConfigFileError, RegistryError: bad input, before anything is built.
    """
    flags = parse_flags('train', argv)
    cfg, spec = load_ppdet_config(flags.config, flags.opt, flags.slim_config, flags, 'train')
    _check_required_keys(cfg, flags.config)
    _set_device(cfg)
    check_flags('train', flags, cfg, PruneTrainer)
    if flags.resume is not None:
        _check_resume(flags.resume)
    check_config(cfg)
    if cfg.get('fleet') and int(os.environ.get('PADDLE_TRAINERS_NUM', '1')) < 2:
        # Paddle 3.3's fleet.distributed_model wraps a single process in NoPipelineParallel,
        # which only accepts a PipelineLayer: one process trains without Fleet.
        logger.warning("--fleet with a single process: training without Fleet")
        cfg['fleet'] = False
    if cfg.get('fleet'):
        init_fleet_env(cfg.get('find_unused_parameters', False))
    else:
        init_parallel_env()
    if flags.enable_ce:
        set_random_seed(0)
    if flags.seed is not None:
        set_random_seed(flags.seed)
    trainer = PruneTrainer(cfg, mode='train', prune_spec=spec)
    checkpointer = checkpointer_of(trainer)
    acquire(checkpointer.save_dir if checkpointer else cfg.save_dir)
    if flags.resume is not None:
        trainer.resume_weights(flags.resume)
    elif cfg.get('pretrain_weights'):
        trainer.load_weights(cfg.pretrain_weights)
    trainer.train(flags.eval)
    return 0


@_one_line_errors
def eval_main(argv):
    """``prune-eval``: ppdet's ``tools/eval.py`` (``-o weights=...``), logging the sparsity.

    Returns:
        0 on success, 2 for a bad flag or missing weights.
    """
    flags = parse_flags('eval', argv)
    cfg, spec = load_ppdet_config(flags.config, flags.opt, flags.slim_config, flags, 'eval')
    _check_required_keys(cfg, flags.config)
    _set_device(cfg)
    check_flags('eval', flags, cfg, PruneTrainer)
    if flags.json_eval:
        from ppdet.core.workspace import create
        from ppdet.metrics.coco_utils import json_eval_results
        dataset = cfg['EvalDataset']
        dataset = dataset if hasattr(dataset, 'parse_dataset') else create('EvalDataset')()
        json_eval_results(cfg.metric, json_directory=flags.output_eval, dataset=dataset)
        return 0
    _check_weights(cfg.get('weights'), 'weights')
    check_config(cfg)
    init_parallel_env()
    trainer = PruneTrainer(cfg, mode='eval', prune_spec=spec)
    trainer.load_weights(cfg.weights)
    if flags.slice_infer:
        trainer.evaluate_slice(slice_size=flags.slice_size, overlap_ratio=flags.overlap_ratio,
                               combine_method=flags.combine_method,
                               match_threshold=flags.match_threshold,
                               match_metric=flags.match_metric)
    else:
        trainer.evaluate()
    return 0


@_one_line_errors
def export_main(argv):
    """``prune-export``: ppdet's ``tools/export_model.py``; the zeros are kept.

    Returns:
        0 on success, 2 for a bad flag or missing weights.
    """
    paddle.set_device('cpu')   # as ppdet's export_model.py
    flags = parse_flags('export', argv)
    cfg, spec = load_ppdet_config(flags.config, flags.opt, flags.slim_config, None, 'export')
    _check_required_keys(cfg, flags.config)
    check_flags('export', flags, cfg, PruneTrainer)
    tracker = cfg.get('architecture') in TRACKERS
    if not tracker:
        _check_weights(cfg.get('weights'), 'weights')
    check_config(cfg)
    cfg.setdefault('use_gpu', False)
    prefix = (os.path.join(flags.output_dir, 'inference') if flags.for_fd else os.path.join(
        flags.output_dir, os.path.splitext(os.path.basename(cfg.filename))[0], 'model'))
    onnx_export.check_target(prefix)   # --format onnx: refuse an existing model.onnx
    trainer = PruneTrainer(cfg, mode='test', prune_spec=spec)
    if tracker:
        trainer.load_weights_sde(cfg.det_weights, cfg.reid_weights)
    else:
        trainer.load_weights(cfg.weights)
    extra = {'for_fd': True} if flags.for_fd else {}
    trainer.export(flags.output_dir, **extra)
    onnx_export.convert_requested(prefix, model=trainer.model)
    name = os.path.splitext(os.path.split(cfg.filename)[-1])[0]
    if flags.export_serving_model:
        from paddle_serving_client.io import inference_model_to_serving
        folder = os.path.join(flags.output_dir, name)
        inference_model_to_serving(dirname=folder,
                                   serving_server=os.path.join(folder, 'serving_server'),
                                   serving_client=os.path.join(folder, 'serving_client'),
                                   model_filename='model.pdmodel',
                                   params_filename='model.pdiparams')
    logger.info(f"prune_plugin: exported to {os.path.join(flags.output_dir, name)}")
    return 0


__all__ = ['train_main', 'eval_main', 'export_main', 'PruneTrainer', 'PruneConfigError']
