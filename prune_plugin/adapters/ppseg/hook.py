"""The hook line for PaddleSeg's own ``tools/train.py`` (2.8 / 2.9), also what ``prune-train`` uses.

In ``tools/train.py``, after the optimizer is built and before ``builder.loss`` is read::

    from prune_plugin.ppseg import attach_pruner
    ...
    optimizer = builder.optimizer
    attach_pruner(builder, model, optimizer, save_dir=args.save_dir,
                  resume_model=args.resume_model)
    loss = builder.loss

paddleseg's own ``Config`` (2.8 and 2.9) keeps the ``slim`` / ``UnstructuredPrune`` keys it does
not know, so the config with the prune block is read as it is (``--opts
UnstructuredPrune.ratio=0.5`` works too). :func:`attach_pruner` makes the config's losses and
paddleseg's metric work on Paddle 3, builds the pruner from the block, attaches it to the
optimizer (state beside each ``iter_N``, resume from ``resume_model``) and to the model's
``state_dict`` (EMA checkpoints), and logs the plan through paddleseg's logger.
"""
import dataclasses
import logging

import paddle
from paddleseg.utils import logger as seg_logger

from ...config import spec_from_config
from ...core.plan import check_steps_per_epoch, run_plan
from .attach import OptimizerPruneHook, mask_state_dicts_of
from .compat import install_metric_fixes
from .losses import make_losses_paddle3_ready
from .state import resumed_iteration
from ..suite_logging import log_through

logger = logging.getLogger('prune_plugin')


def log_through_paddleseg():
    """Route the ``prune_plugin`` logger (INFO and up) to paddleseg's logger (rank 0), once."""
    log_through(lambda: seg_logger)


def prepare_paddleseg():
    """Logging through paddleseg, and its metric fixed when it fails on this Paddle."""
    log_through_paddleseg()
    install_metric_fixes()


def prune_spec_of(cfg):
    """The validated prune block of a paddleseg ``Config`` (or ours), or None without ``slim``.

    Raises:
        PruneConfigError, RegistryError: a bad block.
    """
    if hasattr(cfg, 'prune_spec'):
        return cfg.prune_spec
    return spec_from_config(cfg.dic)


def steps_per_epoch(dataset_size, batch_size):
    """Iterations per epoch of ``paddleseg.core.train``'s sampler (per process, drop_last).

    Raises:
        PruneConfigError: 0 steps (a batch larger than the data each process gets).
    """
    nranks = max(1, paddle.distributed.ParallelEnv().nranks)
    per_rank = -(-dataset_size // nranks)
    steps = per_rank // batch_size if batch_size else 0
    return check_steps_per_epoch(steps, dataset_size=per_rank, batch_size=batch_size)


def attach_pruner(builder, model, optimizer, save_dir='output', resume_model=None):
    """Prune ``model`` during ``paddleseg.core.train`` as the config's prune block says.

    Call it once, after ``optimizer = builder.optimizer`` and before ``builder.loss`` is handed
    to ``train`` (it fixes the loss objects ``builder.loss`` holds, building them if needed).

    Args:
        builder: The ``paddleseg.cvlibs.SegBuilder`` of the config.
        model: The model ``train`` gets (after ``convert_sync_batchnorm``).
        optimizer: ``builder.optimizer``.
        save_dir: ``train``'s ``save_dir`` (the pruner state goes into its ``iter_N`` folders).
        resume_model: ``train``'s ``resume_model`` (``<save_dir>/iter_N``), or None.

    Returns:
        The :class:`OptimizerPruneHook` (``.pruner`` is the pruner), or None when the config has
        no ``slim`` key (the losses and metric are still made to work on Paddle 3).

    Raises:
        PruneConfigError: a bad prune block, 0 steps per epoch, or a bad pruner state in
            ``resume_model``; RegistryError: ``slim`` names no pruner. All before training.

    Example:
        >>> hook = attach_pruner(builder, model, optimizer, save_dir=args.save_dir)
        >>> train(model, builder.train_dataset, optimizer=optimizer, losses=builder.loss, ...)
    """
    prepare_paddleseg()
    cfg = builder.config
    spec = prune_spec_of(cfg)
    fixed = make_losses_paddle3_ready(builder.loss)
    if fixed:
        logger.info("Paddle %s: fixed %s (prune_plugin/adapters/ppseg/losses.py); every loss "
                    "value shaped [1]", paddle.__version__, ', '.join(sorted(set(fixed))))
    if spec is None:
        logger.info("no 'slim:' key in the config: training dense")
        return None
    dataset = builder.train_dataset
    steps = steps_per_epoch(len(dataset), cfg.batch_size)
    pruner = spec.build(model, steps_per_epoch=steps, optimizer=optimizer)
    hook = OptimizerPruneHook(optimizer, pruner, save_dir=save_dir, resume_model=resume_model,
                              total_iterations=cfg.iters)
    mask_state_dicts_of(model, pruner)
    plan = run_plan(pruner, cfg.iters, steps, resumed_iteration(resume_model) or 0)
    logger.info("%s on %d weights in %d parameters: %s", type(pruner).__name__,
                sum(p.param.size for p in pruner.params), len(pruner.params), plan.summary)
    if plan.warning:
        logger.warning(plan.warning)
    return hook


def checkpoint_sparsity(spec, model, weights_name):
    """How sparse ``model``'s weights are where ``spec`` prunes; a warning when not as asked.

    For ``prune-eval`` / ``prune-export`` of a config with a prune block: weights trained
    without a pruner attached (paddleseg's own ``tools/train.py`` ignores the block) are dense.

    Args:
        spec: The config's :class:`~prune_plugin.core.spec.PruneSpec`.
        model: The model with the checkpoint loaded.
        weights_name: What to call the weights in messages (their path).

    Returns:
        The zero fraction of the weights the block selects.
    """
    pruner = dataclasses.replace(spec, gmp=None).build(model)  # the target, no schedule
    sparsity = pruner.prunable_sparsity()
    logger.info("%s: %.2f%% of the %d weights the '%s' block prunes are zero", weights_name,
                100 * sparsity, sum(p.param.size for p in pruner.params), spec.name)
    if spec.mode == 'threshold' and spec.sparse_pattern is None:
        kept = sum(int(((p.param.abs() < spec.threshold) & (p.param != 0)).astype('int64').sum())
                   for p in pruner.params)
        if kept:
            logger.warning("%s: %d weights are below the block's threshold %g but not zero: "
                           "these weights were not trained with the pruner attached (prune-train"
                           ", or attach_pruner in tools/train.py)", weights_name, kept,
                           spec.threshold)
        return sparsity
    target = pruner.target_ratio
    if sparsity + 0.005 < target:
        why = ("they are dense: trained without the pruner attached (paddleseg's own "
               "tools/train.py ignores the block; use prune-train, or attach_pruner in "
               "tools/train.py)") if sparsity < 0.01 else (
               "a checkpoint from before the end of the GMP schedule, or trained without the "
               "pruner attached")
        logger.warning("%s: %.2f%% zeros, below the '%s' block's target %.0f%%: %s",
                       weights_name, 100 * sparsity, spec.name, 100 * target, why)
    return sparsity
