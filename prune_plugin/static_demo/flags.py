"""The demo's command lines (the reference's flags) and their checks.

Every check runs before the demo reads data, builds a program or writes a file: a bad flag or
value is one line on stderr and exit code 2, and nothing already saved is touched.
"""
import argparse
import math
import os

from .data import DATASETS, check_data_files

COMMANDS = ('train', 'evaluate')
MODELS = ('SmallCNN', 'MobileNet')
LR_STRATEGIES = ('piecewise_decay', 'cosine_decay')


class DemoInputError(ValueError):
    """A bad command line, flag value or missing input file (exit 2, one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise DemoInputError(message)


def _common(parser):
    parser.add_argument('--data', default='digits', help=f"one of {list(DATASETS)}")
    parser.add_argument('--model', default=None,
                        help=f"one of {list(MODELS)} (default: SmallCNN, MobileNet on imagenet)")
    parser.add_argument('--batch_size', type=int, default=64)
    parser.add_argument('--batch_size_for_validation', type=int, default=64)
    parser.add_argument('--data_dir', default=None,
                        help="mnist: folder of the four MNIST .gz files (default: Paddle's "
                             "download cache); imagenet: folder of train_list.txt / "
                             "val_list.txt and the images")
    parser.add_argument('--log_period', type=int, default=100)


def build_parsers():
    """``{command: ArgumentParser}`` for ``train`` and ``evaluate``."""
    train = _Parser(prog='python -m prune_plugin.static_demo train',
                    description="Train with unstructured pruning on a static program.")
    _common(train)
    add = train.add_argument
    add('--pretrained_model', default=None, help="a paddle.static.save prefix or its folder")
    add('--checkpoint', default=None, help="the epoch folder to resume from (with --last_epoch)")
    add('--last_epoch', type=int, default=-1, help="the last epoch the checkpoint finished")
    add('--lr', type=float, default=0.1)
    add('--lr_strategy', default='piecewise_decay', help=f"one of {list(LR_STRATEGIES)}")
    add('--l2_decay', type=float, default=3e-5)
    add('--momentum_rate', type=float, default=0.9)
    add('--pruning_strategy', default='base', help="base or gmp")
    add('--pruning_mode', default='ratio', help="ratio or threshold")
    add('--threshold', type=float, default=0.01)
    add('--ratio', type=float, default=0.55)
    add('--num_epochs', type=int, default=120)
    add('--step_epochs', type=int, nargs='+', default=[30, 60, 90])
    add('--test_period', type=int, default=5)
    add('--model_path', default='./models')
    add('--model_period', type=int, default=10)
    add('--stable_epochs', type=int, default=0)
    add('--pruning_epochs', type=int, default=60)
    add('--tunning_epochs', type=int, default=60)
    add('--pruning_steps', type=int, default=120)
    add('--initial_ratio', type=float, default=0.15)
    add('--prune_params_type', default=None, help="None or conv1x1_only")
    add('--local_sparsity', action='store_true')
    add('--is_distributed', action='store_true',
        help="data parallel over the ranks of python -m paddle.distributed.launch")
    add('--seed', type=int, default=0)
    evaluate = _Parser(prog='python -m prune_plugin.static_demo evaluate',
                       description="Evaluate a pruned model saved by the train command.")
    _common(evaluate)
    evaluate.add_argument('--pruned_model', required=True,
                          help="an epoch folder saved by train (or a paddle.static.save prefix)")
    return {'train': train, 'evaluate': evaluate}


def model_prefix(path):
    """The ``paddle.static.save`` prefix of ``path`` (a folder holding ``model.pdparams``, or a
    prefix), or None when no ``.pdparams`` is there."""
    for prefix in (os.path.join(path, 'model'), path):
        if os.path.isfile(prefix + '.pdparams'):
            return prefix
    return None


def _positive(args, *names):
    for name in names:
        if getattr(args, name) <= 0:
            raise DemoInputError(f"--{name}={getattr(args, name)} must be a positive int")


def _finite(value):
    return isinstance(value, float) and math.isfinite(value)


def _check_common(args):
    if args.data not in DATASETS:
        raise DemoInputError(f"--data={args.data!r} must be one of {list(DATASETS)}")
    if args.model is None:
        args.model = 'MobileNet' if args.data == 'imagenet' else 'SmallCNN'
    if args.model not in MODELS:
        raise DemoInputError(f"--model={args.model!r} must be one of {list(MODELS)}")
    _positive(args, 'batch_size', 'batch_size_for_validation', 'log_period')
    check_data_files(args.data, args.data_dir)


def _check_train(args):
    _positive(args, 'num_epochs', 'test_period', 'model_period', 'pruning_steps')
    if args.pruning_mode not in ('ratio', 'threshold'):
        raise DemoInputError(f"--pruning_mode={args.pruning_mode!r} must be ratio or threshold")
    if args.pruning_strategy not in ('base', 'gmp'):
        raise DemoInputError(f"--pruning_strategy={args.pruning_strategy!r} must be base or gmp")
    if args.pruning_strategy == 'gmp' and args.pruning_mode != 'ratio':
        raise DemoInputError("--pruning_strategy=gmp needs --pruning_mode=ratio")
    if args.prune_params_type in ('None', ''):
        args.prune_params_type = None
    if args.prune_params_type not in (None, 'conv1x1_only'):
        raise DemoInputError(f"--prune_params_type={args.prune_params_type!r} must be None or "
                             "conv1x1_only")
    if not _finite(args.ratio) or not 0.0 <= args.ratio < 1.0:
        raise DemoInputError(f"--ratio={args.ratio} must be in [0, 1)")
    if not _finite(args.threshold) or args.threshold < 0:
        raise DemoInputError(f"--threshold={args.threshold} must be a float >= 0")
    if args.pruning_strategy == 'gmp' and (not _finite(args.initial_ratio)
                                           or not 0.0 <= args.initial_ratio <= args.ratio):
        raise DemoInputError(f"--initial_ratio={args.initial_ratio} must be in [0, --ratio] "
                             "with gmp")
    for name in ('lr', 'l2_decay', 'momentum_rate'):
        value = getattr(args, name)
        if not _finite(value) or value < 0:
            raise DemoInputError(f"--{name}={value} must be a float >= 0")
    if args.lr_strategy not in LR_STRATEGIES:
        raise DemoInputError(f"--lr_strategy={args.lr_strategy!r} must be one of "
                             f"{list(LR_STRATEGIES)}")
    for name in ('stable_epochs', 'pruning_epochs', 'tunning_epochs'):
        if getattr(args, name) < 0:
            raise DemoInputError(f"--{name}={getattr(args, name)} must be >= 0")
    if args.pruning_strategy == 'gmp' and args.pruning_epochs <= 0:
        raise DemoInputError(f"--pruning_epochs={args.pruning_epochs} must be positive with gmp")
    if not -1 <= args.last_epoch < args.num_epochs - 1:
        raise DemoInputError(f"--last_epoch={args.last_epoch} must be in [-1, --num_epochs - 2="
                             f"{args.num_epochs - 2}] (-1: a fresh start)")
    if args.last_epoch >= 0:
        if args.checkpoint is None:
            raise DemoInputError(f"--last_epoch={args.last_epoch} needs --checkpoint (the folder "
                                 f"train saved after epoch {args.last_epoch})")
        if model_prefix(args.checkpoint) is None:
            raise DemoInputError(f"--checkpoint={args.checkpoint!r} holds no model.pdparams")
        if not os.path.isfile(os.path.join(args.checkpoint, 'pruner.json')):
            raise DemoInputError(f"--checkpoint={args.checkpoint!r} holds no pruner.json")
    elif args.checkpoint is not None:
        raise DemoInputError("--checkpoint needs --last_epoch (the epoch it finished)")
    if args.pretrained_model is not None and model_prefix(args.pretrained_model) is None:
        raise DemoInputError(f"--pretrained_model={args.pretrained_model!r} holds no .pdparams")
    if os.path.exists(args.model_path) and not os.path.isdir(args.model_path):
        raise DemoInputError(f"--model_path={args.model_path!r} exists and is not a folder")


def _check_evaluate(args):
    if model_prefix(args.pruned_model) is None:
        raise DemoInputError(f"--pruned_model={args.pruned_model!r} holds no model.pdparams")


def parse(argv):
    """``(command, args)`` from ``argv``, every flag checked.

    Raises:
        DemoInputError: an unknown command or flag, a bad value or a missing file.
    """
    if not argv or argv[0] not in COMMANDS:
        raise DemoInputError(f"the first argument must be one of {list(COMMANDS)} "
                             f"(got {argv[0] if argv else 'nothing'!r})")
    command = argv[0]
    args = build_parsers()[command].parse_args(argv[1:])
    _check_common(args)
    (_check_train if command == 'train' else _check_evaluate)(args)
    return command, args
