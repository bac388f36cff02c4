"""The three demo suites of ``benchmarks.suites``: CLI arguments, budgets, outputs, metrics.

Each :class:`SuiteDef` knows how the suite's ``tools/train.py`` / ``tools/eval.py`` are called
(flags as in the README sections of each suite), where the final checkpoint lands
and how to read the metric from ``tools/eval.py``'s output. The full budget is each demo
config's own; the smoke budget is a few steps with a GMP schedule that still reaches the
configured ratio, so the checkpoint's zeros can be checked exactly.
"""
import os
import re
from dataclasses import dataclass

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class SuiteDef:
    """How to train, find and evaluate one demo config.

    Attributes:
        key: ``'ppseg'``, ``'ppcls'`` or ``'ppdet'``.
        title: Model and suite, for the table.
        config: The demo config, relative to the repository root.
        metric_name: Column header of the metric.
        metric_pattern: Regex whose group 1 is the metric in ``tools/eval.py``'s output.
        metric_scale: Factor to percent.
        length_key: Config key of the run length (iterations or epochs), kept in full runs.
        unit: ``'it'`` or ``'epochs'``.
        batch_key: Config key of the training batch size.
        dense_override: The ``-o`` item that trains the config dense.
        builtin: Also run ppdet's built-in pruner.
        mode: The demo's pruning mode (``'ratio'`` with GMP, or ``'threshold'``).
    """
    key: str
    title: str
    config: str
    metric_name: str
    metric_pattern: str
    metric_scale: float
    length_key: str
    unit: str
    batch_key: str
    dense_override: str
    builtin: bool = False
    mode: str = 'ratio'

    def runs(self, with_builtin=True):
        """The rows of this suite, in table order."""
        return ('dense', 'prune_plugin') + (('ppdet built-in',) if self.builtin and with_builtin
                                            else ())

    def budget_text(self, smoke):
        batch = config_value(self.config, self.batch_key)
        return f"{train_length(self, smoke)} {self.unit} x batch {batch}"

    def train_args(self, run, out_dir, smoke):
        """``tools/train.py`` arguments (also for the built-in launcher, which takes ppdet's)."""
        args, overrides = _TRAIN_ARGS[self.key](self, out_dir, smoke)
        if run == 'dense':
            overrides = [o for o in overrides if not o.startswith('UnstructuredPrune.')]
            overrides.append(self.dense_override)
        return args + (['-o'] + overrides if overrides else [])

    def checkpoint(self, out_dir):
        return _CHECKPOINTS[self.key](self, out_dir)

    def raw_weights(self, out_dir):
        """ppdet with EMA saves the EMA as .pdparams and the trained weights as .pdema."""
        if self.key != 'ppdet':
            return None
        return os.path.splitext(self.checkpoint(out_dir))[0] + '.pdema'

    def eval_args(self, checkpoint):
        prefix = os.path.splitext(checkpoint)[0]
        if self.key == 'ppseg':
            return ['-c', self.config, '--model_path', checkpoint]
        if self.key == 'ppcls':
            return ['-c', self.config, '-o', f"Global.pretrained_model={prefix}"]
        return ['-c', self.config, '-o', f"weights={prefix}"]


def metric_from_output(suite, text):
    """The last match of ``suite.metric_pattern`` in ``text``, in percent (None if absent)."""
    found = re.findall(suite.metric_pattern, text, flags=re.MULTILINE)
    return float(found[-1]) * suite.metric_scale if found else None


# ----- per suite: train arguments and checkpoint paths ------------------------------------------
class _IgnoreTagsLoader(yaml.SafeLoader):
    """ppdet configs carry ``!COCODataSet``-style tags; the keys read here have none."""


_IgnoreTagsLoader.add_multi_constructor('!', lambda loader, suffix, node: None)


def config_value(path, dotted_key):
    """``a.b.c`` of a suite YAML, following ``_base_`` / ``_BASE_`` when the file lacks it.

    Raises:
        KeyError: neither the file nor its bases have the key.
    """
    full_path = path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)
    with open(full_path) as handle:
        cfg = yaml.load(handle, Loader=_IgnoreTagsLoader) or {}
    node = cfg
    for part in dotted_key.split('.'):
        if not isinstance(node, dict) or part not in node:
            break
        node = node[part]
    else:
        return node
    bases = cfg.get('_base_') or cfg.get('_BASE_') or []
    for base in [bases] if isinstance(bases, str) else bases:
        try:
            return config_value(os.path.join(os.path.dirname(full_path), base), dotted_key)
        except KeyError:
            continue
    raise KeyError(f"{dotted_key} in {path}")


SMOKE_LENGTH = {'ppseg': 4, 'ppcls': 2, 'ppdet': 2, 'yolov3': 1}
# Smoke schedules reach the configured ratio within SMOKE_LENGTH, so zeros can be checked exactly.
PPSEG_SMOKE_GMP = ['UnstructuredPrune.gmp.stable_iterations=0',
                   'UnstructuredPrune.gmp.pruning_iterations=2',
                   'UnstructuredPrune.gmp.tunning_iterations=2',
                   'UnstructuredPrune.gmp.pruning_steps=2']
