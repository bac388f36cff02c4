"""Small real models and data for the engine tests."""
import numpy as np
import paddle


class TinyNet(paddle.nn.Layer):
    """Conv3x3 -> BN -> conv1x1 -> BN -> depthwise -> conv1x1 (odd channels) -> Linear."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.bn1 = paddle.nn.BatchNorm2D(8)
        self.pw1 = paddle.nn.Conv2D(8, 16, 1, bias_attr=False)
        self.bn2 = paddle.nn.BatchNorm2D(16)
        self.dw = paddle.nn.Conv2D(16, 16, 3, padding=1, groups=16, bias_attr=False)
        self.pw2 = paddle.nn.Conv2D(16, 13, 1)
        self.fc = paddle.nn.Linear(13, num_classes)

    def forward(self, x):
        x = paddle.nn.functional.relu(self.bn1(self.stem(x)))
        x = paddle.nn.functional.relu(self.bn2(self.pw1(x)))
        x = paddle.nn.functional.relu(self.pw2(self.dw(x)))
        x = paddle.mean(x, axis=[2, 3])
        return self.fc(x)


def make_model(seed=0):
    paddle.seed(seed)
    return TinyNet()


def batches(n, seed=0, batch_size=4):
    """Deterministic (image, label) batches: the same sequence for the same seed."""
    rng = np.random.RandomState(seed)
    for _ in range(n):
        x = rng.randn(batch_size, 3, 8, 8).astype('float32')
        y = rng.randint(0, 10, size=(batch_size, )).astype('int64')
        yield paddle.to_tensor(x), paddle.to_tensor(y)


def train_steps(model, optimizer, pruner, data, scaler=None, accumulate=1, on_step=None):
    """Plain training loop: loss, backward, optimizer update, then ``pruner.step()``."""
    loss_fn = paddle.nn.CrossEntropyLoss()
    for i, (x, y) in enumerate(data):
        loss = loss_fn(model(x), y) / accumulate
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        if (i + 1) % accumulate:
            continue
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.clear_grad()
        if pruner is not None:
            pruner.step()
        if on_step is not None:
            on_step()


def zeros_of(param):
    return int(param.numpy().size - np.count_nonzero(param.numpy()))
