"""Markdown report of benchmarks/engine_overhead.py: tables and targets (pure functions)."""
import os

import paddle

from _common import markdown_table

TARGET_GLOBAL_SPEEDUP = 10.0
TARGET_BLOCK_SPEEDUP = 100.0
TARGET_BYTES_PER_PARAM = 1.0
TARGET_OVERHEAD_SHARE = 0.01
# issue 11: threshold-mode step() between prune events (ms, on the 2-core test CPU)
TARGET_THRESHOLD_STEP_MS = {'YOLOv3-MobileNetV1': 15.0, 'MobileNetV1': 3.0}
TARGET_THRESHOLD_STEP_SPEEDUP = 150.0


def _fmt_ms(seconds, digits=1):
    return f"{seconds * 1e3:,.{digits}f}"


def _verdict(ok):
    return 'PASS' if ok else 'FAIL'


def _header(args):
    device = 'GPU' if args.device == 'gpu' else 'CPU'
    command = 'python benchmarks/engine_overhead.py' + (' --smoke' if args.smoke else '') + (
        f" --baseline {args.baseline}" if args.baseline else '') + (
        ' --device gpu' if args.device == 'gpu' else '')
    return ['# Engine overhead: prune_plugin vs PaddleSlim 2.6', '',
            f"Paddle {paddle.__version__}, prune_plugin engine {getattr(args, 'engine', 'unknown')}"
            f", {device}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, `{command}`.", '']


def _event_table(rows, args):
    before = f"before ({args.baseline}) (ms)" if args.baseline else None
    lines = ['## Prune event (thresholds + masks), same weights', '',
             f"Best of {args.repeats} (PaddleSlim's 2x1 blocks: once). Ours: `update_masks()` of a "
             "fresh pruner; PaddleSlim: `update_threshold()` + `_update_masks()` (its `step()` in "
             "ratio mode)" + (f"; before: the engine at `{args.baseline}`, timed in turn with "
                              "ours" if args.baseline else '') + '.', '']
    headers = ['model', 'case', 'ours (ms)', 'PaddleSlim (ms)', 'speedup (slim / ours)', 'note']
    table = [[r['model'], r['case'], _fmt_ms(r['ours']), _fmt_ms(r['slim']),
              f"{r['speedup']:,.1f}x", r['note'] or ''] for r in rows]
    if before:
        headers.append(before)
        for cells, r in zip(table, rows):
            cells.append(_fmt_ms(r['baseline']))
    return lines + [markdown_table(headers, table)]


def _step_table(rows, args):
    cpu = args.device != 'gpu'
    lines = ['', '## `step()` between prune events', '',
             f"Best of {args.step_repeats} steps after the first (median in brackets)"
             + ("; CPU: the best CPU time of the process over the same steps (on a shared "
                "machine the steadier figure: waiting for a core adds wall time, not CPU "
                "time)" if cpu else '') + "; "
             "PaddleSlim: its `step()`, best of 3 (it recomputes masks with numpy; its zeroing "
             "happens in forward pre-hooks, not counted here). Host crossings: calls of "
             "`Tensor.numpy/item/tolist/__float__/__int__/__bool__/__index__/__array__/cpu`, "
             "`paddle.to_tensor/masked_select/nonzero` made inside our timed steps.", '']
    headers = ['model', 'mode', 'ours step() (ms)', 'host crossings', 'PaddleSlim step() (ms)',
               'speedup (slim / ours)']
    if args.baseline:
        headers.append(f"before ({args.baseline}) (ms)")
    table = []
    for r in rows:
        ours = f"{_fmt_ms(r['ours'], 2)} ({_fmt_ms(r['ours_median'], 2)})"
        slim = _fmt_ms(r['slim'])
        before = _fmt_ms(r['baseline'], 2) if args.baseline else None
        if cpu:
            ours += f"; CPU {_fmt_ms(r['ours_cpu'], 2)}"
            slim += f"; CPU {_fmt_ms(r['slim_cpu'])}"
            before = before and f"{before}; CPU {_fmt_ms(r['baseline_cpu'], 2)}"
        cells = [r['model'], r['case'], ours, f"{r['crossings']} in {r['steps']} steps", slim,
                 f"{r['speedup']:,.0f}x"] + ([before] if args.baseline else [])
        table.append(cells)
    return lines + [markdown_table(headers, table)]


