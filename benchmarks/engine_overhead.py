"""Speed and memory of prune_plugin's pruner next to PaddleSlim 2.6's, on the same weights.

Measures, in one process:

1. mask-update time (one prune event: thresholds + masks) for a global ratio, a local ratio and
   2x1 blocks, on MobileNetV1 (PaddleClas arch, 4.2M params) and YOLOv3-MobileNetV1 (ppdet,
   24.6M params); speedup = PaddleSlim's time / ours;
2. the pruner's extra memory per prunable parameter (masks held; masks written into checkpoints);
3. the amortized cost of ``pruner.step()`` as a share of a CPU training step of MobileNetV1
   (batch 8, 224x224) under GMP.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/engine_overhead.py            # full, writes results/engine_overhead.md
    python benchmarks/engine_overhead.py --smoke --out /tmp/eo.md     # tiny, for the tests

PaddleSlim's 2x1 block path loops in Python over every block (~20 s per update on MobileNetV1),
so it is timed once per model; with ``--slim-block-max-params N`` it is timed on the first
prunable parameters up to N weights and extrapolated linearly to all of them (the output says so).
"""
import argparse
import os
import statistics
import time

import numpy as np

from _common import (RESULTS_DIR, build_mobilenet_v1, build_yolov3_mobilenet_v1, count_params,
                     engine_version, make_slim_pruner, quiet_logs, slim_mask_bytes, timed)
from engine_overhead_report import render

import paddle  # noqa: E402  (after _common, which puts the repository on sys.path)

from prune_plugin.core import GMPUnstructuredPruner, UnstructuredPruner  # noqa: E402

CASES = (
    ('global ratio 0.55', dict(mode='ratio', ratio=0.55)),
    ('local ratio 0.55', dict(mode='ratio', ratio=0.55, local_sparsity=True)),
    ('2x1 blocks, ratio 0.55', dict(mode='ratio', ratio=0.55, sparse_block=[2, 1])),
)
# A realistic GMP run of MobileNetV1 on ImageNet (PaddleSlim's demo: 108 epochs, 100 ratio
# increases) at batch 256: 5005 iterations per epoch.
REAL_SCHEDULE = dict(iterations_per_epoch=5005, stable_epochs=0, pruning_epochs=54,
                     tunning_epochs=54, pruning_steps=100)


def _ours_event_seconds(model, kwargs, repeats):
    """Best time of the first prune event of fresh pruners (after one warm-up event).

    The best of ``repeats`` (as ``timeit`` advises) for both pruners: on a shared machine the
    other runs only ever add time.
    """
    UnstructuredPruner(model, **kwargs).update_masks()
    times = []
    for _ in range(repeats):
        pruner = UnstructuredPruner(model, **kwargs)
        times.append(timed(pruner.update_masks)[0])
    return min(times), pruner


def _slim_update(pruner):
    # What PaddleSlim's step() does in ratio mode: the thresholds, then the masks.
    pruner.update_threshold()
    pruner._update_masks()


def _slim_event_seconds(model, kwargs, repeats):
    pruner = make_slim_pruner(model, **kwargs)
    _slim_update(pruner)
    return min(timed(_slim_update, pruner)[0] for _ in range(repeats))


def _slim_block_time(model, case_kwargs, max_params):
    """Time PaddleSlim's block update once; on a prefix of the parameters if ``max_params``."""
    full = make_slim_pruner(model, **case_kwargs)
    prunable = [p for _, layer in model.named_sublayers() if full._should_prune_layer(layer)
                for p in layer.parameters(include_sublayers=False) if p.name not in full.skip_params]
    total = sum(int(np.prod(p.shape)) for p in prunable)
    if not max_params or total <= max_params:
        return timed(_slim_update, full)[0], None
    chosen, size = set(), 0
    for p in prunable:
        if size >= max_params:
            break
        chosen.add(p.name)
        size += int(np.prod(p.shape))
    skip = {p.name for p in model.parameters() if p.name not in chosen}
    subset = make_slim_pruner(model, skip_params_func=lambda _m: skip, **case_kwargs)
    seconds = timed(_slim_update, subset)[0]
    return seconds * total / size, f"timed on {size:,} of {total:,} weights, scaled x{total / size:.1f}"


