"""Which parameters are pruned, and the ratio/threshold/block/pattern masks on fixed weights."""
import numpy as np
import paddle
import pytest

from engine_helpers import TinyNet, make_model, zeros_of
from prune_plugin import UnstructuredPruner, total_sparse, total_sparse_conv1x1
from prune_plugin.core import masks as mask_ops
from prune_plugin.core import order_stats
from prune_plugin.core.array_ops import DEVICE, HOST
from prune_plugin.core.scores import PRUNED_SCORE, Units, block_scores

BACKENDS = {'device': (DEVICE, paddle.to_tensor), 'host': (HOST, np.asarray)}


def prunable_names(pruner):
    return [p.name for p in pruner.params]


def test_default_skips_norms_and_1d_params():
    pruner = UnstructuredPruner(make_model(), ratio=0.5)
    assert prunable_names(pruner) == ['stem.weight', 'pw1.weight', 'dw.weight', 'pw2.weight',
                                      'fc.weight']


def test_conv1x1_only_and_regex_lists_and_user_hook():
    model = make_model()
    assert prunable_names(UnstructuredPruner(model, prune_params_type='conv1x1_only')) == [
        'pw1.weight', 'pw2.weight']
    assert prunable_names(UnstructuredPruner(model, prune_params=[r'^pw'],
                                             skip_params=[r'pw2'])) == ['pw1.weight']
    # The user hook replaces the default skip set (the reference's skip_params_func).
    hook = UnstructuredPruner(model, skip_params_func=lambda m: {
        n for n, _ in m.named_parameters() if not n.startswith('fc.')})
    assert prunable_names(hook) == ['fc.weight', 'fc.bias']


def test_ratio_prunes_exactly_round_ratio_n_global_and_local():
    model = make_model()
    pruner = UnstructuredPruner(model, ratio=0.55)
    pruner.step()
    n = sum(p.param.size for p in pruner.params)
    assert sum(zeros_of(p.param) for p in pruner.params) == round(0.55 * n)
    model = make_model()
    local = UnstructuredPruner(model, ratio=0.55, local_sparsity=True)
    local.step()
    for p in local.params:
        assert zeros_of(p.param) == round(0.55 * p.param.size), p.name


def test_ties_at_the_threshold_do_not_push_the_count_over():
    model = make_model()
    for p in model.parameters():
        p.set_value(paddle.full(p.shape, 0.5, dtype=p.dtype))  # every weight ties
    pruner = UnstructuredPruner(model, ratio=0.3)
    pruner.step()
    n = sum(p.param.size for p in pruner.params)
    assert sum(zeros_of(p.param) for p in pruner.params) == round(0.3 * n)


def test_ratio_masks_match_paddleslim_reference():
    """PaddleSlim keeps |w| >= t with t the round(rN)-th smallest |w|: it prunes one weight
    fewer than round(rN) (its off-by-one); every other weight gets the same decision."""
    import paddleslim  # installed by scripts/install.sh
    model = make_model()
    slim = paddleslim.UnstructuredPruner(model, 'ratio', ratio=0.55)
    slim.update_threshold()
    ours = UnstructuredPruner(model, ratio=0.55)
    ours.update_masks()
    differing = 0
    for p in ours.params:
        reference_keep = np.abs(p.param.numpy()) >= slim.threshold
        differing += int((ours.mask_of(p.name) != reference_keep).sum())
        # all we prune beyond the reference is the weight at the threshold itself
        extra = reference_keep & ~ours.mask_of(p.name)
        assert np.all(np.abs(p.param.numpy()[extra]) == slim.threshold)
        assert not np.any(~reference_keep & ours.mask_of(p.name))
    assert differing == 1


def test_threshold_masks_equal_the_reference():
    model = make_model()
    pruner = UnstructuredPruner(model, mode='threshold', threshold=0.1)
    before = {p.name: p.param.numpy().copy() for p in pruner.params}
    pruner.step()
    for p in pruner.params:
        np.testing.assert_array_equal(pruner.mask_of(p.name), np.abs(before[p.name]) >= 0.1)
        assert zeros_of(p.param) == int((np.abs(before[p.name]) < 0.1).sum())


