"""Accuracy cost of pruning, paired: prune_plugin and PaddleSlim 2.6 fine-tune the same dense parents.

For each data set and seed, MobileNetV1 (PaddleClas' arch, width ``--scale``, 10 classes) is
trained dense from scratch once: the *parent*. From the parent's saved weights every row is then
fine-tuned with the same budget, learning-rate schedule and data order (one batch plan per seed):
a dense fine-tune (the baseline) and each sparse row with prune_plugin and with PaddleSlim's
pruner (PaddleSlim has no 2:4 pattern). A row's accuracy cost is its *paired drop*: sparse top-1
minus the dense fine-tune's top-1 of the same seed, summarised over seeds with a 95% t interval;
prune_plugin minus PaddleSlim is paired the same way. Sparsity is counted exactly in the saved
checkpoint, which a fresh model (no pruner) loads for evaluation. See accuracy_data.py for the
data sets, accuracy_train.py for one training, accuracy_report.py for the table and the plot.

Runs are appended to ``<work-dir>/runs.jsonl`` and parents kept in ``<work-dir>/parents/``; a rerun
with the same settings skips what is there. Each process uses OMP_NUM_THREADS threads (default 1).
"""
import argparse
import json
import multiprocessing
import os
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')  # per training process; set before paddle loads

from _common import RESULTS_DIR, REPO_ROOT  # noqa: E402  (also puts the repo root on sys.path)
from accuracy_data import DATASETS  # noqa: E402
from accuracy_report import render_markdown, render_plot, summarize  # noqa: E402
from accuracy_train import (ROWS, finetune, implementations, parent_path,  # noqa: E402
                            train_parent)

SETTING_KEYS = ('image_size', 'parent_epochs', 'finetune_epochs', 'batch', 'finetune_batch', 'lr',
                'finetune_lr', 'weight_decay', 'scale', 'pruning_steps', 'train_subset',
                'val_subset')


def settings_of(args, dataset):
    """What a run's figures depend on; runs logged with other settings are not reused."""
    return dict({k: getattr(args, k) for k in SETTING_KEYS}, dataset=dataset)


def load_runs(log_path, args):
    """Logged runs whose settings match ``args`` (the last parent record of a seed wins)."""
    if not os.path.exists(log_path):
        return []
    with open(log_path) as handle:
        runs = [json.loads(line) for line in handle if line.strip()]
    return [r for r in runs if r.get('settings') == settings_of(args, r.get('dataset'))]


def current_parents(runs):
    """``{(dataset, seed): parent record}``, the latest record of each."""
    return {(r['dataset'], r['seed']): r for r in runs if r['kind'] == 'parent'}


def paired_runs(runs):
    """The parents, and the fine-tunes that started from their seed's current parent."""
    parents = current_parents(runs)
    kept = list(parents.values())
    for r in runs:
        parent = parents.get((r['dataset'], r['seed']))
        if r['kind'] == 'finetune' and parent and r['start_weights'] == parent['weights']:
            kept.append(r)
    return kept


def pending(args, runs):
    """(parent tasks, fine-tune tasks) not yet logged for the requested data sets and seeds."""
    parents = current_parents(runs)
    done = {(r['dataset'], r['row'], r['impl'], r['seed']) for r in paired_runs(runs)
            if r['kind'] == 'finetune'}
    parent_tasks, finetune_tasks = [], []
    for dataset in args.datasets:
        for seed in args.seeds:
            if (dataset, seed) not in parents or not os.path.exists(
                    parent_path(args, dataset, seed)):
                parent_tasks.append((dataset, seed, args))
            for row, row_kwargs in ROWS:
                for impl in implementations(row_kwargs):
                    if (dataset, row, impl, seed) not in done:
                        finetune_tasks.append((dataset, row, impl, seed, args))
    return parent_tasks, finetune_tasks


def _progress_line(record):
    name = 'parent' if record['kind'] == 'parent' else f"{record['row']} / {record['impl']}"
    line = (f"{record['dataset']:8s} seed {record['seed']}  {name:46s} top-1 "
            f"{record['top1'] * 100:6.2f}")
    if record.get('prunable_count'):
        line += f"  pruned {record['prunable_zeros']:,} / {record['prunable_count']:,}"
    return line + f"  train {record['train_seconds']:.1f} s"


