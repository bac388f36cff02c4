"""``python -m prune_plugin.static_demo train``: the reference's static training loop with
:mod:`prune_plugin.static` (``exe.run``; ``lr.step()``; ``pruner.step()``; ``update_params()``
before evaluating and saving)."""
import hashlib
import os
import sys
import time

import numpy as np
import paddle

from .checkpoint import load_all, load_params, read_pruner_file, save
from .data import epoch_batches, eval_batches, load_dataset, steps_per_epoch
from .flags import DemoInputError
from .network import build_eval, build_train


def _log(message):
    print(f"[static_demo] {message}", flush=True)


def _distributed_world(args):
    """``(rank, world_size)``; ``--is_distributed`` initializes the process group (gloo on CPU)."""
    if not args.is_distributed:
        return 0, 1
    if os.environ.get('FLAGS_enable_pir_api') in ('0', 'false', 'False'):
        raise DemoInputError("--is_distributed needs PIR programs (unset FLAGS_enable_pir_api): "
                             "collective ops of legacy programs do not run on CPU in Paddle 3.3")
    if int(os.environ.get('PADDLE_TRAINERS_NUM', '1')) < 2:
        raise DemoInputError("--is_distributed needs 2+ ranks: run it under python -m "
                             "paddle.distributed.launch --nproc_per_node N")
    paddle.distributed.init_parallel_env()
    return paddle.distributed.get_rank(), paddle.distributed.get_world_size()


def _gmp_configs(args, steps):
    return {'stable_iterations': args.stable_epochs * steps,
            'pruning_iterations': args.pruning_epochs * steps,
            'tunning_iterations': args.tunning_epochs * steps,
            'pruning_steps': args.pruning_steps, 'initial_ratio': args.initial_ratio}


def make_pruner(args, program, place, steps):
    """The reference's ``create_unstructured_pruner``, on :mod:`prune_plugin.static`."""
    from prune_plugin.static import GMPUnstructuredPruner, PruneConfigError, UnstructuredPruner
    try:
        if args.pruning_strategy == 'gmp':
            return GMPUnstructuredPruner(program, ratio=args.ratio, place=place,
                                         prune_params_type=args.prune_params_type,
                                         local_sparsity=args.local_sparsity,
                                         configs=_gmp_configs(args, steps))
        return UnstructuredPruner(program, mode=args.pruning_mode, ratio=args.ratio,
                                  threshold=args.threshold, place=place,
                                  prune_params_type=args.prune_params_type,
                                  local_sparsity=args.local_sparsity)
    except PruneConfigError as err:
        raise DemoInputError(str(err)) from None


def evaluate(exe, programs, split, batch_size):
    """Top-1 and top-5 accuracy (fractions) of ``programs`` over ``split``."""
    hits1 = hits5 = 0.0
    for images, labels in eval_batches(split, batch_size):
        top1, top5 = exe.run(programs.main, feed={'image': images, 'label': labels},
                             fetch_list=[programs.top1, programs.top5])
        hits1 += float(np.mean(top1)) * len(labels)
        hits5 += float(np.mean(top5)) * len(labels)
    return hits1 / len(split), hits5 / len(split)


def digest(pruner, scope):
    """``(masks sha1, weights sha1)`` of the prunable parameters."""
    masks = hashlib.sha1(b''.join(pruner.mask_of(p.name).tobytes() for p in pruner.params))
    weights = hashlib.sha1(b''.join(np.array(scope.find_var(p.name).get_tensor()).tobytes()
                                    for p in pruner.params))
    return masks.hexdigest(), weights.hexdigest()


def _resume_state(args, steps):
    """The checkpoint's pruner state, checked against ``--last_epoch``."""
    if args.last_epoch < 0:
        return None
    saved = read_pruner_file(args.checkpoint)
    expected = (args.last_epoch + 1) * steps
    iteration = saved.get('pruner', {}).get('iteration')
    if saved.get('epoch') != args.last_epoch or iteration != expected:
        raise DemoInputError(
            f"--checkpoint={args.checkpoint!r} was saved after epoch {saved.get('epoch')} "
            f"(iteration {iteration}); --last_epoch={args.last_epoch} means iteration {expected}")
    return saved['pruner']


def run(args):
    """Train; returns 0. Raises DemoInputError (exit 2) before any file is written."""
    rank, world = _distributed_world(args)
    dataset = load_dataset(args)
    steps = steps_per_epoch(dataset.train, args.batch_size, world)
    if steps == 0:
        raise DemoInputError(f"--batch_size={args.batch_size} x {world} rank(s) is larger than "
                             f"the {len(dataset.train)} training images")
    resume = _resume_state(args, steps)
    paddle.enable_static()
    paddle.seed(args.seed)  # the same initial weights on every rank
    place = paddle.CPUPlace()
    train = build_train(args, dataset, steps, world)
    val = build_eval(args, dataset)
    pruner = make_pruner(args, train.main, place, steps)
    exe = paddle.static.Executor(place)
    exe.run(train.startup)
    scope = paddle.static.global_scope()
    if resume is not None:
        load_all(args.checkpoint, train.main, exe)
        pruner.set_state_dict(resume)
        pruner.update_params()  # masks read back from the checkpoint's zeros before any update
        _log(f"resumed from {args.checkpoint} at epoch {args.last_epoch + 1}, iteration "
             f"{resume['iteration']}")
    elif args.pretrained_model:
        _log(f"loaded {load_params(args.pretrained_model, train.main)} parameters from "
             f"{args.pretrained_model}")
    for _ in range((args.last_epoch + 1) * steps):
        train.scheduler.step()
    top1 = top5 = None
    for epoch in range(args.last_epoch + 1, args.num_epochs):
        started, losses = time.time(), []
        for batch_id, (images, labels) in enumerate(epoch_batches(
                dataset.train, args.batch_size, epoch, args.seed, rank, world)):
            loss, = exe.run(train.main, feed={'image': images, 'label': labels},
                            fetch_list=[train.loss])
            train.scheduler.step()
            pruner.step()
            losses.append(float(np.mean(loss)))
            if batch_id % args.log_period == 0 and rank == 0:
                _log(f"epoch {epoch} batch {batch_id}: loss {losses[-1]:.4f}")
        pruner.update_params()
        sparsity = pruner.total_sparse(train.main)
        if rank == 0:
            _log(f"epoch {epoch}: loss {np.mean(losses):.4f}, total sparsity "
                 f"{sparsity * 100:.2f}%, {time.time() - started:.1f}s")
        last = epoch == args.num_epochs - 1
        if (epoch + 1) % args.test_period == 0 or last:
            top1, top5 = evaluate(exe, val, dataset.val, args.batch_size_for_validation)
            if rank == 0:
                _log(f"eval epoch {epoch}: top-1 {top1 * 100:.2f}%, top-5 {top5 * 100:.2f}%")
        if ((epoch + 1) % args.model_period == 0 or last) and rank == 0:
            save(os.path.join(args.model_path, f"epoch_{epoch}"), train.main, pruner, epoch)
    masks, weights = digest(pruner, scope)
    _log(f"rank {rank}: iteration {pruner.iteration}, prunable sparsity "
         f"{pruner.sparsity() * 100:.2f}%, masks sha1 {masks}, weights sha1 {weights}, "
         f"last epoch's mean loss on this rank's batches {np.mean(losses):.6f}")
    if rank == 0:
        _log(f"final: top-1 {top1 * 100:.2f}%, top-5 {top5 * 100:.2f}%, total sparsity "
             f"{pruner.total_sparse(train.main) * 100:.2f}%")
    sys.stdout.flush()
    return 0
