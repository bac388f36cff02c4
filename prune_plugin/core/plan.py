"""What a run will prune, said before it starts, and what it pruned, said when it ends.

A run shorter than its GMP schedule silently ends below the target (20% instead of 75%); a batch
larger than the dataset gives 0 steps per epoch. :func:`run_plan` turns a pruner and the run's
length into the line a user reads at the start (and a warning when the target is out of reach);
:func:`run_result` is the line at the end; :func:`check_steps_per_epoch` names an empty epoch.
"""
from dataclasses import dataclass

from .errors import PruneConfigError


@dataclass(frozen=True)
class RunPlan:
    """The sparsity a run of ``total_iterations`` optimizer steps will reach.

    Attributes:
        summary: One line: mode, schedule in iterations, where the target is reached.
        final_ratio: The ratio in force after the last step (None in threshold mode, where the
            weights decide).
        target_ratio: What the config asks for (None in threshold mode).
        warning: A line when the run ends below the target, else None.
    """
    summary: str
    final_ratio: float
    target_ratio: float
    warning: str = None


def _epochs(iterations, steps_per_epoch):
    if not steps_per_epoch:
        return ''
    return f" = {iterations / steps_per_epoch:g} epochs of {steps_per_epoch} steps"


def run_plan(pruner, total_iterations, steps_per_epoch=None, start_iteration=0):
    """The plan of a run of ``pruner`` over ``total_iterations`` optimizer steps.

    Args:
        pruner: An ``UnstructuredPruner`` / ``GMPUnstructuredPruner``.
        total_iterations: Optimizer steps of the whole run (resumed steps included).
        steps_per_epoch: To also say the schedule in epochs.
        start_iteration: Where a resumed run starts.

    Returns:
        A :class:`RunPlan`.

    Example:
        >>> plan = run_plan(gmp_pruner, total_iterations=2000, steps_per_epoch=100)
        >>> plan.warning   # the schedule needs 4000 steps
        'the run ends at iteration 2000 with 64.1% of the prunable weights pruned, below ...'
    """
    total = int(total_iterations)
    schedule = getattr(pruner, 'schedule', None)
    pattern = getattr(pruner, 'pattern', None)
    resumed = f", resuming at iteration {start_iteration}" if start_iteration else ''
    if schedule is not None:
        target = float(schedule.target_ratio)
        final = schedule.ratio_at(total - 1) if total > 0 else 0.0
        start = schedule.stable_steps * schedule.period
        reached = (schedule.stable_steps + schedule.pruning_steps) * schedule.period
        begin = f"dense until iteration {start}, then" if start else "from the first step,"
        summary = (f"GMP {begin} ratio {schedule.initial_ratio:g} rising to {target:g} in "
                   f"{schedule.pruning_steps} steps of {schedule.period} iterations; target "
                   f"reached at iteration {reached}{_epochs(reached, steps_per_epoch)}; the run "
                   f"has {total} iterations{_epochs(total, steps_per_epoch)}{resumed}")
        warning = None
        if final < target:
            warning = (f"the run ends at iteration {total} with {final:.1%} of the prunable "
                       f"weights pruned, below the target {target:.0%}: GMP needs {reached} "
                       f"iterations (train longer or shorten the gmp schedule)")
        return RunPlan(summary, final, target, warning)
    if pattern is not None:
        n, m = pattern
        ratio = 1.0 - n / m
        return RunPlan(f"{n}:{m} pattern ({ratio:.0%} of the prunable weights) from the first "
                       f"step; {total} iterations{resumed}", ratio, ratio)
    if pruner.mode == 'threshold':
        return RunPlan(f"threshold {pruner.threshold:g}: weights with |w| < {pruner.threshold:g} "
                       f"are pruned at every step (the sparsity depends on the weights); {total} "
                       f"iterations{resumed}", None, None)
    ratio = float(pruner.ratio)
    warning = None if total > 0 else "the run has no optimizer step: nothing will be pruned"
    return RunPlan(f"ratio {ratio:g} from the first step; {total} iterations{resumed}",
                   ratio if total > 0 else 0.0, ratio, warning)


def run_result(pruner):
    """The line at the end of a run: the pruned share of the prunable weights vs the target."""
    target = getattr(pruner, 'target_ratio', None)
    reached = pruner.sparsity()
    by_threshold = pruner.mode == 'threshold' and getattr(pruner, 'pattern', None) is None
    goal = f"threshold {pruner.threshold:g}" if by_threshold else f"target {target:.0%}"
    short = ''
    if not by_threshold and reached + 1e-9 < target:
        short = ' (below the target: the schedule did not finish)'
    return (f"{reached:.2%} of the prunable weights pruned at iteration {pruner.iteration} "
            f"({goal}){short}")


def check_steps_per_epoch(steps_per_epoch, dataset_size=None, batch_size=None, key='batch_size'):
    """Refuse an epoch of 0 steps (a batch larger than the dataset, or an empty dataset).

    Raises:
        PruneConfigError: naming ``key``, the batch size and the dataset size.
    """
    if steps_per_epoch is not None and int(steps_per_epoch) >= 1:
        return int(steps_per_epoch)
    if dataset_size == 0:
        raise PruneConfigError('dataset', 'empty', "a dataset with at least one sample "
                                                    "(0 steps per epoch)")
    raise PruneConfigError(key, batch_size, f"a batch size the dataset ({dataset_size} samples "
                                            "per process) can fill at least once: 0 steps per "
                                            "epoch (drop_last with a batch larger than the data)")
