"""Time ``prune-report`` on a YOLOv3-DarkNet53-sized checkpoint (~62M parameters).

``python -m prune_plugin.report.benchmark [--dir DIR]`` writes random weights with a known number
of zeros (half of every prunable weight) as a ``.pdparams`` file, runs the report on it and prints
the seconds it took (load + scan + format), plus the same with ``--block 2x1 --pattern 2:4``.
"""
import argparse
import contextlib
import io
import os
import pickle
import tempfile
import time

import numpy as np

from .cli import main


def darknet53_yolov3_shapes(num_classes=80):
    """Weight shapes shaped like YOLOv3-DarkNet53 (conv + BN per layer), about 62M parameters."""
    shapes = []

    def conv_bn(name, cout, cin, k):
        shapes.append((f"{name}.conv.weight", (cout, cin, k, k)))
        for part in ('weight', 'bias', '_mean', '_variance'):
            shapes.append((f"{name}.bn.{part}", (cout,)))

    conv_bn('backbone.stem', 32, 3, 3)
    cin = 32
    for stage, (cout, blocks) in enumerate(zip((64, 128, 256, 512, 1024), (1, 2, 8, 8, 4))):
        conv_bn(f"backbone.stage{stage}.down", cout, cin, 3)
        for b in range(blocks):
            conv_bn(f"backbone.stage{stage}.block{b}.conv1", cout // 2, cout, 1)
            conv_bn(f"backbone.stage{stage}.block{b}.conv2", cout, cout // 2, 3)
        cin = cout
    channels = ((1024, 512), (768, 256), (384, 128))
    for level, (c_in, c) in enumerate(channels):
        for i, (co, ci, k) in enumerate(((c, c_in, 1), (2 * c, c, 3), (c, 2 * c, 1),
                                         (2 * c, c, 3), (c, 2 * c, 1), (2 * c, c, 3))):
            conv_bn(f"neck.yolo_block.{level}.conv{i}", co, ci, k)
        shapes.append((f"head.yolo_output.{level}.weight", (3 * (5 + num_classes), 2 * c, 1, 1)))
        shapes.append((f"head.yolo_output.{level}.bias", (3 * (5 + num_classes),)))
        if level < 2:
            conv_bn(f"neck.route.{level}", c // 2, c, 1)
    return shapes


def write_checkpoint(path, seed=0):
    """Write the weights; returns ``(numel, zeros)``: every prunable weight is half zeros."""
    rng = np.random.default_rng(seed)
    state, numel, zeros = {}, 0, 0
    for name, shape in darknet53_yolov3_shapes():
        weight = rng.standard_normal(shape, dtype=np.float32)
        if len(shape) > 1:
            weight.reshape(-1)[::2] = 0.0
        state[name] = weight
        numel += weight.size
        zeros += weight.size - np.count_nonzero(weight)
    with open(path, 'wb') as f:
        pickle.dump(state, f, protocol=4)
    return numel, zeros


def time_report(argv):
    """Seconds ``main(argv)`` takes, output discarded."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return time.perf_counter() - start, code


def run(directory):
    path = os.path.join(directory, 'yolov3_darknet53_like.pdparams')
    numel, zeros = write_checkpoint(path)
    print(f"{path}: {numel / 1e6:.1f}M parameters, {zeros / 1e6:.1f}M zeros, "
          f"{os.path.getsize(path) / 2**20:.0f} MiB")
    for extra in ([], ['--format', 'json'], ['--block', '2x1', '--pattern', '2:4']):
        seconds, code = time_report([path] + extra)
        print(f"prune-report {' '.join(['FILE'] + extra)}: {seconds:.2f} s (exit {code})")


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dir', help="where to write the checkpoint (default: a temp dir)")
    args = parser.parse_args()
    if args.dir:
        run(args.dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(tmp)
