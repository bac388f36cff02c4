"""Markdown report of benchmarks/engine_overhead.py: tables and the issue's targets (pure functions)."""
import os

import paddle

from _common import markdown_table

TARGET_GLOBAL_SPEEDUP = 10.0
TARGET_BLOCK_SPEEDUP = 100.0
TARGET_BYTES_PER_PARAM = 1.0
TARGET_OVERHEAD_SHARE = 0.01

def _fmt_ms(seconds):
    return f"{seconds * 1e3:,.1f}"


def _verdict(ok):
    return 'PASS' if ok else 'FAIL'


def render(update_rows, memory_rows, overhead, args):
    """The markdown report: the three tables and the target verdicts.

    Args:
        update_rows: dicts from ``measure_updates`` (model, case, ours, slim, speedup, note).
        memory_rows: dicts from ``measure_memory`` (bytes per prunable weight).
        overhead: dict from ``measure_training_overhead``.
        args: the parsed command line (smoke, repeats, steps, batch, size, scale, engine).

    Returns:
        (markdown text, list of (target, measured value, passed, unit)).
    """
    lines = ['# Engine overhead: prune_plugin vs PaddleSlim 2.6', '',
             f"Paddle {paddle.__version__}, prune_plugin engine {getattr(args, 'engine', 'unknown')}"
             f", CPU, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
             f", `python benchmarks/engine_overhead.py{' --smoke' if args.smoke else ''}`.", '',
             '## Mask update (one prune event), same weights', '',
             f"Best of {args.repeats} (PaddleSlim's 2x1 blocks: once). Ours: `update_masks()` of a "
             "fresh pruner; PaddleSlim: `update_threshold()` + `_update_masks()` (its `step()` in "
             "ratio mode).", '']
    rows = [[r['model'], r['case'], _fmt_ms(r['ours']), _fmt_ms(r['slim']),
             f"{r['speedup']:,.1f}x", r['note'] or ''] for r in update_rows]
    lines.append(markdown_table(['model', 'case', 'ours (ms)', 'PaddleSlim (ms)',
                                 'speedup (slim / ours)', 'note'], rows))
    lines += ['', '## Extra memory per prunable weight', '']
    rows = [[r['model'], f"{r['prunable']:,}", f"{r['ours']:.2f} ({r['mask_dtype']})",
             f"{r['slim']:.2f} (float32, one per parameter incl. skipped)",
             f"{r['ours_ckpt']:.2f}", f"{r['slim_ckpt']:.2f}"] for r in memory_rows]
    lines.append(markdown_table(['model', 'prunable weights', 'ours (B)', 'PaddleSlim (B)',
                                 'ours in checkpoint (B)', 'PaddleSlim in checkpoint (B)'], rows))
    o = overhead
    lines += ['', f"## Amortized pruner cost in a MobileNetV1 CPU training step (batch "
              f"{args.batch}, {args.size}x{args.size}, scale {args.scale}, GMP ratio 0.75)", '',
              f"Schedule for amortizing prune events: {o['events']} events over "
              f"{o['total_iterations']:,} iterations (PaddleSlim's ImageNet GMP demo: 54+54 epochs, "
              "100 pruning steps, 5005 it/epoch). Median of "
              f"{args.steps} steps. Hooks: prune_plugin has none (its step() re-zeroes the pruned "
              "weights after the update); PaddleSlim masks weights in forward pre-hooks, timed "
              "inside the step.", '']
    rows = []
    for impl, label in (('ours', 'prune_plugin'), ('slim', 'PaddleSlim 2.6')):
        r = o[impl]
        rows.append([label, f"{o['dense']:.3f}", _fmt_ms(r['step']), _fmt_ms(r['hook']),
                     _fmt_ms(r['event']), _fmt_ms(r['amortized']), f"{r['share'] * 100:.2f}%",
                     f"{r['measured_share'] * 100:+.1f}%"])
    lines.append(markdown_table(['pruner', 'dense step (s)', 'pruner.step() (ms)',
                                 'hooks (ms)', 'prune event (ms)',
                                 'amortized per step (ms)', 'share of step',
                                 'measured step-time change'], rows))
    largest = update_rows[-1]['model']  # YOLOv3-MobileNetV1 unless --skip-yolo
    big = {r['case']: r for r in update_rows if r['model'] == largest}
    worst_bytes = max(r['ours'] for r in memory_rows)
    checks = [
        (f">= {TARGET_GLOBAL_SPEEDUP:.0f}x faster than PaddleSlim, global ratio, {largest}",
         big['global ratio 0.55']['speedup'], big['global ratio 0.55']['speedup']
         >= TARGET_GLOBAL_SPEEDUP, 'x'),
        (f">= {TARGET_BLOCK_SPEEDUP:.0f}x faster than PaddleSlim, 2x1 blocks, {largest}",
         big['2x1 blocks, ratio 0.55']['speedup'], big['2x1 blocks, ratio 0.55']['speedup']
         >= TARGET_BLOCK_SPEEDUP, 'x'),
        ("<= 1 byte extra memory per prunable weight", worst_bytes,
         worst_bytes <= TARGET_BYTES_PER_PARAM, ' B'),
        ("amortized overhead < 1% of a MobileNetV1 CPU training step with GMP",
         o['ours']['share'] * 100, o['ours']['share'] < TARGET_OVERHEAD_SHARE, '%'),
    ]
    lines += ['', '## Targets', '']
    lines.append(markdown_table(['target', 'measured', 'verdict'],
                                [[t, f"{v:,.2f}{unit}", _verdict(ok)] for t, v, ok, unit in checks]))
    lines.append('')
    return '\n'.join(lines), checks
