"""The GMP (gradual magnitude pruning) ratio schedule of Zhu & Gupta (2017)."""
from dataclasses import dataclass

from .errors import PruneConfigError
from .validation import MAX_INT, check_initial_ratio, check_int, check_ratio, is_int

GMP_KEYS = ('stable_iterations', 'pruning_iterations', 'tunning_iterations', 'resume_iteration',
            'pruning_steps', 'initial_ratio')


@dataclass(frozen=True)
class GMPSchedule:
    """Cubic ratio schedule: 0 while stable, rising from ``initial_ratio`` to ``target_ratio``.

    The ratio changes every ``pruning_iterations // pruning_steps`` iterations; pruning step i of N
    uses ``r0 + (rT - r0) * (1 - (1 - i/N)**3)``, exactly as PaddleSlim's GMPUnstructuredPruner.

    Attributes:
        target_ratio: Final ratio rT.
        initial_ratio: Ratio r0 of the first pruning step.
        stable_iterations: Iterations at ratio 0 before pruning starts.
        pruning_iterations: Iterations over which the ratio rises.
        tunning_iterations: Iterations at rT afterwards (kept for the reference's spelling).
        pruning_steps: Number of ratio increases.
    """
    target_ratio: float
    initial_ratio: float
    stable_iterations: int
    pruning_iterations: int
    tunning_iterations: int
    pruning_steps: int

    def __post_init__(self):
        for key in ('stable_iterations', 'pruning_iterations', 'tunning_iterations'):
            object.__setattr__(self, key, check_int(f"configs.{key}", getattr(self, key)))
        object.__setattr__(self, 'pruning_steps',
                           check_int("configs.pruning_steps", self.pruning_steps, minimum=1))
        object.__setattr__(self, 'target_ratio', check_ratio("ratio", self.target_ratio))
        object.__setattr__(self, 'initial_ratio', check_initial_ratio(
            "configs.initial_ratio", self.initial_ratio, self.target_ratio))
        if self.pruning_iterations < self.pruning_steps:
            raise PruneConfigError(
                "configs.pruning_iterations", self.pruning_iterations,
                f"an int >= pruning_steps ({self.pruning_steps}), so the ratio rises at most once "
                "per iteration")

    @property
    def period(self):
        """Iterations between two ratio increases."""
        return self.pruning_iterations // self.pruning_steps

    @property
    def stable_steps(self):
        return int(float(self.stable_iterations) / self.pruning_iterations * self.pruning_steps)

    @property
    def total_iterations(self):
        return self.stable_iterations + self.pruning_iterations + self.tunning_iterations

    def ratio_at(self, iteration):
        """Ratio in force at ``iteration`` (0-based, the iteration whose update it follows)."""
        return gmp_ratio_at(iteration, self)

    @classmethod
    def from_configs(cls, target_ratio, configs):
        """Build from the reference's ``configs`` dict; unknown keys are an error."""
        if not isinstance(configs, dict):
            raise PruneConfigError("configs", configs, f"a dict with keys {list(GMP_KEYS)}")
        unknown = sorted(set(configs) - set(GMP_KEYS))
        if unknown:
            raise PruneConfigError(f"configs.{unknown[0]}", configs[unknown[0]],
                                   f"one of the keys {list(GMP_KEYS)}")
        missing = [k for k in GMP_KEYS if k != 'resume_iteration' and k not in configs]
        if missing:
            raise PruneConfigError(f"configs.{missing[0]}", None, "a value (it is required)")
        return cls(target_ratio=target_ratio, initial_ratio=configs['initial_ratio'],
                   stable_iterations=configs['stable_iterations'],
                   pruning_iterations=configs['pruning_iterations'],
                   tunning_iterations=configs['tunning_iterations'],
                   pruning_steps=configs['pruning_steps'])


def resume_iteration_of(configs):
    """The iteration GMP ``configs`` resume at: ``resume_iteration``, 0 when absent or None.

    PaddleSlim's auto-compression passes ``-1`` for a fresh start
    (``paddleslim/auto_compression/compressor.py``); it is read as 0, as ``range(-1)`` in
    PaddleSlim's pruner pops no ratio. (PaddleSlim's own ``step()`` then runs its first ratio
    update one call later; here the schedule starts at iteration 0 either way.)

    Raises:
        PruneConfigError: anything but None, -1 or an int in ``[0, 2**31 - 1]``.

    Example:
        >>> resume_iteration_of({'resume_iteration': -1}), resume_iteration_of({})
        (0, 0)
    """
    resume = configs.get('resume_iteration') if isinstance(configs, dict) else None
    if resume is None or (is_int(resume) and resume == -1):
        return 0
    if not is_int(resume) or not 0 <= resume <= MAX_INT:
        raise PruneConfigError("configs.resume_iteration", resume,
                               f"an int in [0, {MAX_INT}], or -1 for a fresh start (as "
                               "PaddleSlim's auto-compression passes)")
    return int(resume)


def gmp_ratio_at(iteration, schedule):
    """GMP ratio at ``iteration`` for ``schedule``.

    Args:
        iteration: 0-based global iteration.
        schedule: A :class:`GMPSchedule`.

    Returns:
        float ratio in [0, target_ratio].

    Example:
        >>> s = GMPSchedule(0.75, 0.15, 0, 1000, 0, 10)
        >>> gmp_ratio_at(0, s), round(gmp_ratio_at(500, s), 4), gmp_ratio_at(1000, s)
        (0.15, 0.675, 0.75)
    """
    step = iteration // schedule.period
    if step < schedule.stable_steps:
        return 0.0
    i = step - schedule.stable_steps
    if i >= schedule.pruning_steps:
        return float(schedule.target_ratio)
    r0, rt = schedule.initial_ratio, schedule.target_ratio
    return float(r0 + (rt - r0) * (1.0 - (1.0 - i / schedule.pruning_steps) ** 3))
