"""Between prune events the pruner stays on the device: no host reads, no per-step counting, one
byte per weight; prune events stop on NaN/Inf and report an all-zero model."""
import logging

import numpy as np
import paddle
import pytest

from engine_helpers import batches, make_model, zeros_of
from prune_plugin import GMPUnstructuredPruner, UnstructuredPruner
from prune_plugin.core import NonFiniteWeightsError, kernels
from prune_plugin.core import events as events_module
from prune_plugin.core.array_ops import DEVICE

# TinyNet's prunable weights, counted by hand: stem 8x3x3x3, pw1 16x8, dw 16x1x3x3, pw2 13x16,
# fc 13x10 (norms and biases are skipped)
TINYNET_PRUNABLE = 216 + 128 + 144 + 208 + 130
GMP_CONFIGS = {'stable_iterations': 10, 'pruning_iterations': 60, 'tunning_iterations': 30,
               'pruning_steps': 6, 'initial_ratio': 0.2}
MODES = {
    'ratio': dict(mode='ratio', ratio=0.6),
    'ratio local': dict(mode='ratio', ratio=0.6, local_sparsity=True),
    'ratio 2x1 blocks': dict(mode='ratio', ratio=0.6, sparse_block=[2, 1]),
    '2:4 pattern': dict(sparse_pattern='2:4'),
    'threshold': dict(mode='threshold', threshold=0.05),
    'threshold 2x1 blocks': dict(mode='threshold', threshold=0.05, sparse_block=[2, 1]),
    'gmp': dict(gmp=True, ratio=0.75, configs=GMP_CONFIGS),
    'gmp local 2x1 blocks': dict(gmp=True, ratio=0.75, configs=GMP_CONFIGS, local_sparsity=True,
                                 sparse_block=[2, 1]),
}
# every way a value can travel from a tensor to Python, or from Python into a tensor
HOST_CROSSINGS = [(paddle.Tensor, name) for name in (
    'numpy', 'item', 'tolist', '__float__', '__int__', '__bool__', '__index__', '__array__',
    'cpu', '_copy_to')] + [(paddle, 'to_tensor'), (paddle, 'masked_select'), (paddle, 'nonzero')]


class HostCrossings:
    """Counts the calls in HOST_CROSSINGS made while ``counting`` is True."""

    def __init__(self, monkeypatch):
        self.count = 0
        self.counting = False
        for owner, name in HOST_CROSSINGS:
            monkeypatch.setattr(owner, name, self._counted(getattr(owner, name)))

    def _counted(self, fn):
        def counted(*args, **kwargs):
            if self.counting:
                self.count += 1
            return fn(*args, **kwargs)
        return counted

    def during(self, fn):
        """Run ``fn()``; return how many crossings it made."""
        before, self.counting = self.count, True
        try:
            fn()
        finally:
            self.counting = False
        return self.count - before


def build(model, optimizer=None, gmp=False, **kwargs):
    cls = GMPUnstructuredPruner if gmp else UnstructuredPruner
    return cls(model, optimizer=optimizer, **kwargs)


def momentum(model):
    return paddle.optimizer.Momentum(learning_rate=0.05, momentum=0.9,
                                     parameters=model.parameters(), weight_decay=1e-3)


def expected_events(pruner, steps):
    if not isinstance(pruner, GMPUnstructuredPruner):
        return 1  # the first step
    ratios = [pruner.ratio_at(i) for i in range(steps)]
    return sum(1 for i, r in enumerate(ratios) if r > 0 and (i == 0 or r != ratios[i - 1]))


@pytest.mark.parametrize('mode', sorted(MODES))
def test_no_host_crossing_in_100_steps_outside_prune_events(monkeypatch, mode):
    model = make_model()
    optimizer = momentum(model)
    pruner = build(model, optimizer, **MODES[mode])
    crossings = HostCrossings(monkeypatch)
    loss_fn = paddle.nn.CrossEntropyLoss()
    steady, events = [], []
    for x, y in batches(100, seed=2):
        loss_fn(model(x), y).backward()
        optimizer.step()
        optimizer.clear_grad()
        updates = pruner.mask_updates
        crossed = crossings.during(pruner.step)
        (events if pruner.mask_updates != updates else steady).append(crossed)
    assert len(events) == expected_events(pruner, 100)
    assert len(steady) == 100 - len(events) and steady == [0] * len(steady)
    assert all(n > 0 for n in events)  # the events do read their thresholds and counts
    # and the steady steps did the work: every pruned weight is exactly zero
    for p in pruner.params:
        assert np.all(p.param.numpy()[~pruner.mask_of(p.name)] == 0), p.name


