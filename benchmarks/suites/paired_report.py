"""Figures and markdown of ``python -m benchmarks.suites.paired`` (pure; formatting last).

``summarize`` turns the rows into per-seed paired differences and their t intervals
(``accuracy_stats``, as the digits benchmark), exact zero counts and the checks of the paired
design; ``paired_markdown`` only formats.
"""
import platform

from _common import markdown_table
from accuracy_stats import paired_differences, t_interval

CONFIDENCE = 0.95
DENSE, PLUGIN, BUILTIN = 'dense', 'prune_plugin', 'ppdet built-in'


def _interval(values):
    return t_interval(values, CONFIDENCE) if values else None


def _zeros(ckpt):
    if not ckpt:
        return None
    return {'zeros': ckpt['conv1x1_zeros'], 'count': ckpt['conv1x1_weights'],
            'expected': ckpt.get('expected_zeros')}


def design_checks(parent, fine_tunes):
    """The paired design, checked on the records (by digests, not by intent).

    Returns:
        ``dict(same_start, same_order_within_seed, orders_differ_across_seeds)``:
        ``same_start`` when every fine-tune loaded the parent's saved file (SHA-256);
        ``same_order_within_seed`` when the rows of each seed saw one batch order;
        ``orders_differ_across_seeds`` when no two seeds share one.
    """
    parent_digest = parent.get('weights')
    same_start = bool(fine_tunes) and all(
        parent_digest and [load['sha256'] for load in r.get('loaded', [])] == [parent_digest]
        for r in fine_tunes)
    orders = {}
    for r in fine_tunes:
        orders.setdefault(r['seed'], set()).add(r.get('order_digest'))
    distinct = [next(iter(o)) for o in orders.values() if len(o) == 1]
    return dict(same_start=same_start,
                same_order_within_seed=all(len(o) == 1 for o in orders.values()),
                orders_differ_across_seeds=len(set(distinct)) == len(orders))


def summarize_suite(rows):
    """One suite's figures: its parent, and per run the metric, paired drop and zeros by seed."""
    parent = next(r for r in rows if r['kind'] == 'parent')
    fine_tunes = [r for r in rows if r['kind'] == 'finetune']
    by_run = {}
    for r in fine_tunes:
        by_run.setdefault(r['run'], []).append(r)
    metric = {run: {r['seed']: r['metric'] for r in mine if r.get('metric') is not None}
              for run, mine in by_run.items()}
    entries = []
    for run, mine in by_run.items():
        entry = dict(run=run, budget=mine[0].get('budget'), metric=metric[run],
                     metric_ci=_interval(list(metric[run].values())),
                     zeros={r['seed']: _zeros(r.get('checkpoint')) for r in mine},
                     raw_zeros={r['seed']: _zeros(r['raw_weights']) for r in mine
                                if r.get('raw_weights')},
                     raw_metric={r['seed']: r['raw_metric'] for r in mine
                                 if r.get('raw_metric') is not None},
                     train_seconds=sum(r.get('train_seconds', 0) for r in mine) / len(mine),
                     errors={r['seed']: r['error'] for r in mine if r.get('error')})
        entry['drop'] = paired_differences(metric[run], metric.get(DENSE, {})) \
            if run != DENSE else {}
        entry['drop_ci'] = _interval(list(entry['drop'].values()))
        entry['vs_builtin'] = paired_differences(metric[run], metric[BUILTIN]) \
            if run == PLUGIN and BUILTIN in metric else {}
        entry['vs_builtin_ci'] = _interval(list(entry['vs_builtin'].values()))
        entries.append(entry)
    first = rows[0]
    return dict(suite=first['suite'], title=first['title'], metric_name=first['metric_name'],
                parent=dict(metric=parent.get('metric'), budget=parent.get('budget'),
                            weights=parent.get('weights'), error=parent.get('error')),
                entries=entries, checks=design_checks(parent, fine_tunes),
                seeds=sorted({r['seed'] for r in fine_tunes}),
                per_seed=[dict(seed=r['seed'], run=r['run'], metric=r.get('metric'),
                               raw_metric=r.get('raw_metric'),
                               zeros=_zeros(r.get('raw_weights') or r.get('checkpoint')),
                               zeros_of='.pdema' if r.get('raw_weights') else '.pdparams',
                               order=r.get('order_digest'), error=r.get('error'))
                          for r in fine_tunes])


