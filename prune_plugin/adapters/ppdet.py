"""PaddleDetection adapter: ``tools/train.py``, ``tools/eval.py``, ``tools/export_model.py``.

The commands take ppdet's usual flags (``-c``, ``-o key=value``, ``--eval``, ``-r``,
``--fleet``, ``--amp``, ``--use_vdl``) and run ppdet's own ``Trainer``; when the config has
``slim: UnstructuredPrune`` (or ppdet's built-in ``slim: UnstructuredPruner``) a
:class:`PruneCallback` keeps the model sparse. Nothing in ppdet is edited::

    python tools/train.py -c configs/ppdet/picodet_m_prune_demo.yml --eval
    python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py \
        -c configs/ppdet/yolov3_prune_demo.yml
    python tools/eval.py -c configs/ppdet/picodet_m_prune_demo.yml
    python tools/export_model.py -c configs/ppdet/picodet_m_prune_demo.yml --output_dir out
"""
import os

import paddle
import yaml
from ppdet.engine import Trainer, init_fleet_env, init_parallel_env, set_random_seed
from ppdet.utils.check import check_config
from ppdet.utils.cli import ArgsParser
from ppdet.utils.logger import setup_logger

from ..core.stats import total_sparse, total_sparse_conv1x1
from .ppdet_callback import PruneCallback
from .ppdet_compat import full_graph_to_static
from .ppdet_config import load_ppdet_config

logger = setup_logger('prune_plugin.ppdet')

EXAMPLES = """examples:
  python tools/train.py -c configs/ppdet/yolov3_prune_demo.yml --eval
  python tools/train.py -c configs/ppdet/picodet_m_prune_demo.yml -r output/picodet_m_prune_demo/3
  python tools/train.py -c configs/ppdet/picodet_m_prune_demo.yml -o epoch=2 \
      UnstructuredPrune.ratio=0.5
"""


class _ArgsParser(ArgsParser):
    """ppdet's parser, but ``-o a.b.c=1 a.b.d=2`` keeps both keys (ppdet's keeps the last)."""

    def _parse_opt(self, opts):
        config = {}
        for option in opts or []:
            key, value = option.strip().split('=', 1)
            *parents, leaf = key.split('.')
            node = config
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = yaml.load(value, Loader=yaml.Loader)
        return config


def _parser(command):
    parser = _ArgsParser()
    parser.epilog = EXAMPLES
    parser.add_argument('--slim_config', default=None,
                        help="separate YAML with the slim block (as ppdet's --slim_config)")
    if command == 'train':
        parser.add_argument('--eval', action='store_true', help="evaluate at each snapshot")
        parser.add_argument('-r', '--resume', default=None, help="checkpoint to resume from")
        parser.add_argument('--fleet', action='store_true', help="train with Fleet")
        parser.add_argument('--amp', action='store_true', help="automatic mixed precision")
        parser.add_argument('--use_vdl', action='store_true', help="log to VisualDL")
        parser.add_argument('--vdl_log_dir', default=None,
                            help="VisualDL folder (default: the config's vdl_log_dir)")
        parser.add_argument('--seed', type=int, default=None, help="fix paddle/numpy/random seeds")
    elif command == 'eval':
        parser.add_argument('--output_eval', default=None)
        parser.add_argument('--classwise', action='store_true')
        parser.add_argument('--save_prediction_only', action='store_true')
    else:
        parser.add_argument('--output_dir', default='output_inference')
    return parser


def _prepare(command, argv):
    args = _parser(command).parse_args(argv)
    cfg, spec = load_ppdet_config(args.config, args.opt, args.slim_config)
    for key in ('fleet', 'amp', 'use_vdl', 'vdl_log_dir', 'classwise', 'output_eval',
                'save_prediction_only'):
        if getattr(args, key, None):
            cfg[key] = getattr(args, key)
    paddle.set_device('gpu' if cfg.get('use_gpu') and paddle.is_compiled_with_cuda() else 'cpu')
    check_config(cfg)
    return args, cfg, spec


def train_main(argv):
    """``tools/train.py``: train with ppdet's Trainer, sparse when the config asks for it.

    Args:
        argv: CLI arguments, e.g. ``['-c', 'configs/ppdet/yolov3_prune_demo.yml', '--eval']``.

    Returns:
        0 on success.

    Raises:
        PruneConfigError: a bad pruning block (raised before the model is built).
    """
    args, cfg, spec = _prepare('train', argv)
    if cfg.get('fleet') and int(os.environ.get('PADDLE_TRAINERS_NUM', '1')) < 2:
        # Paddle 3.3's fleet.distributed_model wraps a single process in NoPipelineParallel,
        # which only accepts a PipelineLayer: one process trains without Fleet.
        logger.warning("--fleet with a single process: training without Fleet")
        cfg['fleet'] = False
    if cfg.get('fleet'):
        init_fleet_env(cfg.get('find_unused_parameters', False))
    else:
        init_parallel_env()
    if args.seed is not None:
        set_random_seed(args.seed)
    trainer = Trainer(cfg, mode='train')
    callback = None
    if spec is not None:
        steps_per_epoch = len(trainer.loader)
        pruner = spec.build(trainer.model, steps_per_epoch=steps_per_epoch,
                            optimizer=trainer.optimizer)
        callback = PruneCallback.attach(trainer, pruner)
        logger.info(f"prune_plugin: {spec.name} on {len(pruner.params)} parameters "
                    f"({steps_per_epoch} steps/epoch), mode {spec.mode}")
    if args.resume is not None:
        trainer.resume_weights(args.resume)
        if callback is not None:
            callback.resume(args.resume, trainer.start_epoch, len(trainer.loader))
    elif cfg.get('pretrain_weights'):
        trainer.load_weights(cfg.pretrain_weights)
    trainer.train(args.eval)
    return 0


def _load_for_inference(trainer, cfg):
    trainer.load_weights(cfg.weights)
    model = trainer.model
    logger.info(f"prune_plugin: {cfg.weights}: total sparsity {total_sparse(model):.2%}, "
                f"conv1x1 {total_sparse_conv1x1(model):.2%}")


def eval_main(argv):
    """``tools/eval.py``: evaluate ``weights`` (``-o weights=...``) with ppdet's metrics.

    Returns:
        0 on success.
    """
    _args, cfg, _spec = _prepare('eval', argv)
    init_parallel_env()
    trainer = Trainer(cfg, mode='eval')
    _load_for_inference(trainer, cfg)
    trainer.evaluate()
    return 0


def export_main(argv):
    """``tools/export_model.py``: export ``weights`` as a (sparse) static inference model.

    Returns:
        0 on success.
    """
    args, cfg, _spec = _prepare('export', argv)
    trainer = Trainer(cfg, mode='test')
    _load_for_inference(trainer, cfg)
    with full_graph_to_static():
        trainer.export(args.output_dir)
    logger.info(f"prune_plugin: exported to {os.path.join(args.output_dir, cfg.filename)}")
    return 0


__all__ = ['train_main', 'eval_main', 'export_main']
