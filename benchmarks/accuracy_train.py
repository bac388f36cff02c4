"""One training of the paired accuracy benchmark: a dense parent, or one fine-tune of it.

A *parent* is MobileNetV1 (PaddleClas' arch) trained dense from scratch with the seed's parent
batch plan. A *fine-tune* starts from the parent's saved weights with a fresh optimizer, the
fine-tune learning-rate schedule and the seed's fine-tune batch plan; only the pruner differs
between the fine-tunes of one seed (none for the dense baseline). The loop is the reference's:
``pruner.step()`` after ``optimizer.step()``, ``pruner.update_params()`` before the save.
Figures (top-1, exact zero counts) are read back from the saved checkpoint by a fresh model.
"""
import hashlib
import os
import time

import numpy as np

from _common import build_mobilenet_v1, engine_version, make_slim_pruner, quiet_logs
from accuracy_data import batch_plan, load_split, plan_digest, shifted

ROWS = (
    ('dense fine-tune', None),
    ('ratio 0.55', dict(mode='ratio', ratio=0.55)),
    ('threshold 0.01', dict(mode='threshold', threshold=0.01)),
    ('ratio 0.75 conv1x1 GMP', dict(gmp=True, ratio=0.75, prune_params_type='conv1x1_only')),
    ('ratio 0.75 conv1x1 GMP 2x1 blocks', dict(gmp=True, ratio=0.75, prune_params_type='conv1x1_only',
                                               sparse_block=[2, 1])),
    ('ratio 0.80 conv1x1 GMP', dict(gmp=True, ratio=0.80, prune_params_type='conv1x1_only')),
    ('ratio 0.90 conv1x1 GMP', dict(gmp=True, ratio=0.90, prune_params_type='conv1x1_only')),
    ('2:4 pattern', dict(mode='ratio', sparse_pattern='2:4')),
)
PRUNERS = ('prune_plugin', 'PaddleSlim')
FINETUNE_PLAN_OFFSET = 1000  # fine-tune data order: seed + offset (parent: seed)


def implementations(row_kwargs):
    """Who runs a row: 'dense' for the baseline; PaddleSlim has no n:m pattern."""
    if row_kwargs is None:
        return ('dense',)
    if 'sparse_pattern' in row_kwargs:
        return ('prune_plugin',)
    return PRUNERS


def gmp_configs(total_iterations, pruning_steps):
    """GMP from a trained model, as the reference's ImageNet demo: no stable phase, the ratio
    rises over the first half (``pruning_steps`` increases from 0.15), the second half at target."""
    pruning = total_iterations // 2
    return dict(stable_iterations=0, pruning_iterations=pruning,
                tunning_iterations=total_iterations - pruning, pruning_steps=pruning_steps,
                initial_ratio=0.15)


def build_pruner(impl, row_kwargs, model, optimizer, total_iterations, pruning_steps):
    """The row's pruner, prune_plugin's or PaddleSlim's, with the same settings (None: dense)."""
    if impl == 'dense':
        return None
    kwargs = dict(row_kwargs)
    gmp = kwargs.pop('gmp', False)
    configs = gmp_configs(total_iterations, pruning_steps) if gmp else None
    if impl == 'prune_plugin':
        from prune_plugin.core import GMPUnstructuredPruner, UnstructuredPruner
        if gmp:
            return GMPUnstructuredPruner(model, optimizer=optimizer, configs=configs, **kwargs)
        return UnstructuredPruner(model, optimizer=optimizer, **kwargs)
    if gmp:
        return make_slim_pruner(model, gmp=True, configs=dict(configs, resume_iteration=0),
                                **kwargs)
    return make_slim_pruner(model, **kwargs)