def test_blocks_2x1_with_partial_edge_blocks():
    model = make_model()  # pw2 has 13 output channels: the last block is 1x1
    pruner = UnstructuredPruner(model, ratio=0.5, sparse_block=[2, 1],
                                prune_params_type='conv1x1_only')
    pruner.step()
    for p in pruner.params:
        keep = pruner.mask_of(p.name)
        assert mask_ops.satisfies_block(keep, (2, 1), p.out_axis, p.in_axis), p.name
    n = sum(p.param.size for p in pruner.params)
    pruned = sum(zeros_of(p.param) for p in pruner.params)
    assert round(0.5 * n) - 2 <= pruned <= round(0.5 * n)  # whole blocks, never over budget


def _numpy(values):
    return values if isinstance(values, np.ndarray) else values.numpy()


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_blocks_are_scored_by_mean_magnitude_not_signed_mean(backend):
    ops, array = BACKENDS[backend]
    w = np.array([[1.0, 0.01], [-1.0, 0.01]], dtype='float32')  # [in=2, out=2] Linear layout
    units = block_scores(ops, array(w), None, (1, 2), out_axis=1, in_axis=0)
    # block of (+1, -1) has mean |w| 1.0 (a signed mean would give 0 and prune it)
    np.testing.assert_allclose(_numpy(units.scores), [1.0, 0.01])
    assert _numpy(units.sizes).tolist() == [2, 2] and units.uniform_size == 2


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_block_scores_handle_shapes_not_divisible(backend):
    ops, array = BACKENDS[backend]
    w = np.random.RandomState(0).randn(5, 3, 3, 3).astype('float32')
    keep = np.ones_like(w, bool)
    keep[4, 2] = False  # the corner block (1 x 1 channels x 3x3 kernel) is fully pruned
    units = block_scores(ops, array(w), array(keep), (2, 2), 0, 1)
    assert units.block_shape == (3, 2) and units.uniform_size is None and units.weights == 135
    assert _numpy(units.sizes).tolist() == [36, 18, 36, 18, 18, 9]
    scores = _numpy(units.scores).reshape(3, 2)
    np.testing.assert_allclose(scores[2, 0], np.abs(w[4, 0:2]).mean(), rtol=1e-6)
    np.testing.assert_allclose(scores[0, 1], np.abs(w[0:2, 2]).mean(), rtol=1e-6)
    assert scores[2, 1] == PRUNED_SCORE


def _stable_sort_choice(scores, sizes, budget):
    """What sorting the units (stable) and summing their sizes up to the budget prunes."""
    order = np.argsort(scores, kind='stable')
    count = int(np.searchsorted(np.cumsum(sizes[order]), budget, side='right'))
    chosen = np.zeros(scores.size, bool)
    chosen[order[:count]] = True
    return chosen