def summarize(rows):
    """``[summarize_suite(rows of one suite), ...]`` in run order."""
    suites = []
    for r in rows:
        if r['suite'] not in suites:
            suites.append(r['suite'])
    return [summarize_suite([r for r in rows if r['suite'] == key]) for key in suites]


# ----- formatting ---------------------------------------------------------------------------
def _pm(ci, sign=False):
    if not ci:
        return '-'
    mean = f"{ci['mean']:+.2f}" if sign else f"{ci['mean']:.2f}"
    return mean + (f" ± {ci['half_width']:.2f}" if ci['half_width'] is not None else '')


def _zeros_cell(zeros_by_seed):
    values = [z for z in zeros_by_seed.values() if z]
    if not values:
        return '-'
    z = values[0]
    same = all((v['zeros'], v['count']) == (z['zeros'], z['count']) for v in values)
    cell = (f"{z['zeros']:,} / {z['count']:,} ({100 * z['zeros'] / z['count']:.2f} %)"
            if same else 'differs by seed, see below')
    if z.get('expected') is not None and z['zeros']:
        exact = all(v['zeros'] == v['expected'] for v in values)
        cell += ', exact' if exact else ', MISMATCH'
    return cell


def _summary_rows(summary):
    rows = []
    for s in summary:
        parent = s['parent']
        name = s['metric_name']
        rows.append([s['title'], 'dense parent', parent['budget'] or '-',
                     f"{name} {parent['metric']:.2f}" if parent['metric'] is not None
                     else parent['error'] or '-', '-', '-', '-'])
        for e in s['entries']:
            metric = f"{name} {_pm(e['metric_ci'])}"
            if e['raw_metric']:
                metric += f" (pruned .pdema: {_pm(_interval(list(e['raw_metric'].values())))})"
            zeros = _zeros_cell(e['zeros'])
            if e['raw_zeros']:
                zeros += f"; .pdema: {_zeros_cell(e['raw_zeros'])}"
            rows.append([s['title'], f"{e['run']} fine-tune", e['budget'] or '-', metric,
                         _pm(e['drop_ci'], sign=True), _pm(e['vs_builtin_ci'], sign=True),
                         zeros])
    return rows


def _per_seed_rows(summary):
    rows = []
    for s in summary:
        dense = {p['seed']: p['metric'] for p in s['per_seed'] if p['run'] == DENSE}
        for p in s['per_seed']:
            drop = ('-' if p['run'] == DENSE or p['metric'] is None or dense.get(p['seed']) is None
                    else f"{p['metric'] - dense[p['seed']]:+.2f}")
            z = p['zeros']
            rows.append([s['title'], str(p['seed']), p['run'],
                         '-' if p['metric'] is None else f"{p['metric']:.2f}"
                         + (f" (.pdema {p['raw_metric']:.2f})" if p['raw_metric'] is not None
                            else ''), drop,
                         f"{z['zeros']:,} / {z['count']:,} ({p['zeros_of']})" if z else '-',
                         f"`{p['order']}`", (p['error'] or '').replace('|', '/')])
    return rows


def _check_lines(summary):
    lines = []
    for s in summary:
        c = s['checks']
        ok = lambda flag: 'yes' if flag else '**NO**'  # noqa: E731
        lines.append(
            f"- {s['title']}: every fine-tune loaded the parent's file (SHA-256 "
            f"`{(s['parent']['weights'] or '?')[:12]}`): {ok(c['same_start'])}; the rows of each "
            f"seed saw one batch order: {ok(c['same_order_within_seed'])}; each seed its own "
            f"order: {ok(c['orders_differ_across_seeds'])}.")
    return lines


