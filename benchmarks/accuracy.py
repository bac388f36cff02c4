"""Top-1 vs sparsity: prune_plugin and PaddleSlim 2.6 trained side by side on the same data.

Every row trains PaddleClas' MobileNetV1 (width ``--scale``, 10 classes) from scratch on
scikit-learn's digits (8x8 upsampled to 32x32 by default; fixed split: 1437 train / 360 val) with the same
seeds, epochs and cosine learning-rate schedule; sparse rows run once with prune_plugin and once
with PaddleSlim's pruner (PaddleSlim has no 2:4 pattern). The loop is the reference's usage:
``pruner.step()`` after ``optimizer.step()``; ``pruner.update_params()`` before eval and save.
Sparsity and top-1 are read back from the saved checkpoint (``paddle.save`` / ``paddle.load`` into
a fresh model with no pruner).

Usage::

    python benchmarks/accuracy.py --jobs 2            # full: results/accuracy.md + accuracy.png
    python benchmarks/accuracy.py --smoke --out-dir /tmp/acc

Each training uses OMP_NUM_THREADS threads (default 1). Runs are appended to ``<work-dir>/runs.jsonl``; a rerun skips the runs already there.
"""
import argparse
import json
import multiprocessing
import os
import time

import numpy as np

os.environ.setdefault('OMP_NUM_THREADS', '1')  # per training process; set before paddle loads

from _common import (RESULTS_DIR, REPO_ROOT, build_mobilenet_v1, engine_version,
                     make_slim_pruner, quiet_logs)
from accuracy_report import render_markdown, render_plot, summarize

ROWS = (
    ('dense', None),
    ('ratio 0.55', dict(mode='ratio', ratio=0.55)),
    ('threshold 0.01', dict(mode='threshold', threshold=0.01)),
    ('ratio 0.75 conv1x1 GMP', dict(gmp=True, ratio=0.75, prune_params_type='conv1x1_only')),
    ('ratio 0.75 conv1x1 GMP 2x1 blocks', dict(gmp=True, ratio=0.75, prune_params_type='conv1x1_only',
                                               sparse_block=[2, 1])),
    ('ratio 0.80 conv1x1 GMP', dict(gmp=True, ratio=0.80, prune_params_type='conv1x1_only')),
    ('ratio 0.90 conv1x1 GMP', dict(gmp=True, ratio=0.90, prune_params_type='conv1x1_only')),
    ('2:4 pattern', dict(mode='ratio', sparse_pattern='2:4')),
)
IMPLS = ('prune_plugin', 'PaddleSlim')
TRAIN_SIZE = 1437


def load_digits_split(image_size):
    """Digits as float32 [N, 3, S, S] (normalized, S = ``image_size``, a multiple of 8) + int64
    labels; fixed 1437/360 split (a permutation with seed 0)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    order = np.random.RandomState(0).permutation(len(images))
    images, labels = images[order], digits.target[order].astype(np.int64)
    factor = image_size // 8
    images = np.kron(images, np.ones((factor, factor), np.float32))
    images = (images - images[:TRAIN_SIZE].mean()) / images[:TRAIN_SIZE].std()
    images = np.repeat(images[:, None], 3, axis=1)
    return (images[:TRAIN_SIZE], labels[:TRAIN_SIZE]), (images[TRAIN_SIZE:], labels[TRAIN_SIZE:])


def _shifted(batch, rng, pad=2):
    """Random translation by up to ``pad`` pixels (zero padding), one shift per image."""
    size = batch.shape[-1]
    padded = np.pad(batch, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty_like(batch)
    for i, (dy, dx) in enumerate(rng.randint(0, 2 * pad + 1, size=(len(batch), 2))):
        out[i] = padded[i, :, dy:dy + size, dx:dx + size]
    return out


def gmp_configs(total_iterations, pruning_steps):
    """GMP phases: 10% stable, 50% pruning (``pruning_steps`` increases), 40% fine-tuning."""
    stable = total_iterations // 10
    pruning = total_iterations // 2
    return dict(stable_iterations=stable, pruning_iterations=pruning,
                tunning_iterations=total_iterations - stable - pruning,
                pruning_steps=pruning_steps, initial_ratio=0.15)


def build_pruner(impl, row_kwargs, model, optimizer, total_iterations, pruning_steps):
    """The row's pruner, prune_plugin's or PaddleSlim's, with the same settings."""
    kwargs = dict(row_kwargs)
    gmp = kwargs.pop('gmp', False)
    if impl == 'prune_plugin':
        from prune_plugin.core import GMPUnstructuredPruner, UnstructuredPruner
        if gmp:
            return GMPUnstructuredPruner(model, optimizer=optimizer, configs=gmp_configs(
                total_iterations, pruning_steps), **kwargs)
        return UnstructuredPruner(model, optimizer=optimizer, **kwargs)
    if 'sparse_pattern' in kwargs:
        return None
    if gmp:
        configs = dict(gmp_configs(total_iterations, pruning_steps), resume_iteration=0)
        return make_slim_pruner(model, gmp=True, configs=configs, **kwargs)
    return make_slim_pruner(model, **kwargs)