def _pruned_by_threshold(ops, parts, threshold, ties, tied_per_part):
    """The units the pruner prunes: below the threshold, then ties handed out in model order."""
    pruned = []
    for part, tied in zip(parts, tied_per_part):
        take = min(ties, tied)
        ties -= take
        pruned.append(~_numpy(order_stats.kept_units(ops, part, threshold, take)))
    return np.concatenate(pruned)


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_weighted_block_selection_equals_a_stable_sort_of_the_blocks(backend):
    """The selection picks what sorting the units and summing their sizes would, with many
    ties, already pruned units, unequal (edge) block sizes and several parameters."""
    ops, array = BACKENDS[backend]
    rng = np.random.RandomState(0)
    for trial in range(300):
        n = rng.randint(2, 40)
        scores = rng.randint(0, 6, n).astype('float32')  # many ties
        scores[rng.rand(n) < 0.2] = PRUNED_SCORE
        sizes = rng.choice([2, 9, 18], n) if trial % 2 else np.full(n, 9)
        budget = rng.randint(0, sizes.sum() + 3)
        cut = rng.randint(1, n)
        parts = [array(scores[:cut]), array(scores[cut:])]
        units = [Units(part, int(size.sum()), array(size), None, None if trial % 2 else 9)
                 for part, size in zip(parts, (sizes[:cut], sizes[cut:]))]
        threshold, ties, tied = order_stats.smallest_threshold(ops, units, budget)
        np.testing.assert_array_equal(_pruned_by_threshold(ops, parts, threshold, ties, tied),
                                      _stable_sort_choice(scores, sizes, budget), str(trial))


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_kth_smallest_is_exact_on_large_arrays_with_ties(monkeypatch, backend):
    """Exact on 3M scores split in three parts, on the device (paddle.sort orders the band) and
    on the host (numpy); the sampled band, not the fallback, finds every inner k."""
    ops, array = BACKENDS[backend]
    exact_calls = []
    real_exact = order_stats._kth_exact
    monkeypatch.setattr(order_stats, '_kth_exact',
                        lambda ops, parts, k, *a: exact_calls.append(k) or real_exact(ops, parts, k, *a))
    rng = np.random.RandomState(1)
    values = np.abs(rng.randn(3_000_000)).astype('float32')
    values[:500_000] = PRUNED_SCORE  # already pruned
    values[rng.rand(values.size) < 0.1] = 0.25  # a large block of ties
    parts = [array(values[:1_000_000]), array(values[1_000_000:2_200_000]),
             array(values[2_200_000:])]
    reference = np.sort(values)
    for k in (499_999, 500_000, 1_234_567, 2_250_000):
        value, below, equal = order_stats.kth_smallest(ops, parts, k)
        assert value == reference[k], k
        assert below == int((values < value).sum())
        assert equal == [int((values[a:b] == value).sum())
                         for a, b in ((0, 1_000_000), (1_000_000, 2_200_000), (2_200_000, None))]
    assert exact_calls == []  # every k was found in the sampled band
    value, _, _ = order_stats.kth_smallest(ops, parts, 0)  # at an end: ordered whole, exact
    assert value == PRUNED_SCORE and exact_calls == [0]


def test_nm_pattern_keeps_two_of_every_four_and_skips_what_cannot_take_it():
    model = make_model()
    pruner = UnstructuredPruner(model, sparse_pattern='2:4')
    # stem (3 in), dw (1 in per group) and fc (13 in) cannot take 2:4 and are skipped
    assert prunable_names(pruner) == ['pw1.weight', 'pw2.weight']
    pruner.step()
    for p in pruner.params:
        assert mask_ops.satisfies_pattern(pruner.mask_of(p.name), 2, 4, in_axis=1)
        assert zeros_of(p.param) == p.param.size // 2
    assert zeros_of(model.fc.weight) == 0


def test_total_sparse_and_conv1x1():
    model = TinyNet()
    for p in model.parameters():
        p.set_value(paddle.ones(p.shape, p.dtype))
    w = model.pw1.weight.numpy()
    w[:4] = 0  # 4 of 16 output channels: 32 of 128 weights
    model.pw1.weight.set_value(w)
    total = sum(p.size for p in model.parameters())
    assert total_sparse(model) == 32 / total
    assert total_sparse_conv1x1(model) == 32 / (8 * 16 + 16 * 13)
    assert UnstructuredPruner.total_sparse(model) == total_sparse(model)


def test_update_threshold_is_the_override_point_for_a_custom_criterion():
    class FixedThreshold(UnstructuredPruner):
        def update_threshold(self):
            self.threshold = 0.2  # e.g. a threshold chosen from outside statistics

    model = make_model()
    pruner = FixedThreshold(model, ratio=0.5)
    weights = {p.name: p.param.numpy().copy() for p in pruner.params}
    pruner.step()
    for p in pruner.params:
        expected = int((np.abs(weights[p.name]) < 0.2).sum())
        assert zeros_of(p.param) == expected, p.name
