"""The demo's static programs: the network, the training program (loss, Momentum + L2 decay,
learning-rate schedule, gradients averaged over ranks) and the evaluation program.

Both programs are built under their own ``unique_name.guard()``, so their parameters have the
same names and the evaluation program reads the training program's weights from the scope
(Paddle 3.3's PIR programs have no ``clone(for_test=True)``).
"""
from dataclasses import dataclass

import paddle


class SmallCNN(paddle.nn.Layer):
    """conv3x3-BN-ReLU-pool, conv3x3-BN-ReLU-pool, conv1x1-BN-ReLU, global pool, Linear."""

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        layers = []
        for cin, cout, kernel, pool in ((in_channels, 16, 3, True), (16, 32, 3, True),
                                        (32, 64, 1, False)):
            layers += [paddle.nn.Conv2D(cin, cout, kernel, padding=kernel // 2, bias_attr=False),
                       paddle.nn.BatchNorm2D(cout), paddle.nn.ReLU()]
            if pool:
                layers.append(paddle.nn.MaxPool2D(2))
        self.features = paddle.nn.Sequential(*layers)
        self.pool = paddle.nn.AdaptiveAvgPool2D(1)
        self.fc = paddle.nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(paddle.flatten(self.pool(self.features(x)), 1))


def make_network(model, image_shape, num_classes):
    if model == 'MobileNet':
        return paddle.vision.models.MobileNetV1(num_classes=num_classes)
    return SmallCNN(image_shape[0], num_classes)


@dataclass
class Programs:
    """A built program and what the demo fetches from it."""
    main: object
    startup: object
    loss: object
    top1: object
    top5: object
    scheduler: object = None


def _forward(args, dataset, training):
    image = paddle.static.data('image', [None, *dataset.image_shape], 'float32')
    label = paddle.static.data('label', [None, 1], 'int64')
    net = make_network(args.model, dataset.image_shape, dataset.num_classes)
    if not training:
        net.eval()
    out = net(image)
    loss = paddle.mean(paddle.nn.functional.cross_entropy(out, label))
    probs = paddle.nn.functional.softmax(out)
    top1 = paddle.metric.accuracy(input=probs, label=label, k=1)
    top5 = paddle.metric.accuracy(input=probs, label=label, k=min(5, dataset.num_classes))
    return loss, top1, top5


def learning_rate(args, steps_per_epoch):
    """The reference's schedules: piecewise decay (x0.1 at ``--step_epochs``) or cosine."""
    if args.lr_strategy == 'cosine_decay':
        return paddle.optimizer.lr.CosineAnnealingDecay(args.lr, args.num_epochs * steps_per_epoch)
    boundaries = [steps_per_epoch * e for e in args.step_epochs]
    values = [args.lr * 0.1**i for i in range(len(boundaries) + 1)]
    return paddle.optimizer.lr.PiecewiseDecay(boundaries, values)


def build_train(args, dataset, steps_per_epoch, world_size=1):
    """The training program: forward, Momentum + L2 decay; with ``world_size > 1`` the gradients
    are summed over the ranks (``all_reduce`` ops in the program) and divided by it."""
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard():
        loss, top1, top5 = _forward(args, dataset, training=True)
        scheduler = learning_rate(args, steps_per_epoch)
        optimizer = paddle.optimizer.Momentum(
            learning_rate=scheduler, momentum=args.momentum_rate,
            weight_decay=paddle.regularizer.L2Decay(args.l2_decay))
        if world_size > 1:
            params_grads = optimizer.backward(loss)
            for _, grad in params_grads:
                paddle.distributed.all_reduce(grad)
            optimizer.apply_gradients([(p, g * (1.0 / world_size)) for p, g in params_grads])
        else:
            optimizer.minimize(loss)
    return Programs(main, startup, loss, top1, top5, scheduler)


def build_eval(args, dataset):
    """The evaluation program (BN in inference mode), reading the training weights by name."""
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard():
        loss, top1, top5 = _forward(args, dataset, training=False)
    return Programs(main, startup, loss, top1, top5)