def measure_updates(model_name, model, repeats, block_max_params):
    """Rows of (model, case, ours s, slim s, speedup, note) for the three cases."""
    rows = []
    for case, kwargs in CASES:
        ours_s, ours = _ours_event_seconds(model, kwargs, repeats)
        note = None
        if kwargs.get('sparse_block') is not None:
            slim_s, note = _slim_block_time(model, kwargs, block_max_params)
        else:
            slim_s = _slim_event_seconds(model, kwargs, repeats)
        rows.append(dict(model=model_name, case=case, ours=ours_s, slim=slim_s,
                         speedup=slim_s / ours_s, note=note,
                         ours_sparsity=ours.sparsity()))
        print(f"{model_name:22s} {case:24s} ours {ours_s * 1e3:9.1f} ms  PaddleSlim "
              f"{slim_s * 1e3:10.1f} ms  speedup {slim_s / ours_s:8.1f}x"
              + (f"  ({note})" if note else ''), flush=True)
    return rows


def _state_dict_bytes(model):
    return sum(int(np.prod(v.shape)) * v.element_size() for v in model.state_dict().values())


def measure_memory(model_name, model):
    """Bytes per prunable weight held by each pruner, and bytes it adds to a checkpoint.

    Must run before any PaddleSlim pruner was built on ``model`` (those register mask buffers).
    """
    dense_ckpt = _state_dict_bytes(model)
    ours = UnstructuredPruner(model, mode='ratio', ratio=0.55)
    ours.update_masks()
    prunable = sum(int(np.prod(p.shape)) for p in ours.params)
    ours_bytes = sum(int(m.numel()) * m.element_size() for m in ours.masks.values())
    ours_ckpt = _state_dict_bytes(model) - dense_ckpt
    slim = make_slim_pruner(model, mode='ratio', ratio=0.55)
    slim_bytes = slim_mask_bytes(slim)
    slim_ckpt = _state_dict_bytes(model) - dense_ckpt - ours_ckpt
    row = dict(model=model_name, prunable=prunable, ours=ours_bytes / prunable,
               slim=slim_bytes / prunable, ours_ckpt=ours_ckpt / prunable,
               slim_ckpt=slim_ckpt / prunable, mask_dtype=str(next(iter(ours.masks.values())).dtype))
    print(f"{model_name:22s} memory per prunable weight: ours {row['ours']:.2f} B "
          f"({row['mask_dtype']}), PaddleSlim {row['slim']:.2f} B; checkpoint +{row['ours_ckpt']:.2f}"
          f" B vs +{row['slim_ckpt']:.2f} B", flush=True)
    return row


class _TimedGMPUnstructuredPruner(GMPUnstructuredPruner):
    """prune_plugin's GMP pruner with its gradient hooks timed (they run inside backward)."""

    hook_seconds = 0.0

    def _gradient_mask_hook(self, name):
        inner = super()._gradient_mask_hook(name)

        def hook(grad):
            start = time.perf_counter()
            out = inner(grad)
            self.hook_seconds += time.perf_counter() - start
            return out
        return hook


def _ours_gmp(model, **kwargs):
    if hasattr(GMPUnstructuredPruner, '_gradient_mask_hook'):
        return _TimedGMPUnstructuredPruner(model, **kwargs)
    return GMPUnstructuredPruner(model, **kwargs)  # an engine without gradient hooks


def _train_step(model, optimizer, images, labels):
    loss = paddle.nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()


def _gmp_configs(schedule):
    per_epoch = schedule['iterations_per_epoch']
    return dict(stable_iterations=schedule['stable_epochs'] * per_epoch,
                pruning_iterations=schedule['pruning_epochs'] * per_epoch,
                tunning_iterations=schedule['tunning_epochs'] * per_epoch,
                pruning_steps=schedule['pruning_steps'], initial_ratio=0.15)


