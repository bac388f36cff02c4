"""The flags of PaddleDetection's own ``tools/train.py``, ``tools/eval.py``, ``tools/export_model.py``.

``prune-train`` / ``prune-eval`` / ``prune-export`` take every flag those scripts take in ppdet
release/2.6 and develop, with ppdet's meaning: the flags are merged into the config the way
ppdet's ``merge_args(cfg, FLAGS)`` does (export merges none), then ``-o`` wins. Two differences,
both fixes:

- ppdet declares ``--use_vdl``, ``--use_wandb``, ``--enable_ce`` and ``--export_serving_model``
  with ``type=bool``, so ``--use_vdl False`` turns VisualDL ON. Here the value is read as a
  boolean (``true/false/1/0/yes/no``) and may be left out: ``--use_vdl`` = ``--use_vdl True``.
- ``-o a.b.c=1 a.b.d=2`` keeps both keys (ppdet's parser keeps only the last).

Plus ``--seed N`` (paddle, numpy and random seeds). Any parsing problem is a :class:`FlagError`
(one line). A flag the run could not honour is refused by :func:`check_flags` before anything
is built.
"""
import argparse
import importlib.util
import inspect

import yaml
from ppdet.utils.cli import ArgsParser

TRUE_WORDS = ('true', 't', 'yes', 'y', '1', 'on')
FALSE_WORDS = ('false', 'f', 'no', 'n', '0', 'off')
NOT_MERGED = ('config', 'opt', 'slim_config', 'seed')   # ppdet's exclude_args + our --seed

EPILOG = {
    'train': """examples (at the root of a PaddleDetection clone):
  prune-train -c configs/yolov3/yolov3_mobilenet_v1_270e_voc.yml --eval
  prune-train -c configs/picodet/legacy_model/pruner/picodet_m_320_coco_pruner.yml \\
      --slim_config configs/slim/prune/picodet_m_unstructured_prune_75.yml
  prune-train -c CONFIG -r output/CONFIG_NAME/9      # resume: GMP continues where it stopped
""",
    'eval': """examples:
  prune-eval -c configs/yolov3/yolov3_mobilenet_v1_270e_voc.yml -o weights=output/x/model_final
""",
    'export': """examples:
  prune-export -c configs/yolov3/yolov3_mobilenet_v1_270e_voc.yml --output_dir inference \\
      -o weights=output/x/model_final
""",
}


class FlagError(ValueError):
    """A bad or unsupported command-line flag (one line, exit 2)."""


def str_to_bool(value):
    """Read ``true``/``false`` (and 1/0, yes/no, on/off) as a bool.

    Raises:
        argparse.ArgumentTypeError: any other word.
    """
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


class PpdetFlagParser(ArgsParser):
    """ppdet's ``ArgsParser`` (``-c``, ``-o``) that keeps nested ``-o`` keys and fails in one line."""

    def __init__(self, prog):
        super().__init__()
        self.prog = prog

    def error(self, message):
        raise FlagError(f"{message} (see {self.prog} -c CONFIG -h for the flags)")

    def _parse_opt(self, opts):
        config = {}
        for option in opts or []:
            if '=' not in option:
                raise FlagError(f"-o {option}: expected key=value")
            key, value = option.strip().split('=', 1)
            *parents, leaf = key.split('.')
            node = config
            for parent in parents:
                node = node.setdefault(parent, {})
                if not isinstance(node, dict):
                    raise FlagError(f"-o {option}: {parent} is set to a value and a mapping")
            try:
                node[leaf] = yaml.load(value, Loader=yaml.SafeLoader)
            except yaml.YAMLError:
                raise FlagError(f"-o {option}: the value is not valid YAML") from None
        return config


def _bool_flag(parser, name, help_text):
    parser.add_argument(name, nargs='?', const=True, default=False, type=str_to_bool,
                        metavar='{true,false}', help=help_text)


def _train_flags(parser):
    parser.add_argument('--eval', action='store_true', default=False,
                        help="evaluate at each snapshot (and save best_model)")
    parser.add_argument('-r', '--resume', default=None,
                        help="checkpoint to resume from; the GMP schedule continues")
    _bool_flag(parser, '--enable_ce', "seed everything with 0 (ppdet's continuous evaluation)")
    parser.add_argument('--amp', action='store_true', default=False,
                        help="automatic mixed precision")
    parser.add_argument('--fleet', action='store_true', default=False, help="train with Fleet")
    _bool_flag(parser, '--use_vdl', "log to VisualDL (sparsity too)")
    parser.add_argument('--vdl_log_dir', type=str, default='vdl_log_dir/scalar',
                        help="VisualDL folder")
    _bool_flag(parser, '--use_wandb', "log to Weights & Biases (needs wandb)")
    parser.add_argument('--save_prediction_only', action='store_true', default=False,
                        help="save the evaluation results only")
    parser.add_argument('--profiler_options', type=str, default=None,
                        help="ppdet's profiler: \"key1=value1;key2=value2\"")
    parser.add_argument('--save_proposals', action='store_true', default=False,
                        help="save the train proposals (SNIPER datasets)")
    parser.add_argument('--proposals_path', type=str, default='sniper/proposals.json',
                        help="where --save_proposals writes")
    parser.add_argument('--to_static', action='store_true', default=False,
                        help="train the model converted to a static graph (dy2st)")
    parser.add_argument('--seed', type=int, default=None,
                        help="prune_plugin: fix the paddle, numpy and random seeds")