def weights_digest(state):
    """A short fingerprint of a state dict's values (equal digests: identical weights)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(
            value.numpy() if hasattr(value, 'numpy') else np.asarray(value)).tobytes())
    return digest.hexdigest()[:16]


def evaluate(model, images, labels, batch=500):
    """Top-1 of ``model`` on ``images`` (eval mode), as a fraction."""
    import paddle
    model.eval()
    correct = 0
    with paddle.no_grad():
        for first in range(0, len(images), batch):
            logits = model(paddle.to_tensor(images[first:first + batch])).numpy()
            correct += int((logits.argmax(axis=1) == labels[first:first + batch]).sum())
    model.train()
    return correct / len(images)


def _optimizer(model, lr, steps, weight_decay):
    import paddle
    schedule = paddle.optimizer.lr.CosineAnnealingDecay(lr, T_max=steps)
    optimizer = paddle.optimizer.Momentum(schedule, momentum=0.9, parameters=model.parameters(),
                                          weight_decay=paddle.regularizer.L2Decay(weight_decay))
    return optimizer, schedule


def run_plan(model, optimizer, schedule, plan, images, labels, pruner=None):
    """Train over ``plan``; return seconds spent inside the pruner (PaddleSlim: with its hooks)."""
    import paddle
    prune_seconds = 0.0
    for indices, shifts in plan:
        batch = paddle.to_tensor(shifted(images[indices], shifts))
        loss = paddle.nn.functional.cross_entropy(model(batch),
                                                  paddle.to_tensor(labels[indices][:, None]))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        schedule.step()
        if pruner is not None:
            start = time.perf_counter()
            pruner.step()
            prune_seconds += time.perf_counter() - start
    if pruner is not None:
        start = time.perf_counter()
        pruner.update_params()
        prune_seconds += time.perf_counter() - start + getattr(pruner, 'hook_seconds', 0.0)
    return prune_seconds


def parent_path(args, dataset, seed):
    return os.path.join(args.work_dir, 'parents', f"{dataset}_seed{seed}.pdparams")


def train_parent(task):
    """Train the dense parent of (dataset, seed) from scratch; save it; return its record."""
    dataset, seed, args = task
    import paddle
    quiet_logs()
    paddle.set_device('cpu')
    (train_x, train_y), (val_x, val_y) = load_split(dataset, args.image_size, args.train_subset,
                                                  args.val_subset)
    paddle.seed(seed)
    model = build_mobilenet_v1(scale=args.scale, class_num=10)
    plan = batch_plan(len(train_x), args.parent_epochs, args.batch, seed)
    optimizer, schedule = _optimizer(model, args.lr, len(plan), args.weight_decay)
    start = time.perf_counter()
    run_plan(model, optimizer, schedule, plan, train_x, train_y)
    seconds = time.perf_counter() - start
    path = parent_path(args, dataset, seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    state = model.state_dict()
    paddle.save(state, path)
    return dict(kind='parent', dataset=dataset, seed=seed, weights=weights_digest(state),
                data_order=plan_digest(plan), steps=len(plan), top1=evaluate(model, val_x, val_y),
                train_seconds=seconds)


def finetune(task):
    """Fine-tune the parent of (dataset, seed) with one row's pruner; return its record."""
    dataset, row, impl, seed, args = task
    import paddle
    quiet_logs()
    paddle.set_device('cpu')
    row_kwargs = dict(ROWS)[row]
    (train_x, train_y), (val_x, val_y) = load_split(dataset, args.image_size, args.train_subset,
                                                  args.val_subset)
    paddle.seed(seed)
    model = build_mobilenet_v1(scale=args.scale, class_num=10)
    model.set_state_dict(paddle.load(parent_path(args, dataset, seed)))
    start_weights = weights_digest(model.state_dict())
    plan = batch_plan(len(train_x), args.finetune_epochs, args.finetune_batch,
                      seed + FINETUNE_PLAN_OFFSET)
    optimizer, schedule = _optimizer(model, args.finetune_lr, len(plan), args.weight_decay)
    pruner = build_pruner(impl, row_kwargs, model, optimizer, len(plan), args.pruning_steps)
    start = time.perf_counter()
    prune_seconds = run_plan(model, optimizer, schedule, plan, train_x, train_y, pruner)
    seconds = time.perf_counter() - start
    path = os.path.join(args.work_dir, f"{dataset}_{row.replace(' ', '_').replace(':', '-')}_"
                                       f"{impl}_{seed}.pdparams")
    paddle.save(model.state_dict(), path)
    figures = checkpoint_figures(path, args, row_kwargs, val_x, val_y)
    os.remove(path)
    return dict(kind='finetune', dataset=dataset, row=row, impl=impl, seed=seed,
                start_weights=start_weights, data_order=plan_digest(plan), steps=len(plan),
                engine=engine_version(), prune_seconds=prune_seconds, train_seconds=seconds,
                **figures)


def checkpoint_figures(path, args, row_kwargs, val_x, val_y):
    """Top-1 and exact zero counts of a saved checkpoint, loaded into a fresh model.

    Returns:
        dict with ``top1``; ``zeros`` / ``count`` over all parameters; ``conv1x1_zeros`` /
        ``conv1x1_count``; ``prunable_zeros`` / ``prunable_count`` over the weights the row
        prunes (as prune_plugin selects them; None for the dense row).
    """
    import paddle
    from prune_plugin.core import UnstructuredPruner
    from prune_plugin.core.selection import is_conv1x1_shape
    state = paddle.load(path)
    model = build_mobilenet_v1(scale=args.scale, class_num=10)
    own = dict(model.state_dict())
    model.set_state_dict({k: v for k, v in state.items() if k in own})  # not PaddleSlim's masks
    params = dict(model.named_parameters())

    def zeros_and_count(names):
        arrays = [np.asarray(state[n].numpy() if hasattr(state[n], 'numpy') else state[n])
                  for n in names]
        return (sum(int(a.size - np.count_nonzero(a)) for a in arrays),
                sum(int(a.size) for a in arrays))

    figures = {}
    figures['zeros'], figures['count'] = zeros_and_count(list(params))
    figures['conv1x1_zeros'], figures['conv1x1_count'] = zeros_and_count(
        [n for n, p in params.items() if is_conv1x1_shape(p.shape)])
    figures['prunable_zeros'] = figures['prunable_count'] = None
    if row_kwargs is not None:
        kwargs = {k: v for k, v in row_kwargs.items() if k != 'gmp'}
        if row_kwargs.get('gmp'):
            kwargs['mode'] = 'ratio'
        names = [p.name for p in UnstructuredPruner(model, **kwargs).params]
        figures['prunable_zeros'], figures['prunable_count'] = zeros_and_count(names)
    figures['top1'] = evaluate(model, val_x, val_y)
    return figures
