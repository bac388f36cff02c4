"""The pruner's amortized cost in a MobileNetV1 CPU training step under GMP (engine_overhead.py).

The three runs (no pruner, prune_plugin, PaddleSlim) take turns step by step, so that a busy
machine slows them alike; PaddleSlim's forward pre-hooks (its masking) are timed inside the step.
"""
import statistics
import time

import paddle

from _common import build_mobilenet_v1, make_slim_pruner
from engine_overhead_measure import synchronize, timed

from prune_plugin.core import GMPUnstructuredPruner  # noqa: E402

# A realistic GMP run of MobileNetV1 on ImageNet (PaddleSlim's demo: 108 epochs, 100 ratio
# increases) at batch 256: 5005 iterations per epoch.
REAL_SCHEDULE = dict(iterations_per_epoch=5005, stable_epochs=0, pruning_epochs=54,
                     tunning_epochs=54, pruning_steps=100)


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
    """Time MobileNetV1 train steps with and without each pruner's per-step work.

    Returns:
        ``{'none'|'ours'|'slim': {train, step, hook, event, amortized, share, measured_share},
        'dense', 'total_iterations', 'events'}`` (seconds and fractions).
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
            pruner = GMPUnstructuredPruner(model, ratio=0.75, configs=configs,
                                           optimizer=optimizer)
        elif impl == 'slim':
            pruner = make_slim_pruner(model, gmp=True, ratio=0.75,
                                      configs=dict(configs, resume_iteration=0))
        for _ in range(2):  # warm-up
            _train_step(model, optimizer, images, labels)
        event_s = timed(pruner.step) if pruner is not None else 0.0  # iteration 0 prunes
        if impl == 'slim':
            pruner.hook_seconds = 0.0
        runs[impl] = dict(model=model, optimizer=optimizer, pruner=pruner, event=event_s,
                          train_times=[], prune_times=[])
    for _ in range(steps):
        for run in runs.values():
            synchronize()
            start = time.perf_counter()
            _train_step(run['model'], run['optimizer'], images, labels)
            synchronize()
            run['train_times'].append(time.perf_counter() - start)
            if run['pruner'] is not None:
                run['prune_times'].append(timed(run['pruner'].step))
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
        r['amortized'] = r['step'] + r['hook'] + r['event'] * events / total
        r['share'] = r['amortized'] / dense
        # Train-step time with the pruner (its hooks run inside the forward) vs without.
        r['measured_share'] = (r['train'] + r['step']) / dense - 1
    result.update(dense=dense, total_iterations=total, events=events)
    return result