def _eval_flags(parser):
    parser.add_argument('--output_eval', default=None, type=str,
                        help="folder of the evaluation results")
    parser.add_argument('--json_eval', action='store_true', default=False,
                        help="evaluate the bbox.json / mask.json already in --output_eval")
    parser.add_argument('--bias', action='store_true', help="add 1 to box widths and heights")
    parser.add_argument('--classwise', action='store_true', help="per-category AP")
    parser.add_argument('--save_prediction_only', action='store_true', default=False,
                        help="save the evaluation results only")
    parser.add_argument('--amp', action='store_true', default=False,
                        help="automatic mixed precision")
    parser.add_argument('--slice_infer', action='store_true',
                        help="slice images and merge the results (small objects)")
    parser.add_argument('--slice_size', nargs='+', type=int, default=[640, 640])
    parser.add_argument('--overlap_ratio', nargs='+', type=float, default=[0.25, 0.25])
    parser.add_argument('--combine_method', type=str, default='nms',
                        help="nms, nmm or concat")
    parser.add_argument('--match_threshold', type=float, default=0.6)
    parser.add_argument('--match_metric', type=str, default='ios', help="iou or ios")


def _export_flags(parser):
    parser.add_argument('--output_dir', type=str, default='output_inference',
                        help="folder of the exported model")
    _bool_flag(parser, '--export_serving_model', "also export a Paddle Serving model")
    parser.add_argument('--for_fd', action='store_true',
                        help="export for FastDeploy (ppdet develop)")


_COMMAND_FLAGS = {'train': _train_flags, 'eval': _eval_flags, 'export': _export_flags}
_PROGS = {'train': 'prune-train', 'eval': 'prune-eval', 'export': 'prune-export'}


def build_parser(command):
    """The parser of ``command`` (``'train'``, ``'eval'`` or ``'export'``)."""
    parser = PpdetFlagParser(_PROGS[command])
    parser.epilog = EPILOG[command]
    parser.add_argument('--slim_config', default=None, type=str,
                        help="slim YAML merged over the config (ppdet's UnstructuredPruner "
                             "or prune_plugin's UnstructuredPrune)")
    _COMMAND_FLAGS[command](parser)
    return parser


def parse_flags(command, argv):
    """Parse ``argv`` as ppdet's script of ``command`` would.

    Raises:
        FlagError: an unknown flag, a missing or bad value.

    Example:
        >>> parse_flags('train', ['-c', 'x.yml', '--use_vdl=false']).use_vdl
        False
    """
    return build_parser(command).parse_args(list(argv))


def merge_flags(cfg, flags):
    """ppdet's ``merge_args(cfg, FLAGS)``: every flag but config/opt/slim_config into ``cfg``."""
    for key, value in vars(flags).items():
        if key not in NOT_MERGED:
            cfg[key] = value
    return cfg


def _module_missing(name):
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


def check_flags(command, flags, cfg, trainer_class):
    """Refuse, before anything is built, a flag this run could not honour.

    Args:
        command: ``'train'``, ``'eval'`` or ``'export'``.
        flags: The parsed flags.
        cfg: The loaded ppdet config (flags merged).
        trainer_class: The ``ppdet.engine.Trainer`` that will run (the clone's or the wheel's).

    Raises:
        FlagError: naming the flag and what it needs.
    """
    if command == 'train':
        if cfg.get('use_wandb') and _module_missing('wandb'):
            raise FlagError("--use_wandb needs the wandb package (pip install wandb)")
        if flags.profiler_options:
            import paddle
            from ppdet.utils import profiler
            if not hasattr(profiler, 'profiler') and not hasattr(paddle.utils, 'profiler'):
                # ppdet 2.6's profiler calls paddle.utils.profiler (gone in Paddle 3);
                # develop's uses paddle.profiler
                raise FlagError(f"--profiler_options: this ppdet's profiler calls "
                                f"paddle.utils.profiler, which Paddle {paddle.__version__} "
                                "does not have (ppdet develop's profiler works)")
            try:
                profiler.ProfilerOptions(flags.profiler_options)
            except (ValueError, AssertionError):
                raise FlagError(f"--profiler_options {flags.profiler_options!r}: expected "
                                "\"key1=value1;key2=value2\" with keys batch_range, state, "
                                "sorted_key, tracer_option, profile_path, exit_on_finished") \
                    from None
        dataset = cfg.get('TrainDataset')
        if cfg.get('save_proposals') and not hasattr(dataset, 'init_anno_cropper'):
            raise FlagError(f"--save_proposals needs a SNIPER dataset (SniperCOCODataSet); "
                            f"TrainDataset is {type(dataset).__name__}")
    elif command == 'eval':
        if flags.slice_infer and not hasattr(trainer_class, 'evaluate_slice'):
            raise FlagError("--slice_infer needs a ppdet whose Trainer has evaluate_slice")
        if flags.json_eval and not flags.output_eval:
            raise FlagError("--json_eval needs --output_eval (the folder with bbox.json)")
    else:
        if flags.export_serving_model and _module_missing('paddle_serving_client'):
            raise FlagError("--export_serving_model needs the paddle_serving_client package")
        if flags.for_fd and 'for_fd' not in inspect.signature(trainer_class.export).parameters:
            raise FlagError("--for_fd needs ppdet develop (this ppdet's Trainer.export has no "
                            "for_fd)")
