"""PaddleClas's learning-rate schedules (``Optimizer.lr``), with PaddleClas's rules.

As ``ppcls/optimizer/learning_rate.py`` (develop and 2.5.2, identical), on
``paddle.optimizer.lr`` schedulers:

* epochs are converted with the real updates per epoch; schedules step every update, or every
  epoch with ``by_epoch: True``;
* ``warmup_epoch`` (clamped to ``Global.epochs``) puts a ``LinearWarmup`` from
  ``warmup_start_lr`` to the schedule's start in front; Cosine and Linear decay over the epochs
  after the warm-up;
* ``Piecewise`` with a ``learning_rate``: that value wins over ``decay_epochs`` / ``values``:
  it is divided by 10 every 30 epochs (one constant value below 31 epochs), as PaddleClas does
  (so ``-o Optimizer.lr.learning_rate=0.01`` trains at 0.01).

=================  =================================================================
name               arguments (plus warmup_epoch, warmup_start_lr, by_epoch, last_epoch)
=================  =================================================================
Piecewise          decay_epochs, values | learning_rate
Cosine             learning_rate, eta_min
Step               learning_rate, step_size (epochs), gamma
MultiStepDecay     learning_rate, milestones (epochs), gamma
Linear             learning_rate, end_lr, power, cycle
ConstLR            learning_rate
Constant           learning_rate (no warm-up)
=================  =================================================================
"""
import logging

from paddle.optimizer import lr as lr_mod

from ...core.errors import PruneConfigError

logger = logging.getLogger('prune_plugin')

LR_ARGS = {
    'Piecewise': ('decay_epochs', 'values', 'learning_rate'),
    'Cosine': ('learning_rate', 'eta_min'),
    'Step': ('learning_rate', 'step_size', 'gamma'),
    'MultiStepDecay': ('learning_rate', 'milestones', 'gamma'),
    'Linear': ('learning_rate', 'end_lr', 'power', 'cycle'),
    'ConstLR': ('learning_rate',),
    'Constant': ('learning_rate',),
}
# epochs and step_each_epoch are set by the run (PaddleClas overwrites them too)
COMMON_ARGS = ('name', 'warmup_epoch', 'warmup_start_lr', 'by_epoch', 'last_epoch', 'verbose',
               'epochs', 'step_each_epoch')


def piecewise_from_learning_rate(learning_rate, epochs):
    """PaddleClas's rule when Piecewise has a ``learning_rate``: x0.1 every 30 epochs.

    Returns:
        ``(decay_epochs, values)``.
    """
    decay_epochs = list(range(0, epochs, 30))
    values = [learning_rate * 0.1 ** i for i in range(len(decay_epochs))]
    if len(decay_epochs) == 1:
        return [epochs], [values[0], values[0]]
    return decay_epochs[1:], values


def check_lr(lr_cfg, key='Optimizer.lr'):
    """Validate an ``Optimizer.lr`` section (names and required values) before training.

    Raises:
        PruneConfigError: an unknown schedule or argument, a missing value.
    """
    name = lr_cfg.get('name') if isinstance(lr_cfg, dict) else None
    if name not in LR_ARGS:
        raise PruneConfigError(f"{key}.name", name, f"one of {sorted(LR_ARGS)} (the plugin's "
                                                    f"trainer; a clone's Engine has them all)")
    for arg in lr_cfg:
        if arg not in LR_ARGS[name] + COMMON_ARGS:
            raise PruneConfigError(f"{key}.{arg}", lr_cfg[arg],
                                   f"one of the arguments {list(LR_ARGS[name] + COMMON_ARGS)}")
    if name == 'Piecewise' and not lr_cfg.get('learning_rate'):
        epochs, values = lr_cfg.get('decay_epochs'), lr_cfg.get('values')
        if not isinstance(epochs, list) or not isinstance(values, list) \
                or len(values) != len(epochs) + 1:
            raise PruneConfigError(f"{key}.values", values,
                                   "a list one longer than Optimizer.lr.decay_epochs (or set "
                                   "Optimizer.lr.learning_rate)")
    required = {'Step': 'step_size', 'MultiStepDecay': 'milestones'}.get(name)
    if required and required not in lr_cfg:
        raise PruneConfigError(f"{key}.{required}", None, f"a value ({name} needs it)")
    if name != 'Piecewise' and not isinstance(lr_cfg.get('learning_rate'), (int, float)):
        raise PruneConfigError(f"{key}.learning_rate", lr_cfg.get('learning_rate'), "a number")


def build_lr(lr_cfg, epochs, steps_per_epoch):
    """The scheduler of a validated ``Optimizer.lr`` section.

    Args:
        lr_cfg: ``Optimizer.lr``.
        epochs: ``Global.epochs``.
        steps_per_epoch: Optimizer updates per epoch.

    Returns:
        ``(scheduler, by_epoch)``: step it every update, or every epoch when ``by_epoch``.
    """
    cfg = dict(lr_cfg)
    name = cfg['name']
    by_epoch = bool(cfg.get('by_epoch', False))
    unit = 1 if by_epoch else steps_per_epoch
    warmup_epoch = cfg.get('warmup_epoch', 0) or 0
    if name != 'Constant' and warmup_epoch >= epochs:
        logger.warning("Optimizer.lr.warmup_epoch=%s >= Global.epochs=%s: warming up over all "
                       "%s epochs (as PaddleClas)", warmup_epoch, epochs, epochs)
        warmup_epoch = epochs
    warmup_steps = warmup_epoch if by_epoch else round(warmup_epoch * steps_per_epoch)
    decay_span = (epochs - warmup_epoch) * unit
    if name == 'Piecewise':
        epochs_list, values = cfg.get('decay_epochs'), cfg.get('values')
        if cfg.get('learning_rate'):
            epochs_list, values = piecewise_from_learning_rate(float(cfg['learning_rate']),
                                                               epochs)
        values = [float(v) for v in values]
        peak = values[0]
        schedule = lr_mod.PiecewiseDecay([int(e * unit) for e in epochs_list], values)
    else:
        peak = float(cfg['learning_rate'])
        if name == 'Cosine' and decay_span > 0:
            schedule = lr_mod.CosineAnnealingDecay(peak, T_max=decay_span,
                                                   eta_min=float(cfg.get('eta_min', 0.0)))
        elif name == 'Linear' and decay_span > 0:
            schedule = lr_mod.PolynomialDecay(peak, decay_steps=decay_span,
                                              end_lr=float(cfg.get('end_lr', 0.0)),
                                              power=float(cfg.get('power', 1.0)),
                                              cycle=bool(cfg.get('cycle', False)))
        elif name == 'Step':
            schedule = lr_mod.StepDecay(peak, step_size=int(cfg['step_size'] * unit),
                                        gamma=float(cfg.get('gamma', 0.1)))
        elif name == 'MultiStepDecay':
            schedule = lr_mod.MultiStepDecay(peak, [int(m * unit) for m in cfg['milestones']],
                                             gamma=float(cfg.get('gamma', 0.1)))
        else:  # ConstLR, Constant, or a decay over no steps
            schedule = lr_mod.LambdaDecay(peak, lambda _: 1.0)
    if warmup_steps > 0 and name != 'Constant':
        schedule = lr_mod.LinearWarmup(schedule, warmup_steps=warmup_steps,
                                       start_lr=float(cfg.get('warmup_start_lr', 0.0)),
                                       end_lr=peak)
    return schedule, by_epoch