def measure_training_overhead(steps, batch, size, scale):
    """Time MobileNetV1 CPU train steps with and without each pruner's per-step work.

    The three runs (no pruner, prune_plugin, PaddleSlim) take turns step by step, so that a
    busy machine slows them alike.
    """
    paddle.seed(0)
    images = paddle.randn([batch, 3, size, size])
    labels = paddle.randint(0, 1000, [batch, 1])
    configs = _gmp_configs(REAL_SCHEDULE)
    runs = {}
    for impl in ('none', 'ours', 'slim'):
        paddle.seed(0)
        model = build_mobilenet_v1(scale=scale)
        optimizer = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
        pruner = None
        if impl == 'ours':
            pruner = _ours_gmp(model, ratio=0.75, configs=configs, optimizer=optimizer)
        elif impl == 'slim':
            pruner = make_slim_pruner(model, gmp=True, ratio=0.75,
                                      configs=dict(configs, resume_iteration=0))
        for _ in range(2):  # warm-up
            _train_step(model, optimizer, images, labels)
        event_s = timed(pruner.step)[0] if pruner is not None else 0.0  # iteration 0 prunes
        if pruner is not None:
            pruner.hook_seconds = 0.0
        runs[impl] = dict(model=model, optimizer=optimizer, pruner=pruner, event=event_s,
                          train_times=[], prune_times=[])
    for _ in range(steps):
        for run in runs.values():
            start = time.perf_counter()
            _train_step(run['model'], run['optimizer'], images, labels)
            run['train_times'].append(time.perf_counter() - start)
            if run['pruner'] is not None:
                run['prune_times'].append(timed(run['pruner'].step)[0])
    result = {}
    for impl, run in runs.items():
        hook_s = getattr(run['pruner'], 'hook_seconds', 0.0) / steps
        result[impl] = dict(train=statistics.median(run['train_times']), step=statistics.median(
            run['prune_times']) if run['prune_times'] else 0.0, hook=hook_s, event=run['event'])
        print(f"train step ({impl:4s}): {result[impl]['train']:.3f} s  pruner.step "
              f"{result[impl]['step'] * 1e3:.2f} ms  hooks {hook_s * 1e3:.2f} ms  "
              f"prune event {result[impl]['event'] * 1e3:.1f} ms", flush=True)
    dense = result['none']['train']
    per_epoch = REAL_SCHEDULE['iterations_per_epoch']
    total = per_epoch * (REAL_SCHEDULE['stable_epochs'] + REAL_SCHEDULE['pruning_epochs']
                         + REAL_SCHEDULE['tunning_epochs'])
    events = REAL_SCHEDULE['pruning_steps'] + 1
    for impl in ('ours', 'slim'):
        r = result[impl]
        per_step = r['step'] + r['hook'] + r['event'] * events / total
        r['amortized'] = per_step
        r['share'] = per_step / dense
        # Train-step time with the pruner (its hooks run inside the forward) vs without.
        r['measured_share'] = (r['train'] + r['step']) / dense - 1
    result['dense'] = dense
    result['total_iterations'] = total
    result['events'] = events
    return result


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog='examples:\n  python benchmarks/engine_overhead.py\n'
               '  python benchmarks/engine_overhead.py --smoke --out /tmp/eo.md',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--smoke', action='store_true',
                        help='tiny settings (MobileNetV1 x0.25 only, 2 train steps at 64x64, '
                             'PaddleSlim blocks on 20k weights)')
    parser.add_argument('--repeats', type=int, default=3, help='timed repeats per update')
    parser.add_argument('--steps', type=int, default=8, help='timed train steps per pruner')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--scale', type=float, default=1.0, help='MobileNetV1 width multiplier')
    parser.add_argument('--slim-block-max-params', type=int, default=0,
                        help='time PaddleSlim blocks on at most this many weights (0: all)')
    parser.add_argument('--skip-yolo', action='store_true', help='MobileNetV1 only')
    parser.add_argument('--out', default=os.path.join(RESULTS_DIR, 'engine_overhead.md'))
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeats, args.steps, args.batch, args.size, args.scale = 1, 2, 2, 64, 0.25
        args.skip_yolo = True
        args.slim_block_max_params = args.slim_block_max_params or 20000
    return args


def main(argv=None):
    args = parse_args(argv)
    quiet_logs()
    paddle.seed(0)
    models = [('MobileNetV1' + ('' if args.scale == 1.0 else f' x{args.scale}'),
               build_mobilenet_v1(scale=args.scale))]
    if not args.skip_yolo:
        models.append(('YOLOv3-MobileNetV1', build_yolov3_mobilenet_v1()))
    update_rows, memory_rows = [], []
    for name, model in models:
        print(f"{name}: {count_params(model):,} params", flush=True)
        memory_rows.append(measure_memory(name, model))
        update_rows += measure_updates(name, model, args.repeats, args.slim_block_max_params)
    overhead = measure_training_overhead(args.steps, args.batch, args.size, args.scale)
    args.engine = engine_version()
    report, checks = render(update_rows, memory_rows, overhead, args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as handle:
        handle.write(report)
    print(report)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
