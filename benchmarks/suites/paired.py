"""PicoDet and PP-HumanSeg-Lite pruned from one dense parent per suite, paired over seeds.

The design of ``benchmarks/accuracy.py``, on two demo suites through their own ``tools/train.py``:
per suite one dense *parent* is trained from scratch (the demo config with its ``slim`` key
removed). Then, for each seed, every row is fine-tuned from the parent's saved weights (ppdet
``-o pretrain_weights=``, PaddleSeg ``-o model.pretrained=``; PaddleSeg's train has no
``--model_path``) with the same budget, learning-rate schedule and data order:

- ``dense``: the demo config with ``slim`` removed: the fair baseline;
- ``prune_plugin``: the demo's ``slim: UnstructuredPrune`` block (75% of the 1x1-conv weights,
  GMP, its schedule inside the fine-tune budget);
- ``ppdet built-in`` (PicoDet): ppdet's own ``UnstructuredPruner`` (PaddleSlim), run by
  ``ppdet_builtin.py`` as in ``python -m benchmarks.suites``.

Every run goes through ``provenance.py``, which records the SHA-256 of the weights each run
loaded and a digest of its batch order, and shifts the train sampler's shuffle by seed (the
samplers of both suites otherwise shuffle by epoch number only, the same order for any seed).
A row's cost is its *paired drop*: its metric minus the dense fine-tune's of the same seed, with a
95% Student-t interval over seeds (``accuracy_stats``); prune_plugin minus built-in likewise.

Usage::

    OMP_NUM_THREADS=1 python -m benchmarks.suites.paired \
        --json benchmarks/results/suites_paired.json   # full: writes results/suites_paired.md
    python -m benchmarks.suites.paired --smoke --suites ppseg --seeds 0 1 --out /tmp/p.md
    python -m benchmarks.suites.paired --render benchmarks/results/suites_paired.json
"""
import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

SUITES_DIR = os.path.dirname(os.path.abspath(__file__))
BENCH_DIR = os.path.dirname(SUITES_DIR)
sys.path.insert(0, BENCH_DIR)

from suites.__main__ import LAUNCHERS, PYTHON, REPO_ROOT, RESULTS_DIR  # noqa: E402
from suites.__main__ import _failure, _run_logged, add_run_arguments, code_version  # noqa: E402
from suites.__main__ import evaluate, parse_checked  # noqa: E402
from suites.checkpoint import measure_checkpoint  # noqa: E402
from suites.defs import EPOCH_SMOKE_GMP, PPSEG_SMOKE_GMP, SUITES  # noqa: E402
from suites.provenance import file_sha256  # noqa: E402

PROVENANCE = os.path.join(SUITES_DIR, 'provenance.py')
PAIRED_SUITES = ('ppdet', 'ppseg')


@dataclass(frozen=True)
class PairedBudget:
    """Run lengths (the suite's unit) and the GMP schedule that fits the fine-tune.

    ``finetune_gmp`` / ``smoke_gmp`` are ``-o`` items; empty keeps the demo's block, which must
    then end within ``finetune`` (PicoDet: 0 + 4 + 4 epochs of 8).
    """
    parent: int
    finetune: int
    smoke_parent: int
    smoke_finetune: int
    finetune_gmp: tuple = ()
    smoke_gmp: tuple = ()

    def lengths(self, smoke):
        return (self.smoke_parent, self.smoke_finetune) if smoke else (self.parent, self.finetune)

    def gmp(self, smoke):
        return list(self.smoke_gmp if smoke else self.finetune_gmp)


BUDGETS = {
    # the demo's GMP (stable 0, pruning 4, tuning 4 epochs) is the whole 8-epoch fine-tune
    'ppdet': PairedBudget(parent=16, finetune=8, smoke_parent=1, smoke_finetune=2,
                          smoke_gmp=tuple(EPOCH_SMOKE_GMP)),
    # the demo's 100 / 500 / 400 of 1000 iterations, halved
    'ppseg': PairedBudget(parent=1000, finetune=500, smoke_parent=4, smoke_finetune=4,
                          finetune_gmp=('UnstructuredPrune.gmp.stable_iterations=50',
                                        'UnstructuredPrune.gmp.pruning_iterations=250',
                                        'UnstructuredPrune.gmp.tunning_iterations=200',
                                        'UnstructuredPrune.gmp.pruning_steps=10'),
                          smoke_gmp=tuple(PPSEG_SMOKE_GMP)),
}

# ppdet's CosineDecay is fixed in epochs (the demo: 8); the parent's own config stretches it.
PPDET_PARENT_YAML = """\
# written by benchmarks/suites/paired.py: the demo config, {epochs} epochs of cosine decay
_BASE_: ['{base}']
epoch: {epochs}
LearningRate:
  base_lr: {base_lr}
  schedulers:
  - !CosineDecay
    max_epochs: {epochs}
  - !LinearWarmup
    start_factor: 0.1
    steps: 10
"""


