"""Statistics of the paired accuracy benchmark: per-seed differences and t intervals (pure).

The benchmark's unit of replication is the seed: one dense parent per seed, and from it every
fine-tune of that seed. A row's effect is measured per seed (sparse minus dense fine-tune, or
prune_plugin minus PaddleSlim) and summarised over seeds with a Student-t interval, which is the
right interval for a mean of a handful of independent differences.
"""
import math

from scipy import stats as _scipy_stats


def paired_differences(values_a, values_b):
    """``a - b`` for every seed present in both.

    Args:
        values_a: ``{seed: value}``.
        values_b: ``{seed: value}``.

    Returns:
        ``{seed: a - b}`` over the seeds the two share, in seed order.

    Example:
        >>> paired_differences({0: 0.95, 1: 0.97}, {0: 0.96, 2: 0.9})
        {0: -0.010000000000000009}
    """
    return {seed: values_a[seed] - values_b[seed]
            for seed in sorted(set(values_a) & set(values_b))}


def t_interval(values, confidence=0.95):
    """Mean and two-sided Student-t confidence interval of ``values``.

    Args:
        values: Numbers, one per independent replicate (here: per seed).
        confidence: Coverage of the interval, in (0, 1).

    Returns:
        ``dict(n, mean, sd, half_width, low, high)``; ``sd``, ``half_width``, ``low`` and ``high``
        are None when there are fewer than two values (no spread to estimate).

    Raises:
        ValueError: no values, or ``confidence`` outside (0, 1).

    Example:
        >>> ci = t_interval([1, 2, 3, 4, 5])
        >>> ci['mean'], round(ci['half_width'], 4)
        (3.0, 1.9632)
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("t_interval needs at least one value, got none")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} should be a float in (0, 1)")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return dict(n=n, mean=mean, sd=None, half_width=None, low=None, high=None)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half_width = t_critical(confidence, n - 1) * sd / math.sqrt(n)
    return dict(n=n, mean=mean, sd=sd, half_width=half_width, low=mean - half_width,
                high=mean + half_width)


def t_critical(confidence, degrees_of_freedom):
    """Two-sided Student-t critical value, e.g. 2.776 for 95% and 4 degrees of freedom."""
    return float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, degrees_of_freedom))
