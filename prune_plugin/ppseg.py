"""PaddleSeg hook for your own ``tools/train.py`` (paddleseg 2.8 / 2.9): one import, one call.

In PaddleSeg's ``tools/train.py``, after ``optimizer = builder.optimizer``::

    from prune_plugin.ppseg import attach_pruner
    ...
    optimizer = builder.optimizer
    attach_pruner(builder, model, optimizer, save_dir=args.save_dir,
                  resume_model=args.resume_model)
    loss = builder.loss

The config's ``slim: UnstructuredPrune`` block then trains the model sparse: every checkpoint
(``iter_N``, ``best_model``, EMA) holds exact zeros, ``iter_N/model.pdprune`` carries the pruner
state and ``--resume_model`` continues the schedule. Without a ``slim`` key the call only makes
the config's losses and metric run on Paddle 3. See ``docs/real-checkouts/ppseg.md``.
"""

__all__ = ['attach_pruner', 'make_losses_paddle3_ready']


def attach_pruner(builder, model, optimizer, save_dir='output', resume_model=None):
    """Prune ``model`` during ``paddleseg.core.train`` as the config's block says.

    See :func:`prune_plugin.adapters.ppseg.hook.attach_pruner` (arguments, returns, raises).
    """
    from .adapters.ppseg.hook import attach_pruner as attach
    return attach(builder, model, optimizer, save_dir=save_dir, resume_model=resume_model)


def make_losses_paddle3_ready(losses):
    """Make paddleseg's built losses run on Paddle 3 and return shape ``[1]`` (nested too).

    See :func:`prune_plugin.adapters.ppseg.losses.make_losses_paddle3_ready`.
    """
    from .adapters.ppseg.losses import make_losses_paddle3_ready as make_ready
    return make_ready(losses)