def _memory_floor_note(memory_rows, args):
    """What memory traffic alone costs a threshold-mode step on this machine (CPU runs)."""
    bandwidth = getattr(args, 'copy_bandwidth', None)
    if not bandwidth:
        return []
    floors = ', '.join(f"{r['model']} {10 * r['prunable'] / bandwidth * 1e3:.1f} ms"
                       for r in memory_rows)
    return ['', f"Threshold mode reads and writes every prunable weight (4 + 4 B) and its mask "
                f"(1 + 1 B) each step: 10 B per weight. At this machine's copy bandwidth "
                f"({bandwidth / 1e9:.1f} GB/s read + write, numpy `copyto` of 256 MB, one "
                f"thread) that traffic alone takes {floors}. {_host_loops_note(args)}"]


def _host_loops_note(args):
    threads = getattr(args, 'host_threads', 1)
    spread = f"spread over {threads} host threads" if threads > 1 else "on one thread"
    if getattr(args, 'host_loops', 'numpy') == 'native':
        return (f"This run's host loops: the compiled fused pass "
                f"(`prune_plugin/core/_host_kernels.c`, one read and one write of each weight "
                f"and mask), {spread}.")
    return (f"This run's host loops: numpy (no C compiler at install), four passes (abs, "
            f"compare, and, multiply) over each cache-sized slice, {spread}.")


def _memory_table(rows):
    table = [[r['model'], f"{r['prunable']:,}", f"{r['ours']:.2f} ({r['mask_dtype']})",
              f"{r['slim']:.2f} (float32, one per parameter incl. skipped)",
              f"{r['ours_ckpt']:.2f}", f"{r['slim_ckpt']:.2f}"] for r in rows]
    return ['', '## Extra memory per prunable weight', '', markdown_table(
        ['model', 'prunable weights', 'ours (B)', 'PaddleSlim (B)', 'ours in checkpoint (B)',
         'PaddleSlim in checkpoint (B)'], table)]


def _overhead_table(o, args):
    lines = ['', f"## Amortized pruner cost in a MobileNetV1 training step (batch "
             f"{args.batch}, {args.size}x{args.size}, scale {args.scale}, GMP ratio 0.75)", '',
             f"Schedule for amortizing prune events: {o['events']} events over "
             f"{o['total_iterations']:,} iterations (PaddleSlim's ImageNet GMP demo: 54+54 epochs, "
             "100 pruning steps, 5005 it/epoch). Median of "
             f"{args.steps} steps. Hooks: prune_plugin has none (its step() re-zeroes the pruned "
             "weights after the update); PaddleSlim masks weights in forward pre-hooks, timed "
             "inside the step.", '']
    table = []
    for impl, label in (('ours', 'prune_plugin'), ('slim', 'PaddleSlim 2.6')):
        r = o[impl]
        table.append([label, f"{o['dense']:.3f}", _fmt_ms(r['step']), _fmt_ms(r['hook']),
                      _fmt_ms(r['event']), _fmt_ms(r['amortized']), f"{r['share'] * 100:.2f}%",
                      f"{r['measured_share'] * 100:+.1f}%"])
    return lines + [markdown_table(['pruner', 'dense step (s)', 'pruner.step() (ms)',
                                    'hooks (ms)', 'prune event (ms)', 'amortized per step (ms)',
                                    'share of step', 'measured step-time change'], table)]