EPOCH_SMOKE_GMP = ['UnstructuredPrune.gmp.stable_epochs=0',
                   'UnstructuredPrune.gmp.pruning_epochs=1',
                   'UnstructuredPrune.gmp.tunning_epochs=1',
                   'UnstructuredPrune.gmp.pruning_steps=1']


def train_length(suite, smoke):
    """Iterations (ppseg) or epochs (ppcls, ppdet) of the run: the config's own when full."""
    if smoke:
        return SMOKE_LENGTH[suite.key]
    return int(config_value(suite.config, suite.length_key))


def _ppseg_args(suite, out_dir, smoke):
    iters = train_length(suite, smoke)
    args = ['-c', suite.config, '--iters', str(iters), '--save_interval', str(iters),
            '--save_dir', out_dir, '--seed', '1', '--log_iters', '100' if not smoke else '1']
    return args, list(PPSEG_SMOKE_GMP) if smoke else []


def _ppcls_args(suite, out_dir, smoke):
    epochs = train_length(suite, smoke)
    overrides = ['Global.compare_dense=False', 'Global.eval_during_train=False',
                 f"Global.output_dir={out_dir}", f"Global.epochs={epochs}",
                 f"Global.save_interval={epochs}"]
    return ['-c', suite.config], overrides + (list(EPOCH_SMOKE_GMP) if smoke else [])


def _ppdet_args(suite, out_dir, smoke):
    epochs = train_length(suite, smoke)
    overrides = [f"save_dir={out_dir}", f"epoch={epochs}"]
    smoke_gmp = list(EPOCH_SMOKE_GMP) if smoke and suite.mode == 'ratio' else []
    return ['-c', suite.config, '--seed', '0'], overrides + smoke_gmp


def _ppdet_checkpoint(suite, out_dir):
    return os.path.join(out_dir, os.path.splitext(os.path.basename(suite.config))[0],
                        'model_final.pdparams')


_TRAIN_ARGS = {'ppseg': _ppseg_args, 'ppcls': _ppcls_args, 'ppdet': _ppdet_args,
               'yolov3': _ppdet_args}
_CHECKPOINTS = {
    'ppseg': lambda s, d: os.path.join(d, f"iter_{_last_ppseg_iter(d)}", 'model.pdparams'),
    'ppcls': lambda s, d: os.path.join(d, config_value(s.config, 'Arch.name'), 'latest.pdparams'),
    'ppdet': _ppdet_checkpoint,
    'yolov3': _ppdet_checkpoint,
}


def _last_ppseg_iter(out_dir):
    iters = [int(n[5:]) for n in os.listdir(out_dir) if re.fullmatch(r'iter_\d+', n)]
    return max(iters) if iters else 0


SUITES = {
    'ppseg': SuiteDef(
        key='ppseg', title='PaddleSeg PP-HumanSeg-Lite',
        config='configs/ppseg/pphumanseg_lite_prune_demo.yml', metric_name='mIoU',
        metric_pattern=r'\[EVAL\] #Images: \d+ mIoU: ([0-9.]+)', metric_scale=100.0,
        length_key='iters', unit='it', batch_key='batch_size',
        dense_override='slim=None'),
    'ppcls': SuiteDef(
        key='ppcls', title='PaddleClas MobileNetV1 x0.5',
        config='configs/ppcls/mobilenetv1_prune_demo.yml', metric_name='top-1',
        metric_pattern=r'^eval\s+top1 ([0-9.]+)', metric_scale=100.0,
        length_key='Global.epochs', unit='epochs', batch_key='DataLoader.Train.sampler.batch_size',
        dense_override='slim=null'),
    'ppdet': SuiteDef(
        key='ppdet', title='PaddleDetection PicoDet-m',
        config='configs/ppdet/picodet_m_prune_demo.yml', metric_name='mAP(.5:.95)',
        metric_pattern=(r'Average Precision  \(AP\) @\[ IoU=0\.50:0\.95 \| area=   all \| '
                        r'maxDets=100 \] = ([-0-9.]+)'), metric_scale=100.0,
        length_key='epoch', unit='epochs', batch_key='TrainReader.batch_size',
        dense_override='slim=null', builtin=True),
    'yolov3': SuiteDef(
        key='yolov3', title='PaddleDetection YOLOv3-MobileNetV1 (threshold)',
        config='configs/ppdet/yolov3_prune_demo.yml', metric_name='VOC mAP(.5, 11pt)',
        metric_pattern=r'mAP\(0\.50, 11point\) = ([-0-9.]+)%', metric_scale=1.0,
        length_key='epoch', unit='epochs', batch_key='TrainReader.batch_size',
        dense_override='slim=null', mode='threshold'),
}
