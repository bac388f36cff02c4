"""Measurements of benchmarks/engine_overhead.py: prune events, steady steps, memory.

Each function returns plain dicts (the report formats them). Ours and PaddleSlim's pruners, and
optionally an earlier prune_plugin engine (``load_baseline_engine``), take turns on the same
weights in one process, so that a busy machine slows them alike; the best of the repeats is
kept (as ``timeit`` advises: other jobs only ever add time).
"""
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import paddle

from _common import REPO_ROOT, make_slim_pruner, slim_mask_bytes

from prune_plugin.core import UnstructuredPruner  # noqa: E402

EVENT_CASES = (
    ('global ratio 0.55', dict(mode='ratio', ratio=0.55)),
    ('local ratio 0.55', dict(mode='ratio', ratio=0.55, local_sparsity=True)),
    ('2x1 blocks, ratio 0.55', dict(mode='ratio', ratio=0.55, sparse_block=[2, 1])),
)
STEADY_CASES = (
    ('threshold 0.01', dict(mode='threshold', threshold=0.01)),
    ('global ratio 0.55', dict(mode='ratio', ratio=0.55)),
)
# every way a value can travel between a tensor and Python (what a steady step must not do)
HOST_CROSSINGS = [(paddle.Tensor, name) for name in (
    'numpy', 'item', 'tolist', '__float__', '__int__', '__bool__', '__index__', '__array__',
    'cpu', '_copy_to')] + [(paddle, 'to_tensor'), (paddle, 'masked_select'), (paddle, 'nonzero')]


def synchronize():
    """Wait for queued device work (GPU timings); nothing to wait for on CPU."""
    if not paddle.get_device().startswith('cpu'):
        paddle.device.synchronize()


def timed(fn, *args):
    """Seconds of one ``fn(*args)`` call, device work included."""
    return timed_with_cpu(fn, *args)[0]


def timed_with_cpu(fn, *args):
    """(wall seconds, CPU seconds of this process) of one ``fn(*args)`` call.

    On a CPU shared with other jobs the CPU seconds are the steadier figure: waiting for a core
    adds wall time, not CPU time. (On a GPU they leave out the device's work.)
    """
    synchronize()
    start, start_cpu = time.perf_counter(), time.process_time()
    fn(*args)
    synchronize()
    return time.perf_counter() - start, time.process_time() - start_cpu


class HostCrossingCounter:
    """Counts HOST_CROSSINGS calls made inside :meth:`count` (the functions are wrapped once)."""

    def __init__(self):
        self.calls = 0
        self.active = False
        for owner, name in HOST_CROSSINGS:
            setattr(owner, name, self._wrap(getattr(owner, name)))

    def _wrap(self, fn):
        def counted(*args, **kwargs):
            if self.active:
                self.calls += 1
            return fn(*args, **kwargs)
        return counted

    def count(self, fn):
        """Run ``fn()``; return (wall seconds, CPU seconds, host crossings)."""
        before, self.active = self.calls, True
        try:
            seconds, cpu_seconds = timed_with_cpu(fn)
        finally:
            self.active = False
        return seconds, cpu_seconds, self.calls - before