def evaluate(model, images, labels):
    import paddle
    model.eval()
    with paddle.no_grad():
        logits = model(paddle.to_tensor(images))
    model.train()
    return float((logits.numpy().argmax(axis=1) == labels).mean())


def checkpoint_figures(path, args, row_kwargs, val):
    """Sparsity (total, conv1x1, of the row's prunable weights) and top-1 of a saved checkpoint."""
    import paddle
    from prune_plugin.core import UnstructuredPruner
    from prune_plugin.core.selection import is_conv1x1_shape
    state = paddle.load(path)
    model = build_mobilenet_v1(scale=args.scale, class_num=10)
    own = dict(model.state_dict())
    model.set_state_dict({k: v for k, v in state.items() if k in own})
    params = dict(model.named_parameters())

    def zeros_fraction(names):
        arrays = [state[n].numpy() if hasattr(state[n], 'numpy') else np.asarray(state[n])
                  for n in names]
        total = sum(a.size for a in arrays)
        return sum(a.size - np.count_nonzero(a) for a in arrays) / total, total

    total, _ = zeros_fraction(list(params))
    conv1x1, _ = zeros_fraction([n for n, p in params.items() if is_conv1x1_shape(p.shape)])
    prunable, count = None, None
    if row_kwargs is not None:
        kwargs = {k: v for k, v in row_kwargs.items() if k != 'gmp'}
        if row_kwargs.get('gmp'):
            kwargs['mode'] = 'ratio'
        names = [p.name for p in UnstructuredPruner(model, **kwargs).params]
        prunable, count = zeros_fraction(names)
    return dict(total_sparsity=total, conv1x1_sparsity=conv1x1, prunable_sparsity=prunable,
                prunable_count=count, top1=evaluate(model, *val))


