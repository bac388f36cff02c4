"""Summary, markdown and plot of the paired accuracy benchmark (pure functions; formatting last).

``summarize`` turns the logged runs into figures (paired differences per seed and their t
intervals, exact zero counts); ``target_checks`` judges them; ``render_markdown`` and
``render_plot`` only format.
"""
from accuracy_data import DATASET_TITLES, DATASETS
from accuracy_stats import paired_differences, t_interval

DENSE_ROW = 'dense fine-tune'
CONFIDENCE = 0.95
GMP75, GMP90 = 'ratio 0.75 conv1x1 GMP', 'ratio 0.90 conv1x1 GMP'


def _by_seed(runs, key='top1'):
    return {r['seed']: r[key] for r in runs}


def _interval(values):
    return t_interval(values, CONFIDENCE) if values else None


def _exact(runs, zeros_key, count_key):
    """``(zeros per seed, count)`` of an exact zero count, or None (dense row)."""
    if not runs or runs[0].get(count_key) is None:
        return None
    return dict(zeros={r['seed']: r[zeros_key] for r in runs}, count=runs[0][count_key])


def structure_of(dataset_runs):
    """How the fine-tunes of each seed relate to their parent (the paired design, checked).

    Returns:
        ``dict(seeds, same_start, same_order, fine_tunes)``: ``same_start`` is True when every
        fine-tune of a seed started from the weights of that seed's parent (by digest),
        ``same_order`` when every fine-tune of a seed saw the same batch plan.
    """
    parents = {r['seed']: r for r in dataset_runs if r['kind'] == 'parent'}
    fine_tunes = [r for r in dataset_runs if r['kind'] == 'finetune']
    same_start = all(r['seed'] in parents and r['start_weights'] == parents[r['seed']]['weights']
                     for r in fine_tunes)
    orders = {}
    for r in fine_tunes:
        orders.setdefault(r['seed'], set()).add(r['data_order'])
    return dict(seeds=sorted(parents), same_start=same_start,
                same_order=all(len(o) == 1 for o in orders.values()),
                fine_tunes=len(fine_tunes))


def summarize_dataset(runs, row_order):
    """Figures of one data set's runs: parents, dense baseline, and one entry per (row, pruner)."""
    parents = [r for r in runs if r['kind'] == 'parent']
    fine_tunes = [r for r in runs if r['kind'] == 'finetune']
    dense = _by_seed([r for r in fine_tunes if r['row'] == DENSE_ROW])
    entries = []
    for row in row_order:
        per_impl = {impl: [r for r in fine_tunes if r['row'] == row and r['impl'] == impl]
                    for impl in ('dense', 'prune_plugin', 'PaddleSlim')}
        for impl, mine in per_impl.items():
            if not mine:
                continue
            top1 = _by_seed(mine)
            entry = dict(row=row, impl=impl, seeds=sorted(top1), top1=top1,
                         top1_ci=_interval(list(top1.values())),
                         prunable=_exact(mine, 'prunable_zeros', 'prunable_count'),
                         conv1x1=_exact(mine, 'conv1x1_zeros', 'conv1x1_count'),
                         total=_exact(mine, 'zeros', 'count'),
                         prune_seconds=sum(r['prune_seconds'] for r in mine) / len(mine),
                         train_seconds=sum(r['train_seconds'] for r in mine) / len(mine),
                         engines=sorted({r['engine'] for r in mine}))
            entry['drop'] = paired_differences(top1, dense)
            entry['drop_ci'] = _interval(list(entry['drop'].values()))
            entry['vs_slim'] = entry['vs_slim_ci'] = None
            if impl == 'prune_plugin' and per_impl['PaddleSlim']:
                entry['vs_slim'] = paired_differences(top1, _by_seed(per_impl['PaddleSlim']))
                entry['vs_slim_ci'] = _interval(list(entry['vs_slim'].values()))
            entries.append(entry)
    parent_top1 = _by_seed(parents)
    return dict(parents=parent_top1, parents_ci=_interval(list(parent_top1.values())),
                entries=entries, structure=structure_of(runs))


