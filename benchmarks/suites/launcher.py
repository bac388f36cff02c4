"""Run ``tools/train.py``'s command in this process, timing the work the plugin does.

Used by ``python -m benchmarks.suites``; not a user command. The plugin's share of training time is
measured from outside, without touching ``prune_plugin`` itself: before training starts, the
methods through which the plugin does work during training are wrapped with a timer:

- the pruner (``prune_plugin.core.pruner.UnstructuredPruner``, also GMP): ``step``,
  ``update_params``, ``update_masks``, ``apply_masks_to``, ``sparsity``, ``prunable_sparsity``,
  ``state_dict``, ``set_state_dict`` (and, with an engine that has one, the gradient-masking
  hook made by ``_gradient_mask_hook``, which runs inside ``backward``);
- the adapters' trainer hooks that call it: ppdet's ``PruneCallback.on_step_end`` /
  ``on_epoch_end`` / ``on_train_end`` (they also mask the EMA and log) and the hapi
  ``PruneCallback`` hooks (PaddleClas). PaddleSeg's optimizer wrapper calls ``pruner.step()``.

Nested timed calls are counted once (the outermost). The result is written as JSON::

    python benchmarks/suites/launcher.py --timing-out t.json -c CFG [tools/train.py options]

- ``train_rc``, ``train_seconds``: exit code and wall time of the train command (model build,
  data loading, training, checkpoints);
- ``plugin_seconds``: time inside the wrapped calls; ``span_seconds``: from the first wrapped
  call to the end of the last (the training loop after the first step);
- ``calls`` ``{label: n}``, ``seconds_by_label`` ``{label: inclusive seconds}``;
- ``pruner``: the spec the run was built from and where its pruner ended.
"""
import functools
import json
import os
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

class PluginTimer:
    """Accumulates wall time inside wrapped callables: in total (outermost calls only, so
    nothing is counted twice) and per label (inclusive, for a breakdown)."""

    def __init__(self):
        self.seconds = 0.0
        self.calls = {}
        self.seconds_by_label = {}
        self.first_start = None     # the span from the first call in to the last return:
        self.last_end = None        # the training loop, as the pruning code sees it
        self._depth = 0

    def wrap(self, label, fn):
        """``fn`` with its time added to :attr:`seconds` and its calls counted under ``label``."""
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.calls[label] = self.calls.get(label, 0) + 1
            outermost = self._depth == 0
            self._depth += 1
            start = time.perf_counter()
            if self.first_start is None:
                self.first_start = start
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.perf_counter()
                spent = end - start
                self._depth -= 1
                if outermost:
                    self.seconds += spent
                    self.last_end = end
                self.seconds_by_label[label] = self.seconds_by_label.get(label, 0.0) + spent
        return timed

    @property
    def span_seconds(self):
        """Seconds from the first wrapped call to the end of the last one (0 without calls)."""
        return 0.0 if self.first_start is None else self.last_end - self.first_start

    def patch(self, owner, names, prefix):
        """Set each ``owner.<name>`` that exists (also inherited) to its timed version."""
        for name in names:
            fn = getattr(owner, name, None)
            if fn is not None:
                setattr(owner, name, self.wrap(f"{prefix}.{name}", fn))

    def wrap_hook_factory(self, owner, name, label):
        """``owner.<name>(...)`` returns a hook; make every hook it returns a timed one.

        Nothing happens when ``owner`` has no such method (the engine then registers none).
        """
        factory = getattr(owner, name, None)
        if factory is None:
            return

        @functools.wraps(factory)
        def timed_factory(*args, **kwargs):
            return self.wrap(label, factory(*args, **kwargs))
        setattr(owner, name, timed_factory)


PRUNER_METHODS = ('step', 'update_params', 'update_masks', 'apply_masks_to', 'sparsity',
                  'prunable_sparsity', 'state_dict', 'set_state_dict')
PPDET_CALLBACK_METHODS = ('on_step_end', 'on_epoch_end', 'on_train_end')
HAPI_CALLBACK_METHODS = ('on_train_batch_end', 'on_epoch_end', 'on_eval_begin', 'on_train_end')


def install_plugin_timer(suite):
    """Wrap the plugin's training-time entry points (see the module docstring).

    Args:
        suite: ``'ppdet'``, ``'ppseg'`` or ``'ppcls'`` (ppdet's callback is imported for ppdet
            only).

    Returns:
        The :class:`PluginTimer` that accumulates the time.
    """
    from prune_plugin.core import pruner as pruner_module

    timer = PluginTimer()
    cls = pruner_module.UnstructuredPruner
    timer.patch(cls, PRUNER_METHODS, 'pruner')
    timer.wrap_hook_factory(cls, '_gradient_mask_hook', 'pruner.gradient_hook')
    try:
        from prune_plugin import hapi_callback
        timer.patch(hapi_callback.PruneCallback, HAPI_CALLBACK_METHODS, 'hapi_callback')
    except ImportError:
        pass
    if suite == 'ppdet':
        from prune_plugin.adapters.ppdet import callback as ppdet_callback
        timer.patch(ppdet_callback.PruneCallback, PPDET_CALLBACK_METHODS, 'ppdet_callback')
    return timer


def record_built_pruners(built):
    """Append ``(spec, pruner)`` to ``built`` each time ``PruneSpec.build`` makes a pruner."""
    from prune_plugin.core.spec import PruneSpec

    build = PruneSpec.build

    @functools.wraps(build)
    def recording_build(spec, *args, **kwargs):
        pruner = build(spec, *args, **kwargs)
        built.append((spec, pruner))
        return pruner
    PruneSpec.build = recording_build


def pruner_summary(spec, pruner):
    """What the run was asked for (the spec) and where its pruner ended."""
    return {'mode': spec.mode, 'ratio': spec.ratio, 'prune_params_type': spec.prune_params_type,
            'local_sparsity': bool(spec.local_sparsity), 'sparse_block': list(spec.sparse_block),
            'sparse_pattern': spec.sparse_pattern, 'prune_params': spec.prune_params,
            'skip_params': spec.skip_params, 'gmp': spec.gmp,
            'final_ratio': float(getattr(pruner, 'ratio', spec.ratio)),
            'final_iteration': int(pruner.iteration), 'final_sparsity': float(pruner.sparsity()),
            'prunable_weights': int(sum(int(np.prod(p.shape)) for p in pruner.params))}


def main(argv):
    if len(argv) < 3 or argv[0] != '--timing-out':
        raise SystemExit("usage: launcher.py --timing-out FILE TRAIN_ARGS...")
    out, train_args = argv[1], argv[2:]
    from prune_plugin.suites import detect_suite
    from prune_plugin.cli import run

    config = train_args[train_args.index('-c') + 1] if '-c' in train_args else None
    timer = install_plugin_timer(detect_suite(config) if config else None)
    built = []
    record_built_pruners(built)
    result = {}
    start = time.perf_counter()
    result['train_rc'] = run('train', train_args)
    result['train_seconds'] = time.perf_counter() - start
    result['plugin_seconds'] = timer.seconds
    result['span_seconds'] = timer.span_seconds
    result['calls'] = dict(timer.calls)
    result['seconds_by_label'] = dict(timer.seconds_by_label)
    if built:
        result['pruner'] = pruner_summary(*built[-1])
    with open(out, 'w') as handle:
        json.dump(result, handle, indent=1)
    return result['train_rc']


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
