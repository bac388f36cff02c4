"""Summaries, markdown table and plot of the accuracy benchmark's runs (pure functions)."""
import numpy as np

TARGETS = (('ratio 0.75 conv1x1 GMP', 0.5), ('ratio 0.90 conv1x1 GMP', 1.5))


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return dict(mean=float(np.mean(values)), std=float(np.std(values)), min=float(np.min(values)),
                max=float(np.max(values)), n=len(values))


def summarize(runs, row_order):
    """Per (row, impl): mean/std/min/max of top-1, sparsities, change vs dense, pruning time.

    Args:
        runs: dicts with row, impl, seed, top1, total_sparsity, conv1x1_sparsity,
            prunable_sparsity, prune_seconds, train_seconds.
        row_order: Row names in table order.

    Returns:
        list of dicts, one per (row, impl) that has runs, in table order.
    """
    dense = {r['seed']: r['top1'] for r in runs if r['impl'] == 'dense'}
    out = []
    for row in row_order:
        for impl in ('dense', 'prune_plugin', 'PaddleSlim'):
            mine = [r for r in runs if r['row'] == row and r['impl'] == impl]
            if not mine:
                continue
            entry = dict(row=row, impl=impl, seeds=sorted(r['seed'] for r in mine),
                         engines=sorted({r['engine'] for r in mine if r.get('engine')}))
            for key in ('top1', 'total_sparsity', 'conv1x1_sparsity', 'prunable_sparsity',
                        'prune_seconds', 'train_seconds'):
                entry[key] = _stats([r[key] for r in mine])
            entry['delta'] = _stats([r['top1'] - dense[r['seed']] for r in mine
                                     if r['seed'] in dense])
            out.append(entry)
    return out


def _pct(stats, digits=2):
    if stats is None:
        return ''
    return f"{stats['mean'] * 100:.{digits}f} ± {stats['std'] * 100:.{digits}f}"


def _frac(stats):
    if stats is None:
        return ''
    if stats['max'] - stats['min'] < 5e-5:
        return f"{stats['mean']:.4f}"
    return f"{stats['mean']:.4f} ({stats['min']:.4f}-{stats['max']:.4f})"


def _seconds(entry):
    if entry['impl'] == 'dense':
        return ''
    return f"{entry['prune_seconds']['mean']:.2f}"


def _find(summary, row, impl):
    return next((e for e in summary if e['row'] == row and e['impl'] == impl), None)


def target_checks(summary):
    """(target, measured text, verdict) for the issue's accuracy targets."""
    checks = []
    for row, tolerance in TARGETS:
        ours = _find(summary, row, 'prune_plugin')
        if ours is None or ours['delta'] is None:
            checks.append((f"{row}: top-1 within {tolerance} pt of dense", 'not run', 'NOT RUN'))
            continue
        delta = ours['delta']['mean'] * 100
        checks.append((f"{row}: top-1 within {tolerance} pt of dense",
                       f"{delta:+.2f} pt (± {ours['delta']['std'] * 100:.2f})",
                       'PASS' if delta >= -tolerance else 'FAIL'))
    rows = [e['row'] for e in summary if e['impl'] == 'prune_plugin']
    for row in rows:
        ours, slim = _find(summary, row, 'prune_plugin'), _find(summary, row, 'PaddleSlim')
        if slim is None:
            continue
        spread = max(ours['top1']['std'], slim['top1']['std'])
        gap = (ours['top1']['mean'] - slim['top1']['mean']) * 100
        checks.append((f"{row}: not below PaddleSlim by more than the seed spread",
                       f"{gap:+.2f} pt vs spread {spread * 100:.2f} pt",
                       'PASS' if gap >= -spread * 100 else 'FAIL'))
    return checks


def render_markdown(summary, args, settings):
    """The results table, the settings and the target verdicts as markdown."""
    seeds = sorted({s for e in summary for s in e['seeds']})
    engines = sorted({e for entry in summary for e in entry['engines']})
    lines = ['# Accuracy: prune_plugin vs PaddleSlim 2.6 (MobileNetV1 on digits)', '',
             f"MobileNetV1 x{settings['scale']} (PaddleClas arch, 10 classes), sklearn digits "
             f"upsampled to {settings['image_size']}x{settings['image_size']}, fixed split 1437 train / 360 val"
             + (f" (train subset {settings['train_subset']})" if settings['train_subset'] else '')
             + f"; {settings['epochs']} epochs, batch {settings['batch']}, Momentum 0.9, cosine LR "
             f"from {settings['lr']}, weight decay {settings['weight_decay']}; GMP: 10% stable, 50% "
             f"pruning in {settings['pruning_steps']} steps from ratio 0.15, 40% fine-tuning. "
             f"Seeds {seeds}: mean ± std over seeds (sparsity: mean, with min-max when seeds "
             "differ). Sparsity and top-1 are read from the saved checkpoint. Pruning time: time "
             "inside pruner.step() and update_params() (PaddleSlim: plus its forward pre-hooks)."
             + (f" prune_plugin engine: {', '.join(engines)}." if engines else ''),
             '',
             '| row | pruner | sparsity total | sparsity conv1x1 | sparsity of pruned weights | '
             'top-1 (%) | vs dense (pt) | pruning time (s) |',
             '|---|---|---|---|---|---|---|---|']
    for entry in summary:
        delta = '' if entry['impl'] == 'dense' else _pct(entry['delta'])
        lines.append(
            f"| {entry['row']} | {entry['impl']} | {_frac(entry['total_sparsity'])} | "
            f"{_frac(entry['conv1x1_sparsity'])} | {_frac(entry['prunable_sparsity'])} | "
            f"{_pct(entry['top1'])} | {delta} | "
            f"{_seconds(entry)} |")
        if entry['row'] == '2:4 pattern' and entry['impl'] == 'prune_plugin':
            lines.append('| 2:4 pattern | PaddleSlim | | | | | | (no n:m pattern) |')
    lines += ['', '## Targets', '', '| target | measured | verdict |', '|---|---|---|']
    lines += [f"| {t} | {m} | {v} |" for t, m, v in target_checks(summary)]
    lines.append('')
    return '\n'.join(lines)


def render_plot(summary, path):
    """Top-1 against sparsity of the pruned weights: one curve per pruner, the dense line."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    dense = _find(summary, 'dense', 'dense')
    if dense is not None:
        mean, std = dense['top1']['mean'] * 100, dense['top1']['std'] * 100
        ax.axhline(mean, color='gray', linestyle='--', label=f'dense {mean:.2f}%')
        ax.axhspan(mean - std, mean + std, color='gray', alpha=0.15)
    for impl, color, marker in (('prune_plugin', 'tab:blue', 'o'), ('PaddleSlim', 'tab:orange', 's')):
        points = sorted((e['prunable_sparsity']['mean'], e['top1']['mean'] * 100,
                         e['top1']['std'] * 100, e['row']) for e in summary
                        if e['impl'] == impl and e['prunable_sparsity'] is not None)
        if not points:
            continue
        xs, ys, errs, names = zip(*points)
        ax.errorbar(xs, ys, yerr=errs, color=color, marker=marker, capsize=3, label=impl)
        if impl == 'prune_plugin':
            for x, y, name in zip(xs, ys, names):
                ax.annotate(name, (x, y), textcoords='offset points', xytext=(4, -10), fontsize=7)
    ax.set_xlabel('sparsity of the pruned weights (from the checkpoint)')
    ax.set_ylabel('top-1 on digits val (%)')
    ax.set_title('MobileNetV1 on digits: top-1 vs sparsity')
    ax.grid(alpha=0.3)
    ax.legend(loc='lower left')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