def summarize(runs, row_order, datasets):
    """``{dataset: summarize_dataset(...)}`` for the data sets that have runs, in order."""
    out = {}
    for dataset in datasets:
        mine = [r for r in runs if r['dataset'] == dataset]
        if mine:
            out[dataset] = summarize_dataset(mine, row_order)
    return out


def find_entry(summary, row, impl):
    return next((e for e in summary['entries'] if e['row'] == row and e['impl'] == impl), None)


def _verdict(passed, ci):
    if ci is None or ci['half_width'] is None:
        return 'NOT RESOLVED (fewer than 2 seeds)'
    return 'PASS' if passed else 'FAIL'


def target_checks(dataset_summary):
    """``(target, measured, verdict)`` rows for the issue's targets on one data set.

    Rules: a drop target passes when the mean paired drop (sparse minus dense fine-tune) is at
    least minus the bound (for 75%: and the 95% CI half-width at most 0.5 pt); prune_plugin is
    worse than PaddleSlim beyond the CI when the whole CI of plugin minus PaddleSlim is below 0.
    """
    checks = []
    for row, bound, width in ((GMP75, 0.5, 0.5), (GMP90, 1.5, None)):
        ours = find_entry(dataset_summary, row, 'prune_plugin')
        text = f"{row} (prune_plugin): paired drop >= -{bound} pt" + (
            f" with 95% CI half-width <= {width} pt" if width is not None else '')
        ci = ours['drop_ci'] if ours else None
        if ci is None:
            checks.append((text, 'not run', 'NOT RUN'))
            continue
        passed = ci['mean'] * 100 >= -bound - 1e-9
        if width is not None and ci['half_width'] is not None:
            passed = passed and ci['half_width'] * 100 <= width + 1e-9
        checks.append((text, _pt(ci), _verdict(passed, ci)))
    for entry in dataset_summary['entries']:
        ci = entry['vs_slim_ci']
        if entry['impl'] != 'prune_plugin' or ci is None:
            continue
        measured = _pt(ci)
        passed = ci['high'] is None or ci['high'] >= 0
        checks.append((f"{entry['row']}: prune_plugin not worse than PaddleSlim beyond the CI",
                       measured + (f" (CI {ci['low'] * 100:+.2f} to {ci['high'] * 100:+.2f})"
                                   if ci['high'] is not None else ''),
                       _verdict(passed, ci)))
    return checks


# ----- formatting -------------------------------------------------------------------------------
def _pt(ci):
    """A fraction interval as points: ``-1.94 ± 0.85`` (mean ± 95% half-width)."""
    if ci is None:
        return ''
    if ci['half_width'] is None:
        return f"{ci['mean'] * 100:+.2f} (n={ci['n']})"
    return f"{ci['mean'] * 100:+.2f} ± {ci['half_width'] * 100:.2f}"


def _top1(ci):
    if ci['half_width'] is None:
        return f"{ci['mean'] * 100:.2f}"
    return f"{ci['mean'] * 100:.2f} ± {ci['half_width'] * 100:.2f}"


def _count(exact):
    """``147,168 / 196,224 (75.00 %)``; a min-max range of zeros when seeds differ."""
    if exact is None:
        return ''
    low, high, n = min(exact['zeros'].values()), max(exact['zeros'].values()), exact['count']
    if low == high:
        return f"{low:,} / {n:,} ({low / n * 100:.2f} %)"
    return f"{low:,}-{high:,} / {n:,} ({low / n * 100:.2f}-{high / n * 100:.2f} %)"


def sparsity_of(exact):
    """Mean fraction of zeros over seeds (for the plot)."""
    return sum(exact['zeros'].values()) / len(exact['zeros']) / exact['count']