def ppdet_parent_config(suite, work_dir, epochs):
    """The demo config with ``epoch`` and its cosine schedule set to ``epochs``; returns its path.

    It keeps the demo's file name, so the checkpoint lands where ``suite.checkpoint`` looks.
    """
    from suites.defs import config_value

    folder = os.path.join(work_dir, suite.key, 'parent_config')
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, os.path.basename(suite.config))
    with open(path, 'w') as handle:
        handle.write(PPDET_PARENT_YAML.format(
            base=os.path.join(REPO_ROOT, suite.config), epochs=epochs,
            base_lr=config_value(suite.config, 'LearningRate.base_lr')))
    return path


def train_args(suite, run, out_dir, length, seed, start=None, gmp=(), config=None):
    """``tools/train.py`` arguments of one paired run.

    Args:
        suite: A :class:`suites.defs.SuiteDef` (``'ppdet'`` or ``'ppseg'``).
        run: ``'dense'``, ``'prune_plugin'`` or ``'ppdet built-in'``.
        out_dir: Save folder of the run.
        length: Epochs (ppdet) or iterations (ppseg).
        seed: ``--seed`` of the suite.
        start: Weights to start from (None: the suite's initialisation).
        gmp: ``-o`` items of the GMP schedule (sparse rows only).
        config: Config file (default: the demo's).
    """
    config = config or suite.config
    if suite.key == 'ppseg':
        args = ['-c', config, '--iters', str(length), '--save_interval', str(length),
                '--save_dir', out_dir, '--seed', str(seed), '--log_iters', '50']
        overrides = [f"model.pretrained={start}"] if start else []
    else:
        args = ['-c', config, '--seed', str(seed)]
        overrides = [f"save_dir={out_dir}", f"epoch={length}"]
        overrides += [f"pretrain_weights={start}"] if start else []
    overrides += [suite.dense_override] if run == 'dense' else list(gmp)
    return args + ['-o'] + overrides