def load_baseline_engine(ref):
    """An earlier commit's ``prune_plugin`` imported as ``prune_plugin_baseline`` (its core).

    Args:
        ref: A git ref of this repository (e.g. ``main`` or a commit before a change).

    Returns:
        The baseline's ``core`` module (with its own ``UnstructuredPruner``).
    """
    target = tempfile.mkdtemp(prefix='engine_baseline_')
    archive = subprocess.run(['git', 'archive', ref, 'prune_plugin'], cwd=REPO_ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(['tar', '-x', '-C', target], input=archive, check=True)
    package = os.path.join(target, 'prune_plugin')
    spec = importlib.util.spec_from_file_location(
        'prune_plugin_baseline', os.path.join(package, '__init__.py'),
        submodule_search_locations=[package])
    module = importlib.util.module_from_spec(spec)
    sys.modules['prune_plugin_baseline'] = module
    spec.loader.exec_module(module)
    return importlib.import_module('prune_plugin_baseline.core')


def _weights_keeper(model):
    """A function that puts ``model``'s weights back to what they are now."""
    saved = {k: v.clone() for k, v in model.state_dict().items()}

    def restore():
        with paddle.no_grad():
            for key, value in model.state_dict().items():
                value.set_value(saved[key])
    return restore


def _slim_event(pruner):
    # What PaddleSlim's step() does in ratio mode: the thresholds, then the masks.
    pruner.update_threshold()
    pruner._update_masks()


def _slim_block_seconds(model, kwargs, max_params):
    """PaddleSlim's block update, timed once; on a prefix of the parameters if ``max_params``."""
    full = make_slim_pruner(model, **kwargs)
    prunable = [p for _, layer in model.named_sublayers() if full._should_prune_layer(layer)
                for p in layer.parameters(include_sublayers=False) if p.name not in full.skip_params]
    total = sum(int(np.prod(p.shape)) for p in prunable)
    if not max_params or total <= max_params:
        return timed(_slim_event, full), None
    chosen, size = set(), 0
    for p in prunable:
        if size >= max_params:
            break
        chosen.add(p.name)
        size += int(np.prod(p.shape))
    skip = {p.name for p in model.parameters() if p.name not in chosen}
    subset = make_slim_pruner(model, skip_params_func=lambda _m: skip, **kwargs)
    seconds = timed(_slim_event, subset)
    return seconds * total / size, f"timed on {size:,} of {total:,} weights, scaled x{total / size:.1f}"


def measure_events(model_name, model, repeats, block_max_params, baseline=None):
    """One prune event (``update_masks()`` of a fresh pruner) per case: ours, PaddleSlim's and
    the baseline engine's, taking turns; best of ``repeats`` (PaddleSlim's blocks: once)."""
    restore = _weights_keeper(model)
    rows = []
    for case, kwargs in EVENT_CASES:
        engines = {'ours': UnstructuredPruner}
        if baseline is not None:
            engines['baseline'] = baseline.UnstructuredPruner
        times = {name: [] for name in engines}
        blocks = kwargs.get('sparse_block') is not None
        slim_times = []
        for _ in range(repeats + 1):  # the first round warms up
            for name, cls in engines.items():
                restore()
                pruner = cls(model, **kwargs)
                times[name].append(timed(pruner.update_masks))
                if name == 'ours':
                    sparsity = pruner.sparsity()
            if not blocks:
                slim = make_slim_pruner(model, **kwargs)
                slim_times.append(timed(_slim_event, slim))
        restore()
        note = None
        if blocks:
            slim_s, note = _slim_block_seconds(model, kwargs, block_max_params)
        else:
            slim_s = min(slim_times[1:])
        row = dict(model=model_name, case=case, ours=min(times['ours'][1:]), slim=slim_s,
                   note=note, ours_sparsity=sparsity,
                   baseline=min(times['baseline'][1:]) if baseline is not None else None)
        row['speedup'] = row['slim'] / row['ours']
        rows.append(row)
        print(f"{model_name:22s} event {case:24s} ours {row['ours'] * 1e3:8.1f} ms  "
              + (f"before {row['baseline'] * 1e3:8.1f} ms  " if baseline is not None else '')
              + f"PaddleSlim {slim_s * 1e3:10.1f} ms" + (f"  ({note})" if note else ''),
              flush=True)
    return rows


def measure_steady_steps(model_name, model, steps, slim_steps, counter, baseline=None):
    """``step()`` after the first (no prune event): ours (with its host crossings counted),
    the baseline engine's and PaddleSlim's, taking turns; best and median."""
    restore = _weights_keeper(model)
    rows = []
    for case, kwargs in STEADY_CASES:
        restore()
        pruners = {'ours': UnstructuredPruner(model, **kwargs)}
        if baseline is not None:
            pruners['baseline'] = baseline.UnstructuredPruner(model, **kwargs)
        pruners['slim'] = make_slim_pruner(model, **kwargs)
        for pruner in pruners.values():
            pruner.step()  # the first step: the prune event (or the first masks)
        times = {name: [] for name in pruners}
        cpu_times = {name: [] for name in pruners}
        crossings = 0
        for i in range(steps):
            for name, pruner in pruners.items():
                if name == 'slim' and i >= slim_steps:
                    continue
                if name == 'ours':
                    seconds, cpu_seconds, crossed = counter.count(pruner.step)
                    crossings += crossed
                else:
                    seconds, cpu_seconds = timed_with_cpu(pruner.step)
                times[name].append(seconds)
                cpu_times[name].append(cpu_seconds)
        restore()
        row = dict(model=model_name, case=case, steps=steps, crossings=crossings,
                   ours=min(times['ours']), ours_median=statistics.median(times['ours']),
                   ours_cpu=min(cpu_times['ours']), slim=min(times['slim']),
                   slim_cpu=min(cpu_times['slim']), slim_steps=len(times['slim']),
                   baseline=min(times['baseline']) if baseline is not None else None,
                   baseline_cpu=min(cpu_times['baseline']) if baseline is not None else None)
        row['speedup'] = row['slim'] / row['ours']
        rows.append(row)
        print(f"{model_name:22s} step  {case:24s} ours {row['ours'] * 1e3:8.2f} ms (median "
              f"{row['ours_median'] * 1e3:.2f}, CPU {row['ours_cpu'] * 1e3:.2f}, {crossings} "
              f"host crossings in {steps} steps)  "
              + (f"before {row['baseline'] * 1e3:8.2f} ms  " if baseline is not None else '')
              + f"PaddleSlim {row['slim'] * 1e3:9.1f} ms", flush=True)
    return rows


def _state_dict_bytes(model):
    return sum(int(np.prod(v.shape)) * v.element_size() for v in model.state_dict().values())


def measure_memory(model_name, model):
    """Bytes per prunable weight held by each pruner, and bytes it adds to a checkpoint.

    Must run before any PaddleSlim pruner was built on ``model`` (those register mask buffers).
    """
    dense_ckpt = _state_dict_bytes(model)
    ours = UnstructuredPruner(model, mode='ratio', ratio=0.55)
    ours.update_masks()
    prunable = sum(int(np.prod(p.shape)) for p in ours.params)
    ours_bytes = sum(int(m.numel()) * m.element_size() for m in ours.masks.values())
    ours_ckpt = _state_dict_bytes(model) - dense_ckpt
    slim = make_slim_pruner(model, mode='ratio', ratio=0.55)
    slim_bytes = slim_mask_bytes(slim)
    slim_ckpt = _state_dict_bytes(model) - dense_ckpt - ours_ckpt
    row = dict(model=model_name, prunable=prunable, ours=ours_bytes / prunable,
               slim=slim_bytes / prunable, ours_ckpt=ours_ckpt / prunable,
               slim_ckpt=slim_ckpt / prunable, mask_dtype=str(next(iter(ours.masks.values())).dtype))
    print(f"{model_name:22s} memory per prunable weight: ours {row['ours']:.2f} B "
          f"({row['mask_dtype']}), PaddleSlim {row['slim']:.2f} B; checkpoint +{row['ours_ckpt']:.2f}"
          f" B vs +{row['slim_ckpt']:.2f} B", flush=True)
    return row