def _settings_text(settings):
    return (f"MobileNetV1 x{settings['scale']} (PaddleClas arch, 10 classes). Parent: "
            f"{settings['parent_epochs']} epochs from scratch, batch {settings['batch']}, "
            f"Momentum 0.9, cosine LR from {settings['lr']}. Every fine-tune: "
            f"{settings['finetune_epochs']} epochs, batch {settings['finetune_batch']}, a fresh "
            f"Momentum 0.9, cosine LR from {settings['finetune_lr']}; weight decay "
            f"{settings['weight_decay']} throughout; random shifts of up to 2 px. GMP inside the "
            f"fine-tune: no stable phase, the ratio rises from 0.15 in {settings['pruning_steps']} "
            "steps over the first half, then the second half at the target (the reference's "
            "ImageNet demo: pruning and tuning phases of equal length). Ratio, threshold and 2:4 "
            "rows prune at the first step."
            + (f" Train subset {settings['train_subset']}." if settings['train_subset'] else '')
            + (f" Val subset {settings['val_subset']}." if settings['val_subset'] else ''))


def _dataset_section(dataset, summary, settings):
    structure = summary['structure']
    dense = find_entry(summary, DENSE_ROW, 'dense')
    lines = [f"## {DATASET_TITLES[dataset]}", '', _settings_text(settings), '',
             f"Seeds {structure['seeds']}. Dense parents: top-1 {_top1(summary['parents_ci'])} %"
             + (f"; dense fine-tune (the baseline): {_top1(dense['top1_ci'])} %" if dense else '')
             + f" (mean ± 95% CI half-width over seeds). Paired design checked from the log: "
             f"{structure['fine_tunes']} fine-tunes; every fine-tune started from its seed's parent "
             f"weights (digest): {'yes' if structure['same_start'] else 'NO'}; all fine-tunes of a "
             f"seed saw the same data order (digest): {'yes' if structure['same_order'] else 'NO'}.",
             '',
             '| row | pruner | pruned weights, exact (checkpoint) | 1x1-conv zeros | all weights zero '
             '| top-1 (%) | paired drop vs dense fine-tune (pt) | prune_plugin - PaddleSlim (pt) '
             '| pruning time (s) |',
             '|---|---|---|---|---|---|---|---|---|']
    for e in summary['entries']:
        seconds = '' if e['impl'] == 'dense' else f"{e['prune_seconds']:.2f}"
        drop = '' if e['impl'] == 'dense' else _pt(e['drop_ci'])
        lines.append(f"| {e['row']} | {e['impl']} | {_count(e['prunable'])} | {_count(e['conv1x1'])} "
                     f"| {_count(e['total'])} | {_top1(e['top1_ci'])} | {drop} | "
                     f"{_pt(e['vs_slim_ci'])} | {seconds} |")
        if e['row'] == '2:4 pattern' and e['impl'] == 'prune_plugin':
            lines.append('| 2:4 pattern | PaddleSlim | (no n:m pattern) | | | | | | |')
    seeds = structure['seeds']
    lines += ['', '### Per seed: paired drop (pt)', '',
              '| row | pruner | ' + ' | '.join(f"seed {s}" for s in seeds) + ' |',
              '|---|---|' + '---|' * len(seeds)]
    for e in summary['entries']:
        if e['impl'] == 'dense':
            cells = [f"{e['top1'][s] * 100:.2f} (top-1)" if s in e['top1'] else '' for s in seeds]
        else:
            cells = [f"{e['drop'][s] * 100:+.2f}" if s in e['drop'] else '' for s in seeds]
        lines.append(f"| {e['row']} | {e['impl']} | " + ' | '.join(cells) + ' |')
    lines += ['', '### Targets', '', '| target | measured | verdict |', '|---|---|---|']
    lines += [f"| {t} | {m} | {v} |" for t, m, v in target_checks(summary)]
    return lines