def _train(suite, run, out_dir, args, order_seed, env, timeout):
    """One training through ``provenance.py``; the record (dict) or an ``error`` entry."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    timing_path = os.path.join(out_dir, 'timing.json')
    record_path = os.path.join(out_dir, 'provenance.json')
    launcher = LAUNCHERS['builtin' if run == 'ppdet built-in' else 'plugin']
    cmd = [PYTHON, PROVENANCE, '--record-out', record_path, '--order-seed', str(order_seed),
           launcher, '--timing-out', timing_path] + args
    rc, _, text = _run_logged(cmd, os.path.join(out_dir, 'train.log'), env, timeout)
    record = {'train_command': ' '.join(cmd[1:]).replace(REPO_ROOT + '/', '')}
    if rc != 0 or not os.path.isfile(timing_path) or not os.path.isfile(record_path):
        record['error'] = _failure(text, rc)
        return record
    with open(timing_path) as handle:
        timing = json.load(handle)
    with open(record_path) as handle:
        record.update(json.load(handle))
    record.update(train_seconds=timing['train_seconds'], plugin_seconds=timing['plugin_seconds'],
                  pruner=timing.get('pruner'))
    return record


def run_one(suite, kind, run, seed, out_dir, args, env, timeout):
    """Train, evaluate and measure one run; failures are recorded in the row, not raised."""
    row = {'suite': suite.key, 'title': suite.title, 'kind': kind, 'run': run, 'seed': seed,
           'metric_name': suite.metric_name}
    row.update(_train(suite, run, out_dir, args, seed, env, timeout))
    if 'error' in row:
        return row
    checkpoint = suite.checkpoint(out_dir)
    if not os.path.isfile(checkpoint):
        row['error'] = f"no checkpoint at {checkpoint}"
        return row
    row['weights'] = file_sha256(checkpoint)
    row['checkpoint'] = measure_checkpoint(checkpoint, row.get('pruner'))
    row['metric'], error, _ = evaluate(suite, checkpoint, os.path.join(out_dir, 'eval.log'), env,
                                       timeout)
    raw = suite.raw_weights(out_dir)
    if run == 'ppdet built-in' and raw and os.path.isfile(raw):
        # ppdet saves its EMA (dense) as .pdparams; the pruned weights are the .pdema
        raw_copy = os.path.join(out_dir, 'raw_weights', 'model_final.pdparams')
        os.makedirs(os.path.dirname(raw_copy), exist_ok=True)
        shutil.copyfile(raw, raw_copy)
        row['raw_weights'] = measure_checkpoint(raw_copy, row.get('pruner'))
        row['raw_metric'], _, _ = evaluate(suite, raw_copy,
                                           os.path.join(out_dir, 'eval_raw.log'), env, timeout)
    if error:
        row['error'] = error
    return row


def run_suite(suite, seeds, work_dir, smoke, env, timeout, with_builtin=True):
    """The parent of ``suite``, then every row for every seed from its weights; the rows."""
    budget = BUDGETS[suite.key]
    parent_length, finetune_length = budget.lengths(smoke)
    config = (ppdet_parent_config(suite, work_dir, parent_length) if suite.key == 'ppdet'
              else None)
    parent_dir = os.path.join(work_dir, suite.key, 'parent')
    parent = run_one(suite, 'parent', 'dense', seeds[0], parent_dir,
                     train_args(suite, 'dense', parent_dir, parent_length, seeds[0],
                                config=config), env, timeout)
    parent['budget'] = f"{parent_length} {suite.unit}"
    rows = [parent]
    _print_row(parent)
    if 'error' in parent and 'checkpoint' not in parent:
        return rows
    start = suite.checkpoint(parent_dir)
    for seed in seeds:
        for run in suite.runs(with_builtin=with_builtin):
            out_dir = os.path.join(work_dir, suite.key, f"seed{seed}", run.replace(' ', '_'))
            args = train_args(suite, run, out_dir, finetune_length, seed, start=start,
                              gmp=budget.gmp(smoke))
            row = run_one(suite, 'finetune', run, seed, out_dir, args, env, timeout)
            row['budget'] = f"{finetune_length} {suite.unit}"
            row['start_weights'] = parent.get('weights')
            rows.append(row)
            _print_row(row)
    return rows


def _print_row(row):
    metric = row.get('metric')
    ckpt = row.get('raw_weights') or row.get('checkpoint') or {}
    name = 'parent' if row['kind'] == 'parent' else f"seed {row['seed']} {row['run']}"
    print(f"{row['suite']:6s} {name:24s} {row['metric_name']} "
          f"{'-' if metric is None else format(metric, '.2f')}  1x1 zeros "
          f"{ckpt.get('conv1x1_zeros')} / {ckpt.get('conv1x1_weights')}  order "
          f"{row.get('order_digest')}  {row.get('error', '')}", flush=True)


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.suites.paired", description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m benchmarks.suites.paired --json "
               "benchmarks/results/suites_paired.json\n"
               "  python -m benchmarks.suites.paired --smoke --suites ppseg --seeds 0 1 "
               "--out /tmp/p.md --json /tmp/p.json\n"
               "  python -m benchmarks.suites.paired --render benchmarks/results/"
               "suites_paired.json")
    add_run_arguments(parser, PAIRED_SUITES, 'suites_paired.md',
                      "skip the PicoDet rows with ppdet's built-in pruner")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    args = parse_checked(parser, argv, PAIRED_SUITES)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds: {args.seeds} repeats a seed")
    return args


def _write_markdown(rows, meta, out):
    from suites.paired_report import paired_markdown, summarize
    with open(out, 'w') as handle:
        handle.write(paired_markdown(summarize(rows), meta))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = _parse(argv)
    if args.render:
        with open(args.render) as handle:
            saved = json.load(handle)
        out = args.out or os.path.join(RESULTS_DIR, 'suites_paired.md')
        _write_markdown(saved['rows'], saved['meta'], out)
        print(f"table: {out}")
        return 0
    work_dir = os.path.abspath(args.work_dir or tempfile.mkdtemp(prefix='suites_paired_'))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED='1')
    timeout = args.timeout or (300 if args.smoke else 1800)
    rows, start = [], time.perf_counter()
    for key in args.suites.split(','):
        rows += run_suite(SUITES[key], args.seeds, work_dir, args.smoke, env, timeout,
                          with_builtin=not args.no_builtin)
    meta = {'date': datetime.datetime.now().strftime('%Y-%m-%d %H:%M'), 'smoke': args.smoke,
            'threads': args.threads, 'seeds': args.seeds,
            'total_seconds': time.perf_counter() - start,
            'command': 'python -m benchmarks.suites.paired ' + ' '.join(argv),
            'work_dir': work_dir, 'code_version': code_version()}
    out = args.out or (None if args.smoke else os.path.join(RESULTS_DIR, 'suites_paired.md'))
    if args.json:
        from suites.paired_report import summarize
        with open(args.json, 'w') as handle:
            json.dump({'meta': meta, 'rows': rows, 'summary': summarize(rows)}, handle, indent=1)
    if out:
        _write_markdown(rows, meta, out)
    print(f"{len(rows)} runs in {meta['total_seconds']:.0f} s; outputs in {work_dir}"
          + (f"; table: {out}" if out else ''))
    return 1 if any('error' in r for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
