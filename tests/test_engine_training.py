"""Pruned weights stay exactly zero through real optimizer updates; masks only grow."""
import numpy as np
import paddle
import paddle.amp.grad_scaler as grad_scaler
import pytest

from engine_helpers import batches, make_model, train_steps, zeros_of
from prune_plugin import GMPUnstructuredPruner, UnstructuredPruner

GMP_CONFIGS = {'stable_iterations': 2, 'pruning_iterations': 8, 'tunning_iterations': 4,
               'pruning_steps': 4, 'initial_ratio': 0.2}


def pruned_sets(pruner):
    return {p.name: ~pruner.mask_of(p.name) for p in pruner.params}


def assert_pruned_are_zero(pruner):
    for p in pruner.params:
        weight = p.param.numpy()
        assert np.all(weight[~pruner.mask_of(p.name)] == 0), p.name


OPTIMIZERS = {
    'momentum_l2': lambda params: paddle.optimizer.Momentum(
        learning_rate=0.1, momentum=0.9, parameters=params, weight_decay=1e-2),
    'adam': lambda params: paddle.optimizer.Adam(learning_rate=0.05, parameters=params),
    'adamw': lambda params: paddle.optimizer.AdamW(learning_rate=0.05, parameters=params),
}
# the moments Paddle keeps per weight, by the names its optimizers give them
MOMENTS = {'momentum_l2': ('velocity', ), 'adam': ('moment1', 'moment2'),
           'adamw': ('moment1', 'moment2')}


@pytest.mark.parametrize('name', sorted(OPTIMIZERS))
def test_momentum_and_adam_never_revive_pruned_weights(name):
    model = make_model()
    optimizer = OPTIMIZERS[name](model.parameters())
    # build up moments densely first, then prune with GMP; masks only grow
    train_steps(model, optimizer, None, batches(3))
    pruner = GMPUnstructuredPruner(model, ratio=0.75, configs=GMP_CONFIGS, optimizer=optimizer)
    history = []
    events = []

    def check():
        assert_pruned_are_zero(pruner)
        history.append(pruned_sets(pruner))
        if len(history) == 1 or any((history[-1][k] != history[-2][k]).any() for k in history[-1]):
            # a prune event: the moments built up before it are dropped with the weights
            events.append(pruner.iteration)
            checked = 0
            for moment in MOMENTS[name]:
                for p in pruner.params:
                    values = optimizer._accumulators[moment][p.param.name].numpy()
                    assert np.all(values[~pruner.mask_of(p.name)] == 0), (moment, p.name)
                    assert np.any(values[pruner.mask_of(p.name)] != 0), (moment, p.name)
                    checked += 1
            assert checked == len(MOMENTS[name]) * 5  # each moment of the 5 pruned weights

    train_steps(model, optimizer, pruner, batches(16, seed=1), on_step=check)
    for before, after in zip(history, history[1:]):
        for key in before:
            assert np.all(after[key][before[key]]), f"{key} was revived"
    n = sum(p.param.size for p in pruner.params)
    assert sum(zeros_of(p.param) for p in pruner.params) == round(0.75 * n)
    assert events == [1, 3, 5, 7, 9, 11]  # iteration counter after the step: stable, 4 rises, 0.75


def enabled_grad_scaler(monkeypatch, init_loss_scaling):
    """A GradScaler built as on a GPU (Paddle disables it on CPU places), as in
    test_ppseg_compat.py: its step/minimize then scale, unscale and check gradients."""
    real_tracer = grad_scaler._dygraph_tracer

    class GpuLookingPlace:
        def __init__(self, place):
            self.place = place

        def is_gpu_place(self):
            return True

        def __getattr__(self, attr):
            return getattr(self.place, attr)

    class Tracer:
        def __init__(self):
            self._expected_place = GpuLookingPlace(real_tracer()._expected_place)

    monkeypatch.setattr(grad_scaler, '_dygraph_tracer', Tracer)
    scaler = paddle.amp.GradScaler(init_loss_scaling=init_loss_scaling)
    monkeypatch.setattr(grad_scaler, '_dygraph_tracer', real_tracer)
    return scaler


