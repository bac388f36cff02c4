"""The command lines of PaddleSeg's ``tools/train.py``, ``tools/val.py`` and ``tools/export.py``.

Every flag of release/2.8 and release/2.9, with paddleseg's names, defaults and types, so a
command written for a clone runs unchanged as ``prune-train`` / ``prune-eval`` /
``prune-export``. ``-c`` and ``-o`` are accepted as short forms of ``--config`` and ``--opts``;
``prune-eval`` also takes ``--precision`` / ``--amp_level`` and ``prune-export`` ``--opts``
(paddleseg's ``evaluate`` and ``Config`` take them; its tools do not expose them).

Errors are one line (exit 2): an unknown flag or bad value, and a flag this paddleseg cannot
honour (``--use_multilabel`` before 2.9, ``--data_format NHWC`` on a model other than
DeepLabV3P, an ``--input_shape`` that is not N C H W).
"""
import argparse

from .compat import evaluate_takes
from .config import PaddleSegInputError

DEVICES = ['cpu', 'gpu', 'xpu', 'npu', 'mlu']

TRAIN_EXAMPLES = """examples (at the root of a PaddleSeg clone, or with paddleseg installed):
  prune-train --config contrib/PP-HumanSeg/configs/human_pp_humansegv1_lite.yml --do_eval \\
      --save_interval 500 --save_dir output/humanseg_sparse
  prune-train --config CONFIG --resume_model output/humanseg_sparse/iter_500
  python -m paddle.distributed.launch --nproc_per_node 2 -m prune_plugin train --config CONFIG
"""


class SegFlagError(PaddleSegInputError):
    """A command-line flag the plugin cannot take or honour (one line, exit 2)."""


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        raise SegFlagError(f"{self.prog}: {message}")


def _parser(prog, description, epilog=None):
    return _OneLineParser(prog=prog, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _config_and_opts(parser):
    parser.add_argument('-c', '--config', required=True, help="the PaddleSeg YAML config")
    parser.add_argument('-o', '--opts', nargs='+', default=None, metavar='KEY=VALUE',
                        help="update config keys, e.g. iters=100 UnstructuredPrune.ratio=0.5")


def _data_format(parser):
    parser.add_argument('--data_format', default='NCHW', type=str,
                        help="'NCHW' or 'NHWC' (NHWC: DeepLabV3P only, as in paddleseg)")


def _multilabel(parser):
    parser.add_argument('--use_multilabel', action='store_true', default=False,
                        help="multilabel evaluation (paddleseg >= 2.9)")


def train_parser():
    """``tools/train.py``'s options (2.8 and 2.9)."""
    parser = _parser('prune-train', "Train a PaddleSeg model with paddleseg.core.train; a "
                     "'slim: UnstructuredPrune' block in the config makes it sparse.",
                     TRAIN_EXAMPLES)
    _config_and_opts(parser)
    parser.add_argument('--device', default='gpu', choices=DEVICES, type=str)
    parser.add_argument('--save_dir', default='./output', type=str)
    parser.add_argument('--num_workers', default=0, type=int)
    parser.add_argument('--do_eval', action='store_true', help="evaluate at each save")
    parser.add_argument('--use_vdl', action='store_true')
    parser.add_argument('--use_ema', action='store_true', help="EMA weights (sparse too)")
    parser.add_argument('--resume_model', type=str, help="a checkpoint folder <save_dir>/iter_N")
    parser.add_argument('--iters', type=int)
    parser.add_argument('--batch_size', type=int, help="per process")
    parser.add_argument('--learning_rate', type=float)
    parser.add_argument('--save_interval', default=1000, type=int)
    parser.add_argument('--log_iters', default=10, type=int)
    parser.add_argument('--keep_checkpoint_max', default=5, type=int)
    parser.add_argument('--seed', default=None, type=int)
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'fp16'], type=str)
    parser.add_argument('--amp_level', default='O1', choices=['O1', 'O2'], type=str)
    parser.add_argument('--profiler_options', type=str)
    _data_format(parser)
    parser.add_argument('--repeats', default=1, type=int,
                        help="repeat the training samples this many times per epoch")
    _multilabel(parser)
    parser.add_argument('--to_static_training', action='store_true', default=None)
    return parser


