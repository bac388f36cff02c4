"""Which parameters are pruned, and the ratio/threshold/block/pattern masks on fixed weights."""
import numpy as np
import paddle

from engine_helpers import TinyNet, make_model, zeros_of
from prune_plugin import UnstructuredPruner, total_sparse, total_sparse_conv1x1
from prune_plugin.core import masks as mask_ops


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


def test_blocks_are_scored_by_mean_magnitude_not_signed_mean():
    w = np.array([[1.0, 0.01], [-1.0, 0.01]], dtype='float32')  # [in=2, out=2] Linear layout
    keep = np.ones_like(w, dtype=bool)
    scores, sizes = mask_ops.block_scores(w.T, keep.T, (1, 2), 0, 1)
    # block of (+1, -1) has mean |w| 1.0 (a signed mean would give 0 and prune it)
    np.testing.assert_allclose(scores.ravel(), [1.0, 0.01])
    assert sizes.ravel().tolist() == [2, 2]


def test_block_scores_handle_shapes_not_divisible():
    w = np.random.RandomState(0).randn(5, 3, 3, 3).astype('float32')
    scores, sizes = mask_ops.block_scores(w, np.ones_like(w, bool), (2, 2), 0, 1)
    assert scores.shape == (3, 2)
    assert sizes.tolist() == [[36, 18], [36, 18], [18, 9]]
    np.testing.assert_allclose(scores[2, 1], np.abs(w[4, 2]).mean(), rtol=1e-6)


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


def test_weighted_block_selection_equals_a_stable_sort_of_the_blocks():
    """The partial selection picks what sorting the blocks and summing their sizes would."""
    rng = np.random.RandomState(0)
    for _ in range(2000):
        n = rng.randint(1, 40)
        scores = rng.randint(0, 6, n).astype('float32')  # many ties
        scores[rng.rand(n) < 0.2] = mask_ops.PRUNED_SCORE
        sizes = rng.choice([1, 2, 9, 18], n)
        budget = rng.randint(0, sizes.sum() + 3)
        order = np.argsort(scores, kind='stable')
        count = int(np.searchsorted(np.cumsum(sizes[order]), budget, side='right'))
        expected = np.zeros(n, bool)
        expected[order[:count]] = True
        threshold, ties = mask_ops.smallest_threshold(scores, sizes, budget)
        np.testing.assert_array_equal(mask_ops.prune_below(scores, threshold, ties), expected)


def test_kth_smallest_is_exact_on_large_arrays_with_ties():
    rng = np.random.RandomState(1)
    values = np.abs(rng.randn(3_000_000)).astype('float32')
    values[:500_000] = mask_ops.PRUNED_SCORE  # already pruned
    values[rng.rand(values.size) < 0.1] = 0.25  # a large block of ties
    reference = np.sort(values)
    for k in (0, 499_999, 500_000, 1_234_567, 2_250_000, values.size - 1):
        assert mask_ops.kth_smallest(values.copy(), k) == reference[k], k


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
