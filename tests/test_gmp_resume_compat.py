"""GMP ``configs['resume_iteration']``: -1 is a fresh start, as PaddleSlim's auto-compression
passes it (paddleslim/auto_compression/compressor.py, release/2.6)."""
import numpy as np
import paddleslim  # installed by scripts/install.sh
import pytest

from engine_helpers import make_model
from prune_plugin import GMPUnstructuredPruner, PruneConfigError

CONFIGS = {'stable_iterations': 0, 'pruning_iterations': 60, 'tunning_iterations': 20,
           'pruning_steps': 4, 'initial_ratio': 0.15}


def ratios_and_masks(resume, steps=90):
    configs = dict(CONFIGS) if resume == 'absent' else dict(CONFIGS, resume_iteration=resume)
    pruner = GMPUnstructuredPruner(make_model(), ratio=0.75, configs=configs)
    assert pruner.iteration == 0
    ratios, masks = [], []
    for _ in range(steps):
        pruner.step()
        ratios.append(pruner.ratio)
        masks.append({p.name: pruner.mask_of(p.name).copy() for p in pruner.params})
    return ratios, masks


def test_minus_one_trains_exactly_as_a_fresh_start():
    fresh_ratios, fresh_masks = ratios_and_masks(0)
    for resume in (-1, None, 'absent'):
        ratios, masks = ratios_and_masks(resume)
        assert ratios == fresh_ratios, resume
        for got, want in zip(masks, fresh_masks):
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])
    # the schedule from iteration 0: 0.15 for 15 iterations, then up to 0.75 at iteration 60
    assert fresh_ratios[0] == 0.15 and fresh_ratios[14] == 0.15
    assert fresh_ratios[15] == pytest.approx(0.15 + 0.6 * (1 - 0.75 ** 3))
    assert fresh_ratios[60:] == [0.75] * 30


def test_paddleslim_reads_minus_one_as_a_fresh_start_one_step_late():
    """PaddleSlim 2.6 with -1 pops no ratio at construction (``range(-1)``) and keeps
    ``cur_iteration = -1``: its step() then runs our schedule one call late. Its stack is the
    same as with 0, and with 0 its ratios equal ours call for call."""
    slim = {r: paddleslim.GMPUnstructuredPruner(make_model(), ratio=0.75,
                                                 configs=dict(CONFIGS, resume_iteration=r))
            for r in (-1, 0)}
    assert slim[-1].ratios_stack == slim[0].ratios_stack and slim[-1].ratio == 0.0
    assert slim[-1].cur_iteration == -1
    ours, _ = ratios_and_masks(-1)
    for resume, lag in ((0, 0), (-1, 1)):
        stack, ratio, cur = list(slim[resume].ratios_stack), 0.0, slim[resume].cur_iteration
        period = slim[resume].ratio_increment_period
        theirs = []
        for _ in range(90):  # PaddleSlim's step(): the ratio logic, without its masks
            if cur % period == 0:
                ratio = stack.pop() if stack else 0.75
            theirs.append(ratio)
            cur += 1
        assert theirs[lag:] == pytest.approx(ours[:90 - lag]), resume
        assert theirs[:lag] == [0.0] * lag


@pytest.mark.parametrize('value', [-2, -1.0, 0.5, '-1', True, [0], 2**31])
def test_other_values_are_refused_with_the_key(value):
    with pytest.raises(PruneConfigError) as err:
        GMPUnstructuredPruner(make_model(), ratio=0.75,
                              configs=dict(CONFIGS, resume_iteration=value))
    assert err.value.key == 'configs.resume_iteration' and err.value.value == value
    assert str(err.value).endswith("expected an int in [0, 2147483647], or -1 for a fresh start "
                                   "(as PaddleSlim's auto-compression passes)")


def test_a_positive_resume_iteration_still_resumes():
    pruner = GMPUnstructuredPruner(make_model(), ratio=0.75,
                                   configs=dict(CONFIGS, resume_iteration=25))
    assert pruner.iteration == 25 and pruner.ratio == pruner.ratio_at(24)