def test_sparsity_counts_once_per_mask_change(monkeypatch):
    model = make_model()
    ratio = UnstructuredPruner(model, ratio=0.6)
    threshold = UnstructuredPruner(make_model(), mode='threshold', threshold=0.05)
    crossings = HostCrossings(monkeypatch)
    ratio.step()
    ratio.step()
    assert crossings.during(ratio.sparsity) == 0  # counted by the prune event already
    assert ratio.sparsity() == round(0.6 * TINYNET_PRUNABLE) / TINYNET_PRUNABLE
    threshold.step()
    threshold.step()  # narrows the masks on the device: not counted yet
    assert crossings.during(threshold.sparsity) > 0
    assert crossings.during(threshold.sparsity) == 0
    pruned = sum(int((~threshold.mask_of(p.name)).sum()) for p in threshold.params)
    assert threshold.sparsity() == pruned / TINYNET_PRUNABLE


@pytest.mark.parametrize('mode', sorted(MODES))
def test_the_pruner_holds_one_byte_per_weight_between_steps(mode):
    model = make_model()
    optimizer = momentum(model)
    pruner = build(model, optimizer, **MODES[mode])
    for x, y in batches(12):
        paddle.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.clear_grad()
        pruner.step()
    held = []
    for key, value in vars(pruner).items():
        if key in ('model', 'params', '_optimizer'):
            continue  # references to the model's own tensors
        values = value.values() if isinstance(value, dict) else (
            value if isinstance(value, (list, tuple)) else [value])
        held += [v for v in values if isinstance(v, paddle.Tensor)]
    assert sorted(id(t) for t in held) == sorted(id(m) for m in pruner.masks.values())
    assert all(m.dtype == paddle.bool and m.element_size() == 1 for m in held)
    n_masked = sum(int(m.numel()) for m in held)
    assert n_masked == sum(int(p.param.size) for p in pruner.params)
    assert n_masked <= TINYNET_PRUNABLE


def _snapshot(model, optimizer):
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    state.update({f"opt.{k}": v.numpy().copy() for k, v in optimizer.state_dict().items()
                  if isinstance(v, paddle.Tensor)})
    return state


def _assert_same(before, after):
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)


@pytest.mark.parametrize('mode', ['ratio', 'ratio 2x1 blocks', 'threshold', '2:4 pattern'])
def test_nan_or_inf_at_the_first_prune_event_stops_and_changes_nothing(mode):
    model = make_model()
    optimizer = momentum(model)
    pruner = build(model, optimizer, **MODES[mode])
    with paddle.no_grad():
        model.pw1.weight[0, 0, 0, 0] = float('nan')
        model.pw2.weight[3, 1, 0, 0] = float('inf')
    before = _snapshot(model, optimizer)
    with pytest.raises(NonFiniteWeightsError) as err:
        pruner.step()
    assert isinstance(err.value, ValueError)
    assert err.value.names == ['pw1.weight', 'pw2.weight'] and err.value.iteration == 0
    assert str(err.value).startswith("NaN/Inf in 2 prunable parameter(s) at iteration 0: "
                                     "pw1.weight, pw2.weight; training has diverged")
    _assert_same(before, _snapshot(model, optimizer))
    assert pruner.masks == {} and pruner.iteration == 0 and pruner.mask_updates == 0