def run_tasks(function, tasks, args, log_path, runs):
    """Run ``function`` over ``tasks`` (``--jobs`` processes); log each record as it ends."""
    if not tasks:
        return
    pool = None
    if args.jobs > 1:
        pool = multiprocessing.get_context('spawn').Pool(args.jobs)
        results = pool.imap_unordered(function, tasks)
    else:
        results = map(function, tasks)
    with open(log_path, 'a') as handle:
        for record in results:
            record['settings'] = settings_of(args, record['dataset'])
            runs.append(record)
            handle.write(json.dumps(record) + '\n')
            handle.flush()
            print(_progress_line(record), flush=True)
    if pool is not None:
        pool.close()
        pool.join()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog='examples:\n'
               '  python benchmarks/accuracy.py --jobs 1            # results/accuracy.md + .png\n'
               '  python benchmarks/accuracy.py --report-only       # table and plot from runs.jsonl\n'
               '  python benchmarks/accuracy.py --smoke --out-dir /tmp/acc',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--smoke', action='store_true',
                        help='2 seeds, 64 train / 100 val images, batch 8: parent 8 steps, fine-tunes 24')
    parser.add_argument('--datasets', nargs='+', default=['digits'], choices=sorted(DATASETS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--parent-epochs', type=int, default=20)
    parser.add_argument('--finetune-epochs', type=int, default=5)
    parser.add_argument('--batch', type=int, default=64, help='parent batch size')
    parser.add_argument('--finetune-batch', type=int, default=32)
    parser.add_argument('--lr', type=float, default=0.1, help='parent cosine schedule start')
    parser.add_argument('--finetune-lr', type=float, default=0.02,
                        help='fine-tune cosine schedule start')
    parser.add_argument('--weight-decay', type=float, default=5e-5)
    parser.add_argument('--scale', type=float, default=0.25, help='MobileNetV1 width multiplier')
    parser.add_argument('--image-size', type=int, default=32, choices=(16, 24, 32),
                        help='input pixels (digits: 8x8 upsampled; mnist5k: 32 only)')
    parser.add_argument('--pruning-steps', type=int, default=6,
                        help='GMP ratio increases (PaddleSlim wants > 10 iterations apart)')
    parser.add_argument('--train-subset', type=int, default=0, help='use the first N train images')
    parser.add_argument('--val-subset', type=int, default=0, help='use the first N val images')
    parser.add_argument('--jobs', type=int, default=1, help='parallel trainings (processes)')
    parser.add_argument('--report-only', action='store_true',
                        help='write the table and plot from the runs already logged; train nothing')
    parser.add_argument('--work-dir', default=os.path.join(REPO_ROOT, 'data', 'bench_accuracy'))
    parser.add_argument('--out-dir', default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.smoke:
        # 24 fine-tune steps: PaddleSlim's GMP wants pruning_iterations > 10 * pruning_steps
        args.seeds, args.parent_epochs, args.finetune_epochs = [0, 1], 1, 3
        args.batch, args.finetune_batch, args.pruning_steps = 8, 8, 1
        args.train_subset, args.val_subset = 64, 100
        if args.work_dir == parser.get_default('work_dir'):
            args.work_dir = os.path.join(args.out_dir, 'work')
    return args


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    os.makedirs(args.out_dir, exist_ok=True)
    log_path = os.path.join(args.work_dir, 'runs.jsonl')
    runs = load_runs(log_path, args)
    started = time.perf_counter()
    if not args.report_only:
        parent_tasks, _ = pending(args, runs)
        print(f"{len(parent_tasks)} parents to train", flush=True)
        run_tasks(train_parent, parent_tasks, args, log_path, runs)
        _, finetune_tasks = pending(args, runs)
        print(f"{len(finetune_tasks)} fine-tunes to run", flush=True)
        run_tasks(finetune, finetune_tasks, args, log_path, runs)
    wall = time.perf_counter() - started
    kept = [r for r in paired_runs(runs) if r['seed'] in args.seeds
            and r['dataset'] in args.datasets]
    summary = summarize(kept, [name for name, _ in ROWS], args.datasets)
    report = render_markdown(summary, {d: settings_of(args, d) for d in args.datasets})
    with open(os.path.join(args.out_dir, 'accuracy.md'), 'w') as handle:
        handle.write(report)
    render_plot(summary, os.path.join(args.out_dir, 'accuracy.png'))
    print(report)
    print(f"wall time of this invocation: {wall / 60:.1f} min", flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