def paired_markdown(summary, meta):
    """The whole ``results/suites_paired.md`` text."""
    import paddle

    n_seeds = len(meta.get('seeds') or [])
    lines = [
        "# Demo suites, paired: dense fine-tune vs prune_plugin (vs ppdet's built-in pruner)", "",
        f"Paddle {paddle.__version__}, CPU ({platform.machine()}), OMP_NUM_THREADS="
        f"{meta['threads']}, `{meta['command']}`, commit {meta.get('code_version', '?')}, "
        f"{meta['date']}, {meta['total_seconds'] / 60:.1f} min in all"
        f"{' (SMOKE budgets)' if meta['smoke'] else ''}.", ""] + ([
        "**Smoke budgets: these figures show that the pipeline runs, not what pruning costs.**",
        ""] if meta['smoke'] else []) + [
        "Per suite one dense parent is trained from scratch (the demo config, `slim` removed). "
        "For each seed every row is then fine-tuned from the parent's saved weights with the "
        "same budget, learning-rate schedule and batch order, through `tools/train.py`; the "
        "sparse rows prune inside the fine-tune (GMP schedule within its budget). Metrics from "
        "`tools/eval.py` on the demo's generated validation set (16 images each), mean ± 95% "
        f"Student-t half-width over {n_seeds} seeds. **paired drop**: the row's metric minus "
        "the dense fine-tune's of the same seed; **vs built-in**: prune_plugin minus ppdet's "
        "built-in pruner, same seed.", "",
        markdown_table(('suite', 'run', 'budget', 'metric', 'paired drop vs dense fine-tune',
                        'prune_plugin vs built-in', '1x1-conv zeros in checkpoint'),
                       _summary_rows(summary)), "",
        "Paired design, checked on the records:", "",
    ] + _check_lines(summary) + [
        "",
        "- **Start**: ppdet `-o pretrain_weights=<parent>/model_final.pdparams` (the parent's "
        "EMA, which ppdet saves and evaluates), PaddleSeg `-o model.pretrained=<parent>/"
        "iter_N/model.pdparams`; every file a run reads through `paddle.load` is hashed by "
        "`benchmarks/suites/provenance.py`.",
        "- **Batch order**: both suites' train sampler (`paddle.io.DistributedBatchSampler`) "
        "shuffles with `RandomState(epoch)`, the same for any `--seed`; `provenance.py` "
        "starts its epoch count at `seed x 100000` (seed 0: the suites' own order) and hashes "
        "every batch of indices it yields (the digest in the per-seed table). `--seed` also "
        "seeds paddle, numpy and random: PaddleSeg's random flips follow it (prune_plugin draws "
        "no random numbers, so a seed's rows get the same flips; the digest covers the "
        "indices only); the PicoDet demo has no random transforms.",
        "- **1x1-conv zeros**: exact zero count of the 4-D 1x1 weights in the saved "
        "`.pdparams`; *exact* when it equals the count the configured ratio asks for "
        "(`round(ratio x n)` per weight for PicoDet's local sparsity, `round(ratio x N)` for "
        "PP-HumanSeg-Lite's global one).",
    ] + ([
        "- **ppdet built-in** runs ppdet's own path (PaddleSlim `GMPUnstructuredPruner`, "
        "float32-mask shim for Paddle 3.3.1, `benchmarks/suites/ppdet_builtin.py`) with the "
        "same ratio, 1x1 convs, local sparsity and GMP epochs. Its saved "
        "`model_final.pdparams` is ppdet's EMA, which its pruner never masks: that file is "
        "dense, and it is what ppdet evaluates (the metric column, and the one paired with "
        "prune_plugin). Its pruned weights are the `model_final.pdema`; their zeros and their "
        "own metric are shown after them."] if any(
            e['run'] == BUILTIN for s in summary for e in s['entries']) else []) + [
        "", "## Per seed", "",
        markdown_table(('suite', 'seed', 'run', 'metric', 'paired drop', '1x1-conv zeros',
                        'batch order', 'error'), _per_seed_rows(summary)),
    ]
    return '\n'.join(lines) + '\n'