def test_nan_at_a_later_gmp_event_keeps_masks_weights_and_moments():
    model = make_model()
    optimizer = momentum(model)
    pruner = GMPUnstructuredPruner(model, ratio=0.75, configs=GMP_CONFIGS, optimizer=optimizer)
    for x, y in batches(20):  # iterations 0..19: events at 10 and 20 (period 10)
        paddle.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.clear_grad()
        pruner.step()
    assert pruner.mask_updates == 1 and pruner.iteration == 20
    masks = {p.name: pruner.mask_of(p.name) for p in pruner.params}
    with paddle.no_grad():
        model.fc.weight[2, 5] = float('-inf')
    before = _snapshot(model, optimizer)
    with pytest.raises(NonFiniteWeightsError, match=r"in 1 prunable parameter\(s\) at iteration "
                                                    r"20: fc\.weight;"):
        pruner.step()
    _assert_same(before, _snapshot(model, optimizer))
    for name, mask in masks.items():
        np.testing.assert_array_equal(pruner.mask_of(name), mask)
    assert pruner.mask_updates == 1 and pruner.iteration == 20


def test_between_events_weights_are_not_checked():
    """Finiteness is checked at prune events only: a steady step reads nothing on the host."""
    model = make_model()
    pruner = UnstructuredPruner(model, ratio=0.5)
    pruner.step()
    kept = np.argwhere(pruner.mask_of('fc.weight'))[0]
    with paddle.no_grad():
        model.fc.weight[int(kept[0]), int(kept[1])] = float('nan')
    pruner.step()  # no error: no prune event
    assert np.isnan(model.fc.weight.numpy()[tuple(kept)])
    assert zeros_of(model.fc.weight) == int((~pruner.mask_of('fc.weight')).sum())


@pytest.mark.parametrize('mode,pruned', [('ratio', round(0.6 * TINYNET_PRUNABLE)),
                                         ('threshold', TINYNET_PRUNABLE)])
def test_all_zero_weights_are_reported_and_pruned_by_the_rules(caplog, mode, pruned):
    model = make_model()
    for p in model.parameters():
        p.set_value(paddle.zeros(p.shape, p.dtype))
    pruner = UnstructuredPruner(model, **MODES[mode])
    with caplog.at_level(logging.WARNING, logger='prune_plugin'):
        pruner.step()
        pruner.step()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"all {TINYNET_PRUNABLE} prunable weights left are zero at iter 0: no "
                        "magnitude to rank, " + ("so every one is pruned" if mode == 'threshold'
                                                 else "the budget is taken in model order")]
    assert pruner.sparsity() == pruned / TINYNET_PRUNABLE
    if mode == 'ratio':  # all tie: taken in model order, stem 216 + pw1 128 + dw 144, then pw2
        for name in ('stem.weight', 'pw1.weight', 'dw.weight'):
            assert not pruner.mask_of(name).any(), name
        pw2_pruned = ~pruner.mask_of('pw2.weight').reshape(-1)
        assert pw2_pruned[:pruned - 488].all() and not pw2_pruned[pruned - 488:].any()
        assert pruner.mask_of('fc.weight').all()


@pytest.mark.parametrize('mode', ['ratio', 'ratio local', 'ratio 2x1 blocks', '2:4 pattern',
                                  'threshold'])
def test_device_and_host_prune_events_give_the_same_masks(monkeypatch, mode):
    """Off CPU the prune events run paddle ops on the device; run that path here too."""
    host = build(make_model(), **MODES[mode])
    host.step()
    used = []
    monkeypatch.setattr(events_module, 'ops_for', lambda place: used.append(place) or DEVICE)
    device = build(make_model(), **MODES[mode])
    device.step()
    assert len(used) == len(device.params)  # every parameter's event ran with paddle ops
    for p in host.params:
        np.testing.assert_array_equal(device.mask_of(p.name), host.mask_of(p.name), p.name)
    assert device.sparsity() == host.sparsity()


@pytest.mark.parametrize('path', ['host views, native loops', 'host views, numpy loops',
                                  'paddle ops'])
