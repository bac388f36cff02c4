"""PaddleClas ``Optimizer`` / ``Loss`` / ``Metric`` sections on Paddle's own classes.

* ``Optimizer: {name, lr: {...}, regularizer: {name: L2, coeff}, clip_norm, ...}`` with
  PaddleClas's optimizer names and arguments: ``Momentum`` (momentum, use_nesterov,
  multi_precision, no_weight_decay_name, one_dim_param_no_weight_decay), ``AdamW`` (beta1,
  beta2, epsilon, weight_decay, multi_precision, no_weight_decay_name,
  one_dim_param_no_weight_decay), ``Adam``, ``SGD``, ``RMSProp``. The schedule is
  :mod:`.lr`.
* ``Loss: {Train: [{CELoss: {weight, epsilon, reduction}}]}``: PaddleClas's ``CELoss``, also
  with the soft targets of Mixup / Cutmix.
* ``Metric: {Eval: [{TopkAcc: {topk: [1, 5]}}]}`` -> ``paddle.metric.Accuracy(topk=(1, 5))``.
"""
import paddle
import paddle.nn.functional as F

from ...core.errors import PruneConfigError
from .lr import build_lr

OPTIMIZER_ARGS = {
    'Momentum': ('momentum', 'weight_decay', 'use_nesterov', 'multi_precision',
                 'no_weight_decay_name', 'one_dim_param_no_weight_decay'),
    'AdamW': ('beta1', 'beta2', 'epsilon', 'weight_decay', 'multi_precision',
              'no_weight_decay_name', 'one_dim_param_no_weight_decay'),
    'Adam': ('beta1', 'beta2', 'epsilon', 'weight_decay', 'lazy_mode', 'multi_precision'),
    'SGD': ('weight_decay', 'multi_precision'),
    'RMSProp': ('momentum', 'rho', 'epsilon', 'weight_decay', 'multi_precision',
                'no_weight_decay_name', 'one_dim_param_no_weight_decay'),
}
TAKES_ANY_ARGUMENT = ('AdamW',)  # PaddleClas's AdamW has **args: other keys are ignored
COMMON_ARGS = ('name', 'lr', 'regularizer', 'clip_norm')


def check_optimizer(opt, key='Optimizer'):
    """Validate an ``Optimizer`` section's names and arguments (not the lr: see .lr).

    Raises:
        PruneConfigError: an optimizer or argument the plugin's trainer does not have.
    """
    name = opt.get('name') if isinstance(opt, dict) else None
    if name not in OPTIMIZER_ARGS:
        raise PruneConfigError(f"{key}.name", name, f"one of {sorted(OPTIMIZER_ARGS)} (the "
                                                    f"plugin's trainer; a clone's Engine has "
                                                    f"them all)")
    allowed = OPTIMIZER_ARGS[name] + COMMON_ARGS
    for arg in opt:
        if arg not in allowed and name not in TAKES_ANY_ARGUMENT:
            raise PruneConfigError(f"{key}.{arg}", opt[arg], f"one of the arguments of {name} "
                                                             f"{list(allowed)}")
    reg = opt.get('regularizer')
    if reg is not None and (not isinstance(reg, dict) or reg.get('name') not in ('L2', 'L1')):
        raise PruneConfigError(f"{key}.regularizer.name", reg, "'L2' or 'L1'")


def _decay_split(network, opt_cfg):
    """Names of parameters without weight decay (PaddleClas's no_weight_decay_name rules)."""
    names = str(opt_cfg.get('no_weight_decay_name') or '').split()
    one_dim = bool(opt_cfg.get('one_dim_param_no_weight_decay', False))
    return {p.name for n, p in network.named_parameters()
            if any(nd in n for nd in names) or (one_dim and len(p.shape) == 1)}


