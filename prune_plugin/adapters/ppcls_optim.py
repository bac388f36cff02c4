"""PaddleClas ``Optimizer`` / ``Loss`` / ``Metric`` sections on Paddle's own classes.

* ``Optimizer: {name: Momentum, momentum, lr: {...}, regularizer: {name: L2, coeff}}`` ->
  ``paddle.optimizer.Momentum`` with ``paddle.regularizer.L2Decay``.
* ``lr: {name: Piecewise, decay_epochs, values}`` / ``{name: Cosine, learning_rate, eta_min}`` /
  ``{name: Constant, learning_rate}``, each with optional ``warmup_epoch`` / ``warmup_start_lr``:
  ``paddle.optimizer.lr`` schedulers stepped every iteration (PaddleClas's default), epochs
  converted with the real steps per epoch.
* ``Loss: {Train: [{CELoss: {weight, epsilon}}]}``: cross entropy, label smoothing ``epsilon``.
* ``Metric: {Eval: [{TopkAcc: {topk: [1, 5]}}]}`` -> ``paddle.metric.Accuracy(topk=(1, 5))``.
"""
import paddle
import paddle.nn.functional as F


def build_lr(lr_cfg, epochs, steps_per_epoch):
    """A per-iteration ``paddle.optimizer.lr.LRScheduler`` from a PaddleClas ``lr`` section.

    Args:
        lr_cfg: ``Optimizer.lr`` (validated by ``ppcls_config``).
        epochs: ``Global.epochs``.
        steps_per_epoch: Optimizer updates per epoch.

    Returns:
        The scheduler (a ``LinearWarmup`` around it when ``warmup_epoch`` > 0).
    """
    lr = paddle.optimizer.lr
    name = lr_cfg['name']
    warmup_steps = int(round(float(lr_cfg.get('warmup_epoch', 0)) * steps_per_epoch))
    if name == 'Piecewise':
        boundaries = [int(e * steps_per_epoch) for e in lr_cfg['decay_epochs']]
        values = [float(v) for v in lr_cfg['values']]
        schedule = lr.PiecewiseDecay(boundaries=boundaries, values=values)
        peak = values[0]
    elif name == 'Cosine':
        peak = float(lr_cfg['learning_rate'])
        total = max(1, epochs * steps_per_epoch - warmup_steps)
        schedule = lr.CosineAnnealingDecay(learning_rate=peak, T_max=total,
                                           eta_min=float(lr_cfg.get('eta_min', 0.0)))
    else:
        peak = float(lr_cfg['learning_rate'])
        schedule = peak
    if warmup_steps > 0:
        return lr.LinearWarmup(schedule, warmup_steps=warmup_steps,
                               start_lr=float(lr_cfg.get('warmup_start_lr', 0.0)), end_lr=peak)
    if isinstance(schedule, float):
        return lr.LambdaDecay(schedule, lambda _: 1.0)
    return schedule


def build_optimizer(opt_cfg, parameters, epochs, steps_per_epoch, multi_precision=False):
    """``paddle.optimizer.Momentum`` from a PaddleClas ``Optimizer`` section.

    Returns:
        ``(optimizer, lr_scheduler)``.
    """
    scheduler = build_lr(opt_cfg['lr'], epochs, steps_per_epoch)
    reg_cfg = opt_cfg.get('regularizer')
    regularizer = None
    if reg_cfg:
        decay = (paddle.regularizer.L2Decay if reg_cfg['name'] == 'L2'
                 else paddle.regularizer.L1Decay)
        regularizer = decay(float(reg_cfg.get('coeff', 0.0)))
    optimizer = paddle.optimizer.Momentum(
        learning_rate=scheduler, momentum=float(opt_cfg.get('momentum', 0.9)),
        parameters=parameters, weight_decay=regularizer,
        use_nesterov=bool(opt_cfg.get('use_nesterov', False)), multi_precision=multi_precision)
    return optimizer, scheduler


class CELoss(paddle.nn.Layer):
    """PaddleClas's ``CELoss``: cross entropy with optional label smoothing ``epsilon``.

    Args:
        weight: Factor on the loss.
        epsilon: Label smoothing in [0, 1); None or 0 for plain cross entropy.
    """

    def __init__(self, weight=1.0, epsilon=None):
        super().__init__()
        self.weight = float(weight)
        self.epsilon = float(epsilon or 0.0)

    def forward(self, logits, label):
        logits = logits.astype('float32')
        label = label.reshape([-1]).astype('int64')
        if self.epsilon > 0:
            # cross_entropy(label_smoothing=...) has no int64 kernel on Paddle 3.3 CPU: smooth
            # a one-hot target instead (same formula: (1 - eps) * onehot + eps / classes)
            target = F.label_smooth(F.one_hot(label, logits.shape[-1]), epsilon=self.epsilon)
            loss = F.cross_entropy(logits, target, soft_label=True)
        else:
            loss = F.cross_entropy(logits, label.reshape([-1, 1]))
        return loss * self.weight


class SumOfLosses(paddle.nn.Layer):
    """The sum of a PaddleClas ``Loss.Train`` list."""

    def __init__(self, losses):
        super().__init__()
        self.losses = paddle.nn.LayerList(losses)

    def forward(self, logits, label):
        return paddle.add_n([loss(logits, label) for loss in self.losses])


def build_loss(items):
    """A loss layer from a validated ``Loss.Train`` list ``[{CELoss: {...}}]``."""
    losses = [CELoss(**(args or {})) for item in items for _, args in item.items()]
    return losses[0] if len(losses) == 1 else SumOfLosses(losses)


def build_metrics(items):
    """``[paddle.metric.Accuracy(topk=...)]`` from a ``Metric.Eval`` list (default top-1/top-5)."""
    topk = (1, 5)
    for item in items or []:
        for _, args in item.items():
            topk = tuple((args or {}).get('topk', topk))
    return [paddle.metric.Accuracy(topk=topk)]