def test_sliced_kernels_equal_whole_tensor_arithmetic(monkeypatch, path):
    if path == 'paddle ops':  # what GPUs, float16 and non-contiguous tensors run
        monkeypatch.setattr(kernels, 'host_view', lambda tensor: None)
    if path.endswith('numpy loops'):  # an install without a C compiler
        monkeypatch.setattr(kernels, '_host_kernels', None)
    rng = np.random.RandomState(0)
    size = kernels.CPU_SLICE * 3 + 5  # several slices and a short last one
    w = (rng.randn(size) * 0.1).astype('float32')
    w[:6] = [0.05, -0.05, np.nextafter(np.float32(0.05), np.float32(0)), -0.0, 0.0, -np.inf]
    keep = rng.rand(size) > 0.3
    keep[:6] = True
    weight, mask = paddle.to_tensor(w), paddle.to_tensor(keep)
    kernels.narrow_and_zero(weight, mask, 0.05)
    expected_keep = keep & (np.abs(w) >= np.float32(0.05))  # (float32 comparison, as paddle)
    assert expected_keep[:6].tolist() == [True, True, False, False, False, True]
    np.testing.assert_array_equal(mask.numpy(), expected_keep)
    np.testing.assert_array_equal(weight.numpy(), np.where(expected_keep, w, 0))
    assert int((weight.numpy() == 0).sum()) == int((~expected_keep).sum()) + int(
        (expected_keep & (w == 0)).sum())
    # a transposed (non-contiguous) view of a large tensor is zeroed as a whole, in place
    values = rng.randn(300, 1000).astype('float32')
    keep_t = rng.rand(1000, 300) > 0.5
    base = paddle.to_tensor(values)
    kernels.zero_pruned(base.transpose([1, 0]), paddle.to_tensor(keep_t))
    np.testing.assert_array_equal(base.numpy(), np.where(keep_t.T, values, 0))


def test_the_native_host_loops_are_built_and_match_numpy_bit_for_bit():
    """setup.py compiles prune_plugin/core/_host_kernels.c (a C compiler is on every machine the
    project installs on); its fused loops give the numpy path's exact bits: -0.0 for a pruned
    negative weight, NaN kept as NaN (and pruned), a weight equal to the threshold kept."""
    assert kernels.native_loops(), 'prune_plugin.core._host_kernels was not compiled'
    native = kernels._host_kernels
    rng = np.random.RandomState(3)
    for size in (1, 7, 16, 4099, kernels.HOST_SLICE + 3):
        w = (rng.randn(size) * 0.1).astype('float32')
        w[:min(size, 6)] = [-0.03, np.nan, 0.05, -0.05, -np.inf, np.nextafter(
            np.float32(0.05), np.float32(0))][:min(size, 6)]
        keep = rng.rand(size) > 0.25
        keep[:6] = True
        w_numpy, keep_numpy = w.copy(), keep.copy()
        for row, (weight, mask) in enumerate(((w, keep), (w_numpy, keep_numpy))):
            if row == 0:
                native.narrow_and_zero(weight, mask, 0.05)
            else:
                for start in range(0, size, kernels.HOST_SLICE):  # the numpy loops, by hand
                    part, keep_part = weight[start:start + kernels.HOST_SLICE], \
                        mask[start:start + kernels.HOST_SLICE]
                    np.logical_and(keep_part, np.abs(part) >= np.float32(0.05), out=keep_part)
                    np.multiply(part, keep_part, out=part)
        assert w.tobytes() == w_numpy.tobytes() and keep.tobytes() == keep_numpy.tobytes(), size
        z, z_keep = (rng.randn(size)).astype('float32'), rng.rand(size) > 0.5
        expected = z * z_keep
        native.zero_pruned(z, z_keep)
        assert z.tobytes() == expected.tobytes(), size
    assert keep[:6].tolist() == [False, False, True, True, True, False]
    assert w[0] == 0 and np.signbit(w[0])  # -0.03 pruned: -0.0, as np.multiply gives
    assert np.isnan(w[1]) and w[2] == np.float32(0.05) and w[3] == np.float32(-0.05)
    assert np.signbit(w[5]) == np.False_ and w[5] == 0  # just under the threshold: pruned
    with pytest.raises(ValueError, match='one bool per weight'):
        native.narrow_and_zero(np.zeros(4, 'float32'), np.ones(3, bool), 0.1)
    with pytest.raises(TypeError):  # read-only memory is refused, not written
        native.zero_pruned(np.zeros(4, 'float32'), np.frombuffer(bytes(4), dtype=bool))


