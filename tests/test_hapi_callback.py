"""PruneCallback on plain ``paddle.Model.fit`` (Paddle's hapi), with real digits data in memory."""
import os

import numpy as np
import paddle
import pytest

from prune_plugin.core.spec import PruneSpec
from prune_plugin.demo_data.ppcls_data import digits_images, stratified_split
from prune_plugin.hapi_callback import PruneCallback, load_pruner_state, pruner_state_path

BATCH = 64


class SmallNet(paddle.nn.Layer):
    """8x8 digits -> 3x3 conv -> 1x1 conv -> linear."""

    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(1, 16, 3, padding=1)
        self.bn = paddle.nn.BatchNorm2D(16)
        self.pointwise = paddle.nn.Conv2D(16, 32, 1)
        self.fc = paddle.nn.Linear(32 * 16, 10)

    def forward(self, x):
        x = paddle.nn.functional.relu(self.bn(self.conv(x)))
        x = paddle.nn.functional.max_pool2d(paddle.nn.functional.relu(self.pointwise(x)), 2)
        return self.fc(x.flatten(1))


@pytest.fixture(scope='module')
def digits():
    images, labels = digits_images(size=8)
    train, val = stratified_split(labels, 0.3)
    x = (images.astype('float32') / 255.0)[:, None]
    y = labels.reshape(-1, 1)
    return (paddle.io.TensorDataset([paddle.to_tensor(x[train]), paddle.to_tensor(y[train])]),
            paddle.io.TensorDataset([paddle.to_tensor(x[val]), paddle.to_tensor(y[val])]))


def make_model(seed=0):
    paddle.seed(seed)
    net = SmallNet()
    model = paddle.Model(net)
    opt = paddle.optimizer.Momentum(0.05, parameters=net.parameters())
    model.prepare(opt, paddle.nn.CrossEntropyLoss(), paddle.metric.Accuracy())
    return model


class RatioRecorder(paddle.callbacks.Callback):
    """Pruned fraction after every batch (runs after PruneCallback in the list)."""

    def __init__(self, prune_cb):
        super().__init__()
        self.prune_cb = prune_cb
        self.history = []

    def on_train_batch_end(self, step, logs=None):
        pruner = self.prune_cb.pruner
        self.history.append((pruner.iteration, pruner.sparsity()))


GMP = {'mode': 'ratio', 'ratio': 0.8, 'gmp': {'stable_iterations': 4, 'pruning_iterations': 20,
                                              'tunning_iterations': 4, 'pruning_steps': 5,
                                              'initial_ratio': 0.2}}


def test_gmp_follows_schedule_and_checkpoints_are_sparse(digits, tmp_path):
    train, val = digits
    spec = PruneSpec.from_block(GMP)
    model = make_model()
    prune_cb = PruneCallback(spec, save_dir=str(tmp_path))
    recorder = RatioRecorder(prune_cb)
    model.fit(train, val, batch_size=BATCH, epochs=2, save_dir=str(tmp_path), verbose=0,
              shuffle=False, callbacks=[prune_cb, recorder])
    pruner = prune_cb.pruner
    total = sum(int(np.prod(p.shape)) for p in pruner.params)
    steps = len(recorder.history)
    assert steps == 2 * int(np.ceil(len(train) / BATCH))
    for iteration, sparsity in recorder.history:  # ratio in force after update `iteration`
        expected = round(pruner.ratio_at(iteration - 1) * total) / total
        assert sparsity == pytest.approx(expected, abs=1e-9), iteration
    assert pruner.ratio_at(3) == 0.0 and pruner.ratio_at(4) == pytest.approx(0.2)
    assert recorder.history[-1][1] == pytest.approx(round(0.8 * total) / total)
    # hapi's ModelCheckpoint wrote final.pdparams: exactly sparse, and the state beside it
    state = paddle.load(os.path.join(tmp_path, 'final.pdparams'))
    zeros = sum(int((state[p.name].numpy() == 0).sum()) for p in pruner.params)
    assert zeros == round(0.8 * total)
    assert load_pruner_state(os.path.join(tmp_path, 'final')) == {'iteration': steps}
    assert os.path.isfile(pruner_state_path(os.path.join(tmp_path, '0')))
    acc = model.evaluate(val, batch_size=256, verbose=0)['acc']
    assert acc > 0.8


def test_resume_continues_gmp_exactly(digits, tmp_path):
    train, _ = digits
    spec = PruneSpec.from_block(GMP)
    # each run in its own name scope: parameter and optimizer-state names as in a fresh process
    with paddle.utils.unique_name.guard():
        straight = make_model()
        straight_cb = PruneCallback(spec)
        straight.fit(train, batch_size=BATCH, epochs=2, verbose=0, shuffle=False,
                     callbacks=[straight_cb])
    with paddle.utils.unique_name.guard():
        first = make_model()
        first.fit(train, batch_size=BATCH, epochs=1, save_dir=str(tmp_path), verbose=0,
                  shuffle=False, callbacks=[PruneCallback(spec, save_dir=str(tmp_path))])
    with paddle.utils.unique_name.guard():
        resumed = make_model(seed=123)  # other init: everything must come from the checkpoint
        resumed.load(os.path.join(tmp_path, '0'))
        resumed_cb = PruneCallback(spec, resume_from=os.path.join(tmp_path, '0'))
        resumed.fit(train, batch_size=BATCH, epochs=1, verbose=0, shuffle=False,
                    callbacks=[resumed_cb])

    a, b = straight_cb.pruner, resumed_cb.pruner
    assert b.iteration == a.iteration == 2 * int(np.ceil(len(train) / BATCH))
    assert b.ratio == a.ratio
    for p in a.params:
        np.testing.assert_array_equal(a.mask_of(p.name), b.mask_of(p.name))
    for (name, wa), (_, wb) in zip(straight.network.state_dict().items(),
                                   resumed.network.state_dict().items()):
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_callback_rejects_bad_arguments():
    from prune_plugin.core.errors import PruneConfigError

    with pytest.raises(PruneConfigError, match='save_freq'):
        PruneCallback(PruneSpec.from_block({'ratio': 0.5}), save_freq=0)
    with pytest.raises(PruneConfigError, match='pruner'):
        PruneCallback({'ratio': 0.5})


def test_gradient_accumulation_steps_the_pruner_once_per_update(digits):
    train, _ = digits
    model = make_model()
    prune_cb = PruneCallback(PruneSpec.from_block({'mode': 'ratio', 'ratio': 0.5}))
    model.fit(train, batch_size=BATCH, epochs=1, verbose=0, shuffle=False,
              accumulate_grad_batches=3, callbacks=[prune_cb])
    batches = int(np.ceil(len(train) / BATCH))  # 20: updates after batches 3, 6, ..., 18 and 20
    assert prune_cb.pruner.iteration == batches // 3 + (batches % 3 != 0)