def _amp_run(scaler, use_minimize):
    """Six steps of SGD+momentum+L2 with ratio 0.6; the scaled loss when ``scaler`` is given."""
    model = make_model()
    optimizer = OPTIMIZERS['momentum_l2'](model.parameters())
    pruner = UnstructuredPruner(model, ratio=0.6, optimizer=optimizer)
    loss_fn = paddle.nn.CrossEntropyLoss()
    for x, y in batches(6):
        loss = loss_fn(model(x), y)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaled = scaler.scale(loss)
            scaled.backward()
            if use_minimize:
                scaler.minimize(optimizer, scaled)  # calls optimizer.minimize, never .step
            else:
                scaler.step(optimizer)
                scaler.update()
        optimizer.clear_grad()
        pruner.step()
        assert_pruned_are_zero(pruner)
    return model, pruner


@pytest.mark.parametrize('use_minimize', [False, True])
def test_amp_grad_scaler_step_and_minimize_keep_exact_zeros(monkeypatch, use_minimize):
    scaler = enabled_grad_scaler(monkeypatch, init_loss_scaling=128.0)
    assert scaler._enable and float(scaler._scale) == 128.0
    model, pruner = _amp_run(scaler, use_minimize)
    assert not bool(scaler._found_inf)
    n = sum(p.param.size for p in pruner.params)
    assert sum(zeros_of(p.param) for p in pruner.params) == round(0.6 * n)
    # gradients were scaled by 128 and unscaled (exact for a power of two): the weights are
    # those of the same run without a scaler, bit for bit
    reference, _ = _amp_run(None, use_minimize)
    for (key, value), expected in zip(model.state_dict().items(),
                                      reference.state_dict().values()):
        np.testing.assert_array_equal(value.numpy(), expected.numpy(), key)


def test_gradient_accumulation_keeps_exact_zeros():
    model = make_model()
    optimizer = OPTIMIZERS['momentum_l2'](model.parameters())
    pruner = GMPUnstructuredPruner(model, ratio=0.5, configs=GMP_CONFIGS)
    train_steps(model, optimizer, pruner, batches(24), accumulate=3,
                on_step=lambda: assert_pruned_are_zero(pruner))
    assert pruner.iteration == 8
    # iteration 7 (the 8th update): period 8 // 4 = 2, step 3, one stable step, so pruning step
    # 2 of 4: 0.2 + (0.5 - 0.2) * (1 - (1 - 2 / 4) ** 3) = 0.4625
    assert pruner.ratio == pytest.approx(0.4625)
    n = sum(p.param.size for p in pruner.params)
    assert sum(zeros_of(p.param) for p in pruner.params) == round(0.4625 * n) == 382


def test_threshold_mode_masks_only_grow_during_training():
    model = make_model()
    optimizer = OPTIMIZERS['momentum_l2'](model.parameters())
    pruner = UnstructuredPruner(model, mode='threshold', threshold=0.05)
    history = []
    train_steps(model, optimizer, pruner, batches(6),
                on_step=lambda: history.append(pruned_sets(pruner)))
    for before, after in zip(history, history[1:]):
        for key in before:
            assert np.all(after[key][before[key]])
    assert_pruned_are_zero(pruner)


def test_gmp_pruner_follows_its_schedule_during_training():
    model = make_model()
    optimizer = OPTIMIZERS['momentum_l2'](model.parameters())
    pruner = GMPUnstructuredPruner(model, ratio=0.8, configs=GMP_CONFIGS)
    n = sum(p.param.size for p in pruner.params)
    seen = []
    train_steps(model, optimizer, pruner, batches(14),
                on_step=lambda: seen.append(sum(zeros_of(p.param) for p in pruner.params)))
    expected = [round(pruner.ratio_at(i) * n) for i in range(14)]
    assert seen == expected
    # period 2, 1 stable step (2 iterations), then 0.2 -> 0.8 cubic in 4 steps, then 0.8
    assert [pruner.ratio_at(i) for i in (0, 1, 2, 4, 6, 8, 10)] == pytest.approx(
        [0.0, 0.0, 0.2, 0.2 + 0.6 * (1 - 0.75 ** 3), 0.2 + 0.6 * (1 - 0.5 ** 3),
         0.2 + 0.6 * (1 - 0.25 ** 3), 0.8])