def test_host_views_share_the_tensors_memory():
    weight = paddle.to_tensor(np.arange(6, dtype='float32').reshape(2, 3))
    view = kernels.host_view(weight)
    assert view.shape == (6,) and view.dtype == np.float32
    view[4] = -1.0
    assert weight.numpy().tolist() == [[0, 1, 2], [3, -1, 5]]  # no copy: the tensor changed
    keep = paddle.to_tensor(np.array([[True, False, True], [False, True, True]]))
    kernels.zero_pruned(weight, keep)
    assert weight.numpy().tolist() == [[0, 0, 2], [0, -1, 5]]
    assert kernels.host_view(weight.astype('float16')) is None  # other dtypes: paddle ops
    assert kernels.host_view(weight.transpose([1, 0])) is None or weight.transpose(
        [1, 0]).is_contiguous()


@pytest.mark.parametrize('mode', ['gmp', 'gmp local 2x1 blocks'])
def test_device_and_host_prune_events_agree_through_gmp_training(monkeypatch, mode):
    """Later events (already pruned units score -1, moments dropped) on both paths."""
    masks, used = {}, []
    for path in ('host', 'device'):
        if path == 'device':
            monkeypatch.setattr(events_module, 'ops_for',
                                lambda place: used.append(place) or DEVICE)
        model = make_model()
        optimizer = momentum(model)
        pruner = build(model, optimizer, **MODES[mode])
        for x, y in batches(40, seed=4):
            paddle.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            optimizer.clear_grad()
            pruner.step()
        assert pruner.mask_updates == 3  # after 10 stable iterations, at 10, 20 and 30
        masks[path] = {p.name: pruner.mask_of(p.name) for p in pruner.params}
    assert len(used) == 3 * len(pruner.params)  # the device path ran every event
    for name, mask in masks['host'].items():
        np.testing.assert_array_equal(masks['device'][name], mask, name)


@pytest.mark.parametrize('threads', ['1', '2', '3'])
def test_many_tensors_spread_over_host_threads_give_the_same_result(monkeypatch, threads):
    """A model's step: the tensors are shared out among threads; every one is done, exactly."""
    monkeypatch.setenv('PRUNE_PLUGIN_CPU_THREADS', threads)
    assert kernels.host_threads() == int(threads)
    rng = np.random.RandomState(1)
    sizes = [kernels.HOST_PARALLEL_MIN // 2, 300_000, 70_000, 5, kernels.HOST_PARALLEL_MIN,
             kernels.HOST_PIECE * 2 + 7]  # (the last cut into pieces for the threads)
    weights = [(rng.randn(n) * 0.1).astype('float32') for n in sizes]
    keeps = [rng.rand(n) > 0.4 for n in sizes]
    tensors = [(paddle.to_tensor(w), paddle.to_tensor(k)) for w, k in zip(weights, keeps)]
    tensors.append((paddle.to_tensor(weights[2]).astype('bfloat16'),
                    paddle.to_tensor(keeps[2])))  # not a host view: paddle ops, same result
    kernels.narrow_and_zero_many(tensors, 0.05)
    for (weight, keep), w, k in zip(tensors, weights + [weights[2]], keeps + [keeps[2]]):
        expected = k & (np.abs(w) >= np.float32(0.05)) if weight.dtype == paddle.float32 else \
            k & (np.abs(tensors[-1][0].astype('float32').numpy()) >= np.float32(0.05))
        np.testing.assert_array_equal(keep.numpy(), expected)
        assert int((weight.astype('float32').numpy() != 0).sum()) == int((expected & (w != 0)).sum())
    more = [(paddle.to_tensor(w), paddle.to_tensor(k)) for w, k in zip(weights, keeps)]
    kernels.zero_pruned_many(more)
    for (weight, _), w, k in zip(more, weights, keeps):
        np.testing.assert_array_equal(weight.numpy(), np.where(k, w, 0))
