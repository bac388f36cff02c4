"""Every loss entry of a PaddleSeg clone's configs, built and run forward + backward on this Paddle.

Collects the distinct ``loss`` / ``distill_loss`` entries (nested ``MixedLoss`` ones as they are
written) of every config under ``configs/`` and ``contrib/``, builds each with the clone's own
``SegBuilder`` and runs it on small random inputs of the shapes its models give it, then the
backward pass. Each entry ends as ``ok`` (values of shape ``[1]``), ``0-d`` (runs, but a value
of shape ``[]``: the paddleseg 2.8.0 wheel's ``core.train`` indexes ``l[0]``) or ``FAIL``.

    python benchmarks/checkouts/ppseg_losses.py /path/to/PaddleSeg          # paddleseg as is
    python benchmarks/checkouts/ppseg_losses.py /path/to/PaddleSeg --fix    # + the plugin's fixes
"""
import argparse
import collections
import json
import os
import sys

import numpy as np
import yaml

N, C, H, W = 2, 3, 16, 16


def loss_entries(clone):
    """``{type: [entry, ...]}``: the distinct loss entries of the clone's configs."""
    found = collections.OrderedDict()

    def visit(node):
        if isinstance(node, dict):
            if 'type' in node:
                found.setdefault(node['type'], {})[json.dumps(node, sort_keys=True)] = node
            for key, value in node.items():
                if not (node.get('type') == 'MixedLoss' and key == 'losses'):
                    visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for top in ('configs', 'contrib'):
        for folder, _, files in sorted(os.walk(os.path.join(clone, top))):
            for name in sorted(f for f in files if f.endswith(('.yml', '.yaml'))):
                with open(os.path.join(folder, name), encoding='utf-8') as f:
                    data = yaml.load(f, Loader=yaml.FullLoader)
                for key in ('loss', 'distill_loss'):
                    if isinstance(data, dict) and isinstance(data.get(key), dict):
                        visit(data[key].get('types'))
    return {t: list(v.values()) for t, v in found.items()}


def inputs(entry, rng):
    """Arguments for ``entry``'s forward, shaped as PaddleSeg's models give them."""
    import paddle

    def t(array, grad=False):
        x = paddle.to_tensor(array)
        x.stop_gradient = not grad
        return x

    def seg(classes=C, size=(H, W)):
        label = rng.randint(0, classes, (N, *size)).astype('int64')
        label[0, 0, :4] = 255
        return t(rng.randn(N, classes, *size).astype('float32'), True), t(label)

    def binary():
        return (t(rng.randn(N, 1, H, W).astype('float32'), True),
                t(rng.randint(0, 2, (N, 1, H, W)).astype('int64')))

    kind = entry['type']
    inner = [e['type'] for e in entry.get('losses', [])]
    if isinstance(entry.get('weight'), list):
        return seg(len(entry['weight']))
    if kind in ('BCELoss', 'LovaszHingeLoss'):
        return binary()
    if kind == 'MixedLoss' and 'BCELoss' in inner:  # multilabel maps
        return (t(rng.randn(N, C, H, W).astype('float32'), True),
                t(rng.randint(0, 2, (N, C, H, W)).astype('int64')))
    if kind == 'RMILoss' or 'RMILoss' in inner:
        return seg(entry.get('num_classes', 19))
    if kind == 'DetailAggregateLoss':
        return binary()[0], seg()[1]
    if kind == 'KLLoss':
        return seg()[0], t(rng.randn(N, C, H, W).astype('float32'))
    if kind in ('EdgeAttentionLoss', 'OhemEdgeAttentionLoss'):
        logit, label = seg()
        return (logit, t(rng.rand(N, 1, H, W).astype('float32'))), label
    if kind == 'PointCrossEntropyLoss':
        points = t(rng.rand(N, 10, 2).astype('float32'))
        return (t(rng.randn(N, C, 10).astype('float32'), True), points), seg()[1]
    if kind == 'PixelContrastCrossEntropyLoss':
        logit, label = seg(size=(32, 32))
        return {'seg': logit, 'embed': t(rng.randn(N, 8, 32, 32).astype('float32'), True)}, label
    if kind == 'SECrossEntropyLoss':
        return t(rng.randn(N, C).astype('float32'), True), seg()[1]
    if kind == 'BootstrappedCrossEntropyLoss':
        return seg(size=(72, 72))
    if kind == 'MaskFormerLoss':
        classes = rng.randint(0, entry.get('num_classes', 150), (N, 3)).astype('int64')
        classes[:, -1] = 255
        logits = {'pred_logits': t(rng.randn(N, 5, entry.get('num_classes', 150) + 1).astype(
            'float32'), True), 'pred_masks': t(rng.randn(N, 5, H, W).astype('float32'), True)}
        return logits, {'gt_masks': t(rng.randint(0, 2, (N, 3, H, W)).astype('int64')),
                        'gt_classes': t(classes)}
    return seg()


def run_entry(entry, fix):
    import paddle
    from paddleseg.cvlibs import SegBuilder

    class OneConfig:
        train_dataset_cfg = {'type': 'Dataset'}

    loss = SegBuilder(OneConfig()).build_component(entry)
    if fix:
        from prune_plugin.adapters.ppseg.losses import make_losses_paddle3_ready
        make_losses_paddle3_ready([loss])
    paddle.seed(0)
    try:
        out = loss(*inputs(entry, np.random.RandomState(0)))
        values = list(out) if isinstance(out, (list, tuple)) else [out]
        sum(values).backward()
    except Exception as err:  # noqa: BLE001 - the point is to see which fail, and how
        return 'FAIL', f"{type(err).__name__}: {' '.join(str(err).split())[:110]}"
    shapes = [list(v.shape) for v in values]
    return ('ok' if all(s == [1] for s in shapes) else '0-d'), str(shapes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('clone')
    parser.add_argument('--fix', action='store_true', help="apply make_losses_paddle3_ready")
    args = parser.parse_args(argv)
    clone = os.path.abspath(args.clone)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
    from prune_plugin.suites import activate, describe_loaded_suite
    activate(clone, 'ppseg')
    import paddle
    import paddleseg.utils.logger as seg_logger
    seg_logger.log_level = 0
    print(f"Paddle {paddle.__version__}; {describe_loaded_suite('ppseg', clone).describe()}; "
          f"{'with' if args.fix else 'without'} the plugin's loss fixes")
    tally = collections.Counter()
    for kind, entries in loss_entries(clone).items():
        for entry in entries:
            status, detail = run_entry(entry, args.fix)
            tally[status] += 1
            print(f"{status:5s} {json.dumps(entry, sort_keys=True)[:80]:80s} {detail}")
    print(f"{sum(tally.values())} entries: " + ', '.join(f"{k} {v}" for k, v in
                                                        sorted(tally.items())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