def eval_parser():
    """``tools/val.py``'s options (2.8 and 2.9), plus ``--precision`` / ``--amp_level``."""
    parser = _parser('prune-eval', "Evaluate a PaddleSeg checkpoint (mIoU) and the sparsity "
                     "of the weights the config's prune block selects.")
    _config_and_opts(parser)
    parser.add_argument('--model_path', type=str, help="a model.pdparams file")
    parser.add_argument('--num_workers', default=0, type=int)
    parser.add_argument('--device', default='gpu', choices=DEVICES, type=str)
    parser.add_argument('--aug_eval', action='store_true')
    parser.add_argument('--scales', nargs='+', type=float, default=1.0)
    parser.add_argument('--flip_horizontal', action='store_true')
    parser.add_argument('--flip_vertical', action='store_true')
    parser.add_argument('--is_slide', action='store_true')
    parser.add_argument('--crop_size', nargs=2, type=int)
    parser.add_argument('--stride', nargs=2, type=int)
    _data_format(parser)
    # paddleseg's type=bool: any non-empty value is True; its val.py then ignores it
    parser.add_argument('--auc_roc', type=bool, default=False)
    _multilabel(parser)
    parser.add_argument('--precision', default='fp32', choices=['fp32', 'fp16'])
    parser.add_argument('--amp_level', default='O1', choices=['O1', 'O2'])
    return parser


def export_parser():
    """``tools/export.py``'s options (2.8 and 2.9), plus ``--opts``."""
    parser = _parser('prune-export', "Export a (sparse) PaddleSeg inference model; the pruned "
                     "weights stay exact zeros.")
    _config_and_opts(parser)
    parser.add_argument('--model_path', type=str, help="a model.pdparams file")
    parser.add_argument('--save_dir', default='./output/inference_model', type=str)
    parser.add_argument('--input_shape', nargs='+', type=int, default=None,
                        help="fixed input shape, e.g. --input_shape 1 3 192 192")
    parser.add_argument('--output_op', choices=['argmax', 'softmax', 'none'], default='argmax')
    parser.add_argument('--for_fd', action='store_true',
                        help="FastDeploy names: inference.* and inference.yml")
    return parser


def check_multilabel(args):
    """``--use_multilabel`` needs a paddleseg whose ``evaluate`` takes it (2.9)."""
    if getattr(args, 'use_multilabel', False) and not evaluate_takes('use_multilabel'):
        import paddleseg
        raise SegFlagError(f"--use_multilabel needs paddleseg >= 2.9 (evaluate(..., "
                           f"use_multilabel)); the paddleseg running is {paddleseg.__version__} "
                           f"from {paddleseg.__file__}")


def apply_data_format(cfg, data_format):
    """``--data_format NHWC`` as paddleseg's tools do it: DeepLabV3P only, set on the model,
    its backbone and every loss; anything else than NHWC leaves the config as it is."""
    if data_format != 'NHWC':
        return
    model_type = cfg.dic.get('model', {}).get('type')
    if model_type != 'DeepLabV3P':
        raise SegFlagError(f"--data_format NHWC: paddleseg supports it for DeepLabV3P only, the "
                           f"config's model is {model_type}")
    cfg.dic['model']['data_format'] = data_format
    cfg.dic['model']['backbone']['data_format'] = data_format
    for loss in cfg.dic['loss']['types']:
        loss['data_format'] = data_format


def check_input_shape(input_shape):
    """``--input_shape`` is N C H W (paddleseg would fail later inside ``jit.save``)."""
    if input_shape is not None and len(input_shape) != 4:
        raise SegFlagError(f"--input_shape {' '.join(map(str, input_shape))}: expected 4 values "
                           "N C H W, e.g. --input_shape 1 3 192 192")
