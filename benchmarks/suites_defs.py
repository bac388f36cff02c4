"""The three demo suites of ``benchmarks/suites.py``: CLI arguments, budgets, outputs, metrics.

Each :class:`SuiteDef` knows how the suite's ``tools/train.py`` / ``tools/eval.py`` are called
(flags as in docs/ppseg.md, docs/ppdet.md, docs/ppcls.md), where the final checkpoint lands
and how to read the metric from ``tools/eval.py``'s output. The full budget is each demo
config's own; the smoke budget is a few steps with a GMP schedule that still reaches the
configured ratio, so the checkpoint's zeros can be checked exactly.
"""
import os
import re
from dataclasses import dataclass


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
        budgets: ``{'full'|'smoke': description of the training budget}``.
        dense_override: The ``-o`` item that trains the config dense.
        builtin: Also run ppdet's built-in pruner.
    """
    key: str
    title: str
    config: str
    metric_name: str
    metric_pattern: str
    metric_scale: float
    budgets: dict
    dense_override: str
    builtin: bool = False

    def runs(self, with_builtin=True):
        """The rows of this suite, in table order."""
        return ('dense', 'prune_plugin') + (('ppdet built-in',) if self.builtin and with_builtin
                                            else ())

    def budget_text(self, smoke):
        return self.budgets['smoke' if smoke else 'full']

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
PPSEG_ITERS = {'full': 1000, 'smoke': 4}
PPSEG_SMOKE_GMP = ['UnstructuredPrune.gmp.stable_iterations=0',
                   'UnstructuredPrune.gmp.pruning_iterations=2',
                   'UnstructuredPrune.gmp.tunning_iterations=2',
                   'UnstructuredPrune.gmp.pruning_steps=2']


def _ppseg_args(suite, out_dir, smoke):
    iters = PPSEG_ITERS['smoke' if smoke else 'full']
    args = ['-c', suite.config, '--iters', str(iters), '--save_interval', str(iters),
            '--save_dir', out_dir, '--seed', '1', '--log_iters', '100' if not smoke else '1']
    return args, list(PPSEG_SMOKE_GMP) if smoke else []


PPCLS_EPOCHS = {'full': 12, 'smoke': 2}
PPCLS_ARCH = 'MobileNetV1_x0_5'
PPCLS_SMOKE_GMP = ['UnstructuredPrune.gmp.pruning_epochs=1',
                   'UnstructuredPrune.gmp.tunning_epochs=1',
                   'UnstructuredPrune.gmp.pruning_steps=1']


def _ppcls_args(suite, out_dir, smoke):
    epochs = PPCLS_EPOCHS['smoke' if smoke else 'full']
    overrides = ['Global.compare_dense=False', 'Global.eval_during_train=False',
                 f"Global.output_dir={out_dir}", f"Global.epochs={epochs}",
                 f"Global.save_interval={epochs}"]
    return ['-c', suite.config], overrides + (list(PPCLS_SMOKE_GMP) if smoke else [])


PPDET_EPOCHS = {'full': 8, 'smoke': 2}
PPDET_SMOKE_GMP = ['UnstructuredPrune.gmp.pruning_epochs=1',
                   'UnstructuredPrune.gmp.tunning_epochs=1',
                   'UnstructuredPrune.gmp.pruning_steps=1']


def _ppdet_args(suite, out_dir, smoke):
    epochs = PPDET_EPOCHS['smoke' if smoke else 'full']
    overrides = [f"save_dir={out_dir}", f"epoch={epochs}"]
    return ['-c', suite.config, '--seed', '0'], overrides + (list(PPDET_SMOKE_GMP) if smoke
                                                             else [])


_TRAIN_ARGS = {'ppseg': _ppseg_args, 'ppcls': _ppcls_args, 'ppdet': _ppdet_args}
_CHECKPOINTS = {
    'ppseg': lambda s, d: os.path.join(d, f"iter_{_last_ppseg_iter(d)}", 'model.pdparams'),
    'ppcls': lambda s, d: os.path.join(d, PPCLS_ARCH, 'latest.pdparams'),
    'ppdet': lambda s, d: os.path.join(
        d, os.path.splitext(os.path.basename(s.config))[0], 'model_final.pdparams'),
}


def _last_ppseg_iter(out_dir):
    iters = [int(n[5:]) for n in os.listdir(out_dir) if re.fullmatch(r'iter_\d+', n)]
    return max(iters) if iters else 0


SUITES = {
    'ppseg': SuiteDef(
        key='ppseg', title='PaddleSeg PP-HumanSeg-Lite',
        config='configs/ppseg/pphumanseg_lite_prune_demo.yml', metric_name='mIoU',
        metric_pattern=r'\[EVAL\] #Images: \d+ mIoU: ([0-9.]+)', metric_scale=100.0,
        budgets={'full': '1000 it x batch 8', 'smoke': '4 it x batch 8'},
        dense_override='slim=None'),
    'ppcls': SuiteDef(
        key='ppcls', title='PaddleClas MobileNetV1 x0.5',
        config='configs/ppcls/mobilenetv1_prune_demo.yml', metric_name='top-1',
        metric_pattern=r'^eval\s+top1 ([0-9.]+)', metric_scale=100.0,
        budgets={'full': '12 epochs (20 it x batch 64)', 'smoke': '2 epochs (20 it x batch 64)'},
        dense_override='slim=null'),
    'ppdet': SuiteDef(
        key='ppdet', title='PaddleDetection PicoDet-m',
        config='configs/ppdet/picodet_m_prune_demo.yml', metric_name='mAP(.5:.95)',
        metric_pattern=(r'Average Precision  \(AP\) @\[ IoU=0\.50:0\.95 \| area=   all \| '
                        r'maxDets=100 \] = ([-0-9.]+)'), metric_scale=100.0,
        budgets={'full': '8 epochs (12 it x batch 4)', 'smoke': '2 epochs (12 it x batch 4)'},
        dense_override='slim=null', builtin=True),
}