def render_markdown(summary, settings_by_dataset):
    """The whole results page: design, one section per data set, what was not run."""
    engines = sorted({x for s in summary.values() for e in s['entries'] for x in e['engines']})
    lines = ['# Accuracy: pruning a trained model, paired over seeds (prune_plugin vs PaddleSlim 2.6)',
             '',
             "Generated by `python benchmarks/accuracy.py` (do not edit). For each seed a dense "
             "parent is trained once; from its saved weights every row is fine-tuned with the "
             "same budget, learning-rate schedule and data order: a dense fine-tune (the baseline) "
             "and each sparse row with prune_plugin and with PaddleSlim 2.6 (its pruner run "
             "through the float32-mask shim in `benchmarks/_common.py`). **Paired drop**: sparse "
             "top-1 minus the dense fine-tune's top-1 of the same seed, in points; "
             "**prune_plugin - PaddleSlim**: the same pairing between the two pruners. Both are "
             "mean ± half-width of the 95% Student-t interval over seeds. Zero counts are exact, "
             "read from the saved checkpoint (`pruned weights`: the weights the row prunes, as "
             "prune_plugin selects them). Pruning time: inside `pruner.step()` and "
             "`update_params()` (PaddleSlim: plus its forward pre-hooks), on a shared CPU."
             + (f" prune_plugin engine: {', '.join(engines)}." if engines else ''), '']
    for dataset, dataset_summary in summary.items():
        lines += _dataset_section(dataset, dataset_summary, settings_by_dataset[dataset]) + ['']
    missing = [d for d in DATASETS if d not in summary]
    if missing:
        lines += ['## Not in this run', '']
        lines += [f"- {DATASET_TITLES[d]}: `--datasets {d}` (ships offline in a package; "
                  "not run with these results)." for d in missing]
        lines.append('')
    return '\n'.join(lines)


def render_plot(summary, path):
    """Paired drop (with 95% CIs) against exact sparsity, both pruners, one panel per data set."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [(d, s) for d, s in summary.items()]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(8 * max(len(panels), 1), 5.5),
                             squeeze=False)
    for ax, (dataset, dataset_summary) in zip(axes[0], panels):
        ax.axhline(0.0, color='gray', linestyle='--', linewidth=1, label='dense fine-tune')
        ax.axhline(-0.5, color='tab:red', linestyle=':', linewidth=1, label='-0.5 pt (75% target)')
        for impl, color, marker, dx in (('prune_plugin', 'tab:blue', 'o', -0.004),
                                        ('PaddleSlim', 'tab:orange', 's', 0.004)):
            points = []
            for e in dataset_summary['entries']:
                if e['impl'] != impl or e['drop_ci'] is None or e['prunable'] is None:
                    continue
                half = e['drop_ci']['half_width']
                points.append((sparsity_of(e['prunable']) + dx, e['drop_ci']['mean'] * 100,
                               0.0 if half is None else half * 100, e['row']))
            if not points:
                continue
            xs, ys, errs, names = zip(*points)
            ax.errorbar(xs, ys, yerr=errs, color=color, marker=marker, linestyle='none',
                        capsize=3, label=f"{impl} (95% CI)")
            if impl == 'prune_plugin':
                for x, y, name in zip(xs, ys, names):
                    left = '2x1' in name  # shares its sparsity with the 1x1 row: label it apart
                    ax.annotate(name.replace('ratio 0.75 conv1x1 GMP ', '') if left else name,
                                (x, y), textcoords='offset points', fontsize=7,
                                xytext=(-6, -3) if left else (5, 3), ha='right' if left else 'left')
        ax.set_xlabel('sparsity of the pruned weights (exact, from the checkpoint)')
        ax.set_ylabel('paired drop: sparse - dense fine-tune top-1 (pt)')
        ax.set_title(f"MobileNetV1 x0.25, {dataset}: seeds {dataset_summary['structure']['seeds']}",
                     fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc='lower left', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