def train_one(task):
    """Train one (row, implementation, seed); return its figures as a dict."""
    row, impl, seed, args = task
    import paddle
    quiet_logs()
    paddle.set_device('cpu')
    row_kwargs = dict(ROWS)[row]
    (train_x, train_y), val = load_digits_split(args.image_size)
    if args.train_subset:
        train_x, train_y = train_x[:args.train_subset], train_y[:args.train_subset]
    paddle.seed(seed)
    model = build_mobilenet_v1(scale=args.scale, class_num=10)
    steps_per_epoch = -(-len(train_x) // args.batch)
    total = steps_per_epoch * args.epochs
    lr = paddle.optimizer.lr.CosineAnnealingDecay(args.lr, T_max=total)
    optimizer = paddle.optimizer.Momentum(lr, momentum=0.9, parameters=model.parameters(),
                                          weight_decay=paddle.regularizer.L2Decay(args.weight_decay))
    pruner = None
    if row_kwargs is not None:
        pruner = build_pruner(impl, row_kwargs, model, optimizer, total, args.pruning_steps)
    rng = np.random.RandomState(seed)
    prune_seconds = 0.0
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = rng.permutation(len(train_x))
        for first in range(0, len(order), args.batch):
            idx = order[first:first + args.batch]
            images = paddle.to_tensor(_shifted(train_x[idx], rng))
            loss = paddle.nn.functional.cross_entropy(model(images),
                                                      paddle.to_tensor(train_y[idx][:, None]))
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            lr.step()
            if pruner is not None:
                t0 = time.perf_counter()
                pruner.step()
                prune_seconds += time.perf_counter() - t0
    if pruner is not None:
        t0 = time.perf_counter()
        pruner.update_params()
        prune_seconds += time.perf_counter() - t0 + getattr(pruner, 'hook_seconds', 0.0)
    train_seconds = time.perf_counter() - start
    path = os.path.join(args.work_dir, f"{row.replace(' ', '_').replace(':', '-')}_{impl}_{seed}"
                        ".pdparams")
    paddle.save(model.state_dict(), path)
    figures = checkpoint_figures(path, args, row_kwargs, val)
    os.remove(path)
    return dict(row=row, impl=impl, seed=seed, engine=engine_version(), prune_seconds=prune_seconds,
                train_seconds=train_seconds, **figures)


def tasks_for(args, done):
    tasks = []
    for seed in args.seeds:
        for row, row_kwargs in ROWS:
            impls = ('dense',) if row_kwargs is None else IMPLS
            for impl in impls:
                if impl == 'PaddleSlim' and 'sparse_pattern' in row_kwargs:
                    continue
                if (row, impl, seed) not in done:
                    tasks.append((row, impl, seed, args))
    return tasks


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog='examples:\n  python benchmarks/accuracy.py --jobs 2\n'
               '  python benchmarks/accuracy.py --smoke --out-dir /tmp/acc',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--smoke', action='store_true',
                        help='1 seed, 1 epoch of 192 images at batch 8, 1 pruning step')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--lr', type=float, default=0.1)
    parser.add_argument('--weight-decay', type=float, default=5e-5)
    parser.add_argument('--image-size', type=int, default=32, choices=(8, 16, 24, 32),
                        help='digits (8x8) are upsampled to this size')
    parser.add_argument('--scale', type=float, default=0.25, help='MobileNetV1 width multiplier')
    parser.add_argument('--pruning-steps', type=int, default=10, help='GMP ratio increases')
    parser.add_argument('--train-subset', type=int, default=0, help='use the first N train images')
    parser.add_argument('--jobs', type=int, default=1, help='parallel trainings (processes)')
    parser.add_argument('--report-only', action='store_true',
                        help='write the table and plot from the runs already logged; train nothing')
    parser.add_argument('--work-dir', default=os.path.join(REPO_ROOT, 'data', 'bench_accuracy'))
    parser.add_argument('--out-dir', default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.smoke:
        # 24 iterations: PaddleSlim's GMP needs pruning_iterations > 10 * pruning_steps
        args.seeds, args.epochs, args.batch, args.train_subset, args.pruning_steps = [0], 1, 8, 192, 1
        if args.work_dir == parser.get_default('work_dir'):
            args.work_dir = os.path.join(args.out_dir, 'work')
    return args


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    os.makedirs(args.out_dir, exist_ok=True)
    log_path = os.path.join(args.work_dir, 'runs.jsonl')
    settings = {k: getattr(args, k) for k in ('epochs', 'batch', 'lr', 'weight_decay', 'scale',
                                              'image_size',
                                              'pruning_steps', 'train_subset')}
    runs = []
    if os.path.exists(log_path):
        with open(log_path) as handle:
            runs = [r for r in map(json.loads, handle) if r.get('settings') == settings]
    done = {(r['row'], r['impl'], r['seed']) for r in runs}
    tasks = [] if args.report_only else tasks_for(args, done)
    print(f"{len(tasks)} trainings to run ({len(done)} already in {log_path})", flush=True)
    with open(log_path, 'a') as handle:
        if args.jobs > 1:
            pool = multiprocessing.get_context('spawn').Pool(args.jobs)
            results = pool.imap_unordered(train_one, tasks)
        else:
            pool, results = None, map(train_one, tasks)
        for result in results:
            result['settings'] = settings
            runs.append(result)
            handle.write(json.dumps(result) + '\n')
            handle.flush()
            print(f"{result['row']:34s} {result['impl']:12s} seed {result['seed']}: top-1 "
                  f"{result['top1'] * 100:.2f}  sparsity total {result['total_sparsity']:.4f} "
                  f"conv1x1 {result['conv1x1_sparsity']:.4f} pruned {result['prunable_sparsity'] or 0:.4f}  pruning {result['prune_seconds']:.2f}"
                  f" s  train {result['train_seconds']:.1f} s", flush=True)
        if pool is not None:
            pool.close()
            pool.join()
    runs = [r for r in runs if r['seed'] in args.seeds]
    summary = summarize(runs, [name for name, _ in ROWS])
    report = render_markdown(summary, args, settings)
    with open(os.path.join(args.out_dir, 'accuracy.md'), 'w') as handle:
        handle.write(report)
    render_plot(summary, os.path.join(args.out_dir, 'accuracy.png'))
    print(report)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
