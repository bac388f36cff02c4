"""Speed and memory of prune_plugin's pruner next to PaddleSlim 2.6's, on the same weights.

Measures, in one process, on MobileNetV1 (PaddleClas arch, 4.2M prunable weights) and
YOLOv3-MobileNetV1 (ppdet, 24.5M):

1. one prune event (thresholds + masks) for a global ratio, a local ratio and 2x1 blocks;
2. ``step()`` between prune events (threshold mode: its masks narrowed and the weights zeroed
   every step; ratio mode: the weights zeroed), with the host crossings (``numpy()``,
   ``item()``, ``to_tensor`` ...) our steps made, counted;
3. the pruner's extra memory per prunable weight (masks held; masks written into checkpoints);
4. the amortized cost of ``pruner.step()`` in a MobileNetV1 training step under GMP.

With ``--baseline REF`` the engine of an earlier commit runs next to the current one (events and
steps), so that a before/after comparison comes from one run on one machine load.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/engine_overhead.py --baseline f6ed9c4   # writes results
    python benchmarks/engine_overhead.py --device gpu --out results/engine_overhead_gpu.md
    python benchmarks/engine_overhead.py --smoke --out /tmp/eo.md               # tiny, for tests

PaddleSlim's 2x1 block path loops in Python over every block (~20 s per update on MobileNetV1),
so it is timed once per model; with ``--slim-block-max-params N`` it is timed on the first
prunable parameters up to N weights and extrapolated linearly to all of them (the output says so).
"""
import argparse
import os

from _common import (RESULTS_DIR, build_mobilenet_v1, build_yolov3_mobilenet_v1, count_params,
                     engine_version, quiet_logs)
from engine_overhead_measure import (HostCrossingCounter, load_baseline_engine, measure_events,
                                     measure_memory, measure_steady_steps, timed)
from engine_overhead_report import render
from engine_overhead_training import measure_training_overhead

import numpy as np  # noqa: E402
import paddle  # noqa: E402  (after _common, which puts the repository on sys.path)
from prune_plugin.core import kernels  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog='examples:\n  python benchmarks/engine_overhead.py --baseline main\n'
               '  python benchmarks/engine_overhead.py --device gpu --out /tmp/eo_gpu.md\n'
               '  python benchmarks/engine_overhead.py --smoke --out /tmp/eo.md',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--smoke', action='store_true',
                        help='tiny settings (MobileNetV1 x0.25 only, 2 train steps at 64x64, '
                             'PaddleSlim blocks on 20k weights)')
    parser.add_argument('--device', choices=('cpu', 'gpu'), default='cpu',
                        help='where weights, masks and the training step live (gpu: needs a '
                             'CUDA build of paddlepaddle)')
    parser.add_argument('--baseline', metavar='GIT_REF', default=None,
                        help="also time this commit's engine (events and steps), side by side")
    parser.add_argument('--repeats', type=int, default=3, help='timed repeats per prune event')
    parser.add_argument('--step-repeats', type=int, default=15,
                        help='timed steady steps per pruner (PaddleSlim: at most 3)')
    parser.add_argument('--steps', type=int, default=8, help='timed train steps per pruner')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--scale', type=float, default=1.0, help='MobileNetV1 width multiplier')
    parser.add_argument('--slim-block-max-params', type=int, default=0,
                        help='time PaddleSlim blocks on at most this many weights (0: all)')
    parser.add_argument('--skip-yolo', action='store_true', help='MobileNetV1 only')
    parser.add_argument('--out', default=None,
                        help='markdown file (default: results/engine_overhead.md, with --device '
                             'gpu results/engine_overhead_gpu.md)')
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeats, args.step_repeats, args.steps = 1, 3, 2
        args.batch, args.size, args.scale = 2, 64, 0.25
        args.skip_yolo = True
        args.slim_block_max_params = args.slim_block_max_params or 20000
    if args.out is None:
        args.out = os.path.join(RESULTS_DIR, 'engine_overhead' + (
            '_gpu' if args.device == 'gpu' else '') + '.md')
    return args


def _set_device(device):
    if device == 'gpu' and not paddle.is_compiled_with_cuda():
        raise SystemExit("--device gpu: this paddlepaddle is not compiled with CUDA "
                         "(install paddlepaddle-gpu); nothing was measured")
    paddle.set_device(device)


def copy_bandwidth(megabytes=256, repeats=5):
    """Bytes per second that numpy's ``copyto`` reads plus writes (best of ``repeats``)."""
    source = np.ones(megabytes * (1 << 20) // 4, np.float32)
    target = np.empty_like(source)
    best = min(timed(np.copyto, target, source) for _ in range(repeats))
    return 2 * source.nbytes / best


def main(argv=None):
    args = parse_args(argv)
    _set_device(args.device)
    quiet_logs()
    baseline = load_baseline_engine(args.baseline) if args.baseline else None
    counter = HostCrossingCounter()
    paddle.seed(0)
    models = [('MobileNetV1' + ('' if args.scale == 1.0 else f' x{args.scale}'),
               build_mobilenet_v1(scale=args.scale))]
    if not args.skip_yolo:
        models.append(('YOLOv3-MobileNetV1', build_yolov3_mobilenet_v1()))
    event_rows, step_rows, memory_rows = [], [], []
    for name, model in models:
        print(f"{name}: {count_params(model):,} params", flush=True)
        memory_rows.append(measure_memory(name, model))
        event_rows += measure_events(name, model, args.repeats, args.slim_block_max_params,
                                     baseline)
        step_rows += measure_steady_steps(name, model, args.step_repeats, 3, counter, baseline)
    overhead = measure_training_overhead(args.steps, args.batch, args.size, args.scale)
    args.engine = engine_version()
    args.copy_bandwidth = copy_bandwidth() if args.device == 'cpu' else None
    args.host_loops = 'native' if kernels.native_loops() else 'numpy'
    args.host_threads = kernels.host_threads()
    report, _ = render(event_rows, step_rows, memory_rows, overhead, args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as handle:
        handle.write(report)
    print(report)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