def build_optimizer(opt_cfg, network, epochs, steps_per_epoch, multi_precision=False):
    """The optimizer of a validated ``Optimizer`` section, for ``network``'s parameters.

    Args:
        opt_cfg: ``Optimizer``.
        network: The model.
        epochs: ``Global.epochs``.
        steps_per_epoch: Optimizer updates per epoch.
        multi_precision: fp32 master weights (AMP O2) unless the section says otherwise.

    Returns:
        ``(optimizer, scheduler, by_epoch)``.
    """
    name = opt_cfg['name']
    scheduler, by_epoch = build_lr(opt_cfg['lr'], epochs, steps_per_epoch)
    weight_decay = opt_cfg.get('weight_decay')
    reg = opt_cfg.get('regularizer')
    if reg:
        decay = paddle.regularizer.L2Decay if reg['name'] == 'L2' else paddle.regularizer.L1Decay
        weight_decay = decay(float(reg.get('coeff', 0.0)))
    clip = (paddle.nn.ClipGradByNorm(float(opt_cfg['clip_norm']))
            if opt_cfg.get('clip_norm') else None)
    no_decay = _decay_split(network, opt_cfg)
    params = network.parameters()
    if no_decay and name in ('Momentum', 'RMSProp'):
        params = [{'params': [p for p in params if p.name not in no_decay],
                   'weight_decay': weight_decay},
                  {'params': [p for p in params if p.name in no_decay], 'weight_decay': 0.0}]
    common = dict(learning_rate=scheduler, parameters=params, grad_clip=clip,
                  multi_precision=bool(opt_cfg.get('multi_precision', multi_precision)))
    if name == 'Momentum':
        optimizer = paddle.optimizer.Momentum(
            momentum=float(opt_cfg.get('momentum', 0.9)), weight_decay=weight_decay,
            use_nesterov=bool(opt_cfg.get('use_nesterov', False)), **common)
    elif name == 'AdamW':
        optimizer = paddle.optimizer.AdamW(
            beta1=float(opt_cfg.get('beta1', 0.9)), beta2=float(opt_cfg.get('beta2', 0.999)),
            epsilon=float(opt_cfg.get('epsilon', 1e-8)),
            weight_decay=weight_decay if weight_decay is not None else 0.01,
            apply_decay_param_fun=(lambda n: n not in no_decay) if no_decay else None, **common)
    elif name == 'Adam':
        optimizer = paddle.optimizer.Adam(
            beta1=float(opt_cfg.get('beta1', 0.9)), beta2=float(opt_cfg.get('beta2', 0.999)),
            epsilon=float(opt_cfg.get('epsilon', 1e-8)), weight_decay=weight_decay,
            lazy_mode=bool(opt_cfg.get('lazy_mode', False)), **common)
    elif name == 'RMSProp':
        optimizer = paddle.optimizer.RMSProp(
            rho=float(opt_cfg.get('rho', 0.95)), epsilon=float(opt_cfg.get('epsilon', 1e-6)),
            momentum=float(opt_cfg.get('momentum', 0.0)), weight_decay=weight_decay, **common)
    else:
        optimizer = paddle.optimizer.SGD(weight_decay=weight_decay, **common)
    return optimizer, scheduler, by_epoch


class CELoss(paddle.nn.Layer):
    """PaddleClas's ``CELoss``: cross entropy, label smoothing ``epsilon``, soft targets.

    With ``epsilon`` in (0, 1), the target (one-hot of the label, or the soft target of a mixed
    batch) is smoothed and the loss is ``sum(-log_softmax(x) * target)``. Without it, a hard
    label gives plain cross entropy and a soft target ``[N, classes]`` gives soft-label cross
    entropy against ``softmax(target)``: PaddleClas applies that softmax to soft targets, and so
    does this loss, so that both train the same.

    Args:
        weight: Factor on the loss (``CombinedLoss``'s weight).
        epsilon: Label smoothing; None, <= 0 or >= 1 for none (as PaddleClas).
        reduction: ``'mean'``, ``'sum'`` or ``'none'``.
    """

    def __init__(self, weight=1.0, epsilon=None, reduction='mean'):
        super().__init__()
        if reduction not in ('mean', 'sum', 'none'):
            raise PruneConfigError('CELoss.reduction', reduction, "'mean', 'sum' or 'none'")
        self.weight = float(weight)
        self.epsilon = float(epsilon) if epsilon is not None and 0 < epsilon < 1 else None
        self.reduction = reduction

    def _reduce(self, loss):
        if self.reduction == 'mean':
            return loss.mean()
        return loss.sum() if self.reduction == 'sum' else loss

    def forward(self, logits, label):
        logits = logits.astype('float32')
        classes = logits.shape[-1]
        soft = len(label.shape) == 2 and label.shape[-1] == classes and classes > 1
        if self.epsilon is not None:
            target = label.astype('float32') if soft else F.one_hot(
                label.reshape([-1]).astype('int64'), classes)
            target = F.label_smooth(target, epsilon=self.epsilon)
            loss = self._reduce((-F.log_softmax(logits, axis=-1) * target).sum(axis=-1))
        elif soft:
            target = F.softmax(label.astype('float32'), axis=-1)
            loss = F.cross_entropy(logits, target, soft_label=True, reduction=self.reduction)
        else:
            loss = F.cross_entropy(logits, label.reshape([-1, 1]).astype('int64'),
                                   reduction=self.reduction)
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


def TopkAcc(topk=(1, 5)):  # noqa: N802  (PaddleClas's name)
    """PaddleClas's ``TopkAcc`` metric: ``paddle.metric.Accuracy(topk)`` (takes soft targets)."""
    return paddle.metric.Accuracy(topk=tuple(topk))


def build_metrics(items):
    """The metrics of a ``Metric.Eval`` list (default: top-1 / top-5 accuracy)."""
    metrics = [TopkAcc(**(args or {})) for item in items or [] for _, args in item.items()]
    return metrics or [TopkAcc()]