def _engine_checks(event_rows, memory_rows, overhead):
    largest = event_rows[-1]['model']  # YOLOv3-MobileNetV1 unless --skip-yolo
    big = {r['case']: r for r in event_rows if r['model'] == largest}
    worst_bytes = max(r['ours'] for r in memory_rows)
    return [
        (f">= {TARGET_GLOBAL_SPEEDUP:.0f}x faster than PaddleSlim, global ratio, {largest}",
         big['global ratio 0.55']['speedup'], big['global ratio 0.55']['speedup']
         >= TARGET_GLOBAL_SPEEDUP, 'x'),
        (f">= {TARGET_BLOCK_SPEEDUP:.0f}x faster than PaddleSlim, 2x1 blocks, {largest}",
         big['2x1 blocks, ratio 0.55']['speedup'], big['2x1 blocks, ratio 0.55']['speedup']
         >= TARGET_BLOCK_SPEEDUP, 'x'),
        ("<= 1 byte extra memory per prunable weight", worst_bytes,
         worst_bytes <= TARGET_BYTES_PER_PARAM, ' B'),
        ("amortized overhead < 1% of a MobileNetV1 training step with GMP",
         overhead['ours']['share'] * 100, overhead['ours']['share'] < TARGET_OVERHEAD_SHARE, '%'),
    ]


def _steady_checks(event_rows, step_rows, args):
    checks = []
    crossings = sum(r['crossings'] for r in step_rows)
    steps = sum(r['steps'] for r in step_rows)
    checks.append((f"no host crossing in steps between prune events ({steps} steps)",
                   crossings, crossings == 0, ''))
    for r in step_rows:
        if r['case'] != 'threshold 0.01':
            continue
        limit = TARGET_THRESHOLD_STEP_MS.get(r['model'])
        if limit is not None:
            checks.append((f"threshold-mode step() <= {limit:g} ms, {r['model']} (best wall "
                           "time)", r['ours'] * 1e3, r['ours'] * 1e3 <= limit, ' ms'))
        if r['model'] == 'YOLOv3-MobileNetV1':
            checks.append((f"threshold-mode step() >= {TARGET_THRESHOLD_STEP_SPEEDUP:.0f}x faster "
                           f"than PaddleSlim's, {r['model']}", r['speedup'],
                           r['speedup'] >= TARGET_THRESHOLD_STEP_SPEEDUP, 'x'))
    if args.baseline:
        largest = event_rows[-1]['model']
        for r in event_rows:
            if r['model'] == largest and r['case'] != 'local ratio 0.55':
                checks.append((f"prune event no slower than before ({args.baseline}; within "
                               f"{EVENT_NOISE - 1:.0%}, the spread of repeated runs of the same "
                               f"code here), {r['case']}, {largest}",
                               r['ours'] / r['baseline'],
                               r['ours'] <= EVENT_NOISE * r['baseline'], 'x the time before'))
    return checks


# Best-of-3 event times of unchanged code differ by more than this between runs on this shared
# machine (e.g. 19.3 and 27.6 ms for the same MobileNetV1 global event in two runs).
EVENT_NOISE = 1.05


def _checks_table(header, checks):
    return markdown_table([header, 'measured', 'verdict'],
                          [[t, f"{v:,.2f}{unit}", _verdict(ok)] for t, v, ok, unit in checks])


def render(event_rows, step_rows, memory_rows, overhead, args):
    """The markdown report: the tables and the target verdicts.

    Args:
        event_rows: dicts from ``measure_events`` (model, case, ours, slim, speedup, note,
            baseline).
        step_rows: dicts from ``measure_steady_steps`` (model, case, ours, ours_median,
            crossings, steps, slim, speedup, baseline).
        memory_rows: dicts from ``measure_memory`` (bytes per prunable weight).
        overhead: dict from ``measure_training_overhead``.
        args: the parsed command line (smoke, device, baseline, repeats, step_repeats, steps,
            batch, size, scale, engine).

    Returns:
        (markdown text, list of (target, measured value, passed, unit) over both target tables).
    """
    lines = _header(args) + _event_table(event_rows, args) + _step_table(step_rows, args)
    lines += _memory_floor_note(memory_rows, args)
    lines += _memory_table(memory_rows) + _overhead_table(overhead, args)
    engine_checks = _engine_checks(event_rows, memory_rows, overhead)
    steady_checks = _steady_checks(event_rows, step_rows, args)
    lines += ['', '## Targets', '', _checks_table('target', engine_checks)]
    lines += ['', '## Targets: steps on the device (issue 11)', '',
              _checks_table('steady-state target', steady_checks), '']
    return '\n'.join(lines), engine_checks + steady_checks
