"""Markdown for ``python -m benchmarks.suites``'s rows (formatting only; the numbers come in)."""
import platform

from _common import markdown_table

HEADERS = ('suite', 'run', 'budget', 'metric', '1x1-conv zeros in checkpoint',
           'configured ratio asks', 'all weights zero', '.pdparams', 'vs dense', 'deflated',
           'train (s)', 'pruner (s)', 'pruner share: of train / of loop')


def mb(n_bytes):
    return f"{n_bytes / 1e6:.2f} MB"


def _zeros_cell(ckpt):
    n, z = ckpt['conv1x1_weights'], ckpt['conv1x1_zeros']
    return f"{z:,} / {n:,} ({100 * z / n:.2f} %)" if n else '-'


def _expected_cell(row):
    ckpt = row['checkpoint']
    expected = ckpt.get('expected_zeros')
    if row['run'] == 'dense' or expected is None:
        return '-'
    verdict = 'exact' if expected == ckpt['conv1x1_zeros'] else 'MISMATCH'
    pruner = row.get('pruner') or {}
    kind = 'local' if pruner.get('local_sparsity') else 'global'
    return f"{expected:,} ({pruner.get('ratio')}, {kind}): {verdict}"


def row_cells(row):
    """One table row (strings) for a result row dict."""
    name = row['title']
    head = [name, row['run'], row['budget']]
    if 'checkpoint' not in row:
        return head + [row.get('error', '?').replace('|', '/')] + [''] * (len(HEADERS) - 4)
    ckpt = row['checkpoint']
    metric = row.get('metric')
    metric_cell = f"{row['metric_name']} {metric:.2f}" if metric is not None else \
        row.get('error', '-').replace('|', '/')
    return head + [
        metric_cell, _zeros_cell(ckpt), _expected_cell(row),
        f"{100 * ckpt['zeros'] / ckpt['weights']:.2f} %", mb(ckpt['bytes']),
        f"{row['size_vs_dense']:.2f}x" if 'size_vs_dense' in row else '-',
        mb(ckpt['zlib_bytes']), f"{row['train_seconds']:.1f}",
        f"{row['plugin_seconds']:.2f}" if row['run'] != 'dense' else '-',
        _share_cell(row),
    ]


def _share_cell(row):
    if row['run'] == 'dense':
        return '-'
    loop = row.get('plugin_share_of_loop')
    return f"{100 * row['plugin_share']:.2f} % / " + (f"{100 * loop:.2f} %" if loop else '-')


def _builtin_notes(rows):
    notes = []
    for row in rows:
        if row['run'] != 'ppdet built-in' or 'checkpoint' not in row:
            continue
        ckpt, raw = row['checkpoint'], row.get('raw_weights')
        notes.append(
            f"- **ppdet built-in** (`{row['title']}`): the saved `model_final.pdparams` is "
            f"ppdet's EMA copy: {_zeros_cell(ckpt)} of its 1x1-conv weights are zero; it also "
            f"holds {ckpt['mask_buffers']} float32 `*_mask` buffers ({mb(ckpt['mask_bytes'])}), "
            f"one per parameter, which `tools/eval.py` ignores (ppdet logs them as unused).")
        if raw:
            notes.append(
                f"  The trained (non-EMA) weights, saved as `model_final.pdema`: "
                f"{_zeros_cell(raw)} 1x1-conv zeros: the pruner did prune, but what ppdet "
                f"evaluates and saves is the dense EMA.")
    return notes


def _duplicate_notes(rows):
    """Where the file lists more 1x1 weights than the pruner prunes (shared parameters)."""
    notes = []
    for row in rows:
        pruner, ckpt = row.get('pruner'), row.get('checkpoint')
        if not pruner or not ckpt:
            continue
        extra = ckpt['conv1x1_weights'] - pruner['prunable_weights']
        if extra <= 0:  # as many, or the pruner also prunes other layers (threshold mode: all)
            continue
        notes.append(
            f"- {row['title']}: the file lists {ckpt['conv1x1_weights']:,} 1x1-conv weights, the "
            f"pruner prunes {pruner['prunable_weights']:,} distinct ones: {extra:,} are the same "
            f"parameters saved under a second name (shared layers in the state dict), counted "
            f"in both N and the zeros, so the ratio is unchanged.")
    return notes


def _breakdown_notes(rows, top=4):
    """The largest contributors to each sparse run's pruner time (inclusive seconds)."""
    notes = []
    for row in rows:
        by_label = row.get('plugin_seconds_by_label') or {}
        if row['run'] == 'dense' or not by_label:
            continue
        calls = row.get('plugin_calls') or {}
        parts = [f"`{label}` {seconds:.2f} s ({calls.get(label, 0)} calls)" for label, seconds
                 in sorted(by_label.items(), key=lambda kv: -kv[1])[:top]]
        notes.append(f"- pruner time, {row['title']} / {row['run']} (inclusive, nested calls "
                     f"overlap): " + ', '.join(parts) + '.')
    return notes


def results_markdown(rows, meta):
    """The whole ``results/suites.md`` text."""
    import paddle

    hooks = any('pruner.gradient_hook' in (r.get('plugin_calls') or {}) for r in rows)
    lines = [
        "# Demo suites: dense vs prune_plugin (vs ppdet's built-in pruner)", "",
        f"Paddle {paddle.__version__}, CPU ({platform.machine()}), OMP_NUM_THREADS="
        f"{meta['threads']}, `{meta['command']}`, commit {meta.get('code_version', '?')}, "
        f"{meta['date']}, "
        f"{meta['total_seconds'] / 60:.1f} min in all"
        f"{' (SMOKE budgets)' if meta['smoke'] else ''}.",
        "",
        "Each row: the demo config trained by `tools/train.py` for the budget shown (dense: "
        "the same config with its `slim` key removed by `-o slim=null`, PaddleSeg "
        "`-o slim=None`), then its final checkpoint evaluated by `tools/eval.py` and read back "
        "from disk. Metrics on the demo's generated validation set (16 images for ppseg and "
        "ppdet, 539 for ppcls), so a point or two is noise.", "",
        markdown_table(HEADERS, [row_cells(r) for r in rows]), "",
        "- **1x1-conv zeros**: exact zero count of the 4-D 1x1 weights in the `.pdparams` "
        "(the demos prune `conv1x1_only`); **configured ratio asks**: `round(ratio x N)` "
        "(global) or the sum of `round(ratio x n)` per weight (local), the pruner's own rounding.",
        "- **deflated**: the `.pdparams` through zlib level 6 (what the zeros save on disk or "
        "the wire; the raw file keeps dense float32 storage).",
        "- **train (s)**: wall time of the train command (model build, data, steps, "
        "checkpoints; no evaluation), on a CPU shared with other jobs. **pruner (s)**: time "
        "inside the pruning code during it. prune_plugin: `pruner.step()` and everything else "
        "the pruner and its trainer hooks do (mask updates, zeroing, EMA masking, sparsity "
        "logging" + (", the gradient-masking hook in backward" if hooks else
                     "; this engine registers no gradient hooks") + "), measured by wrapping "
        "those calls from outside (`benchmarks/suites/launcher.py`). ppdet built-in: PaddleSlim's "
        "`step()`, `update_params()` and its forward pre-hook, which multiplies each weight by "
        "its mask before every forward (`benchmarks/suites/ppdet_builtin.py`). **pruner share**: "
        "pruner seconds / train seconds, and / the loop span (from the first call into the "
        "pruning code to the end of the last: the training steps after the first, with the "
        "epoch-end checkpoints, without start-up).",
        "- **ppdet built-in** runs ppdet's own path (`cfg['unstructured_prune'] = True`, "
        "`Trainer` creates `UnstructuredPruner` from its workspace -> "
        "`paddleslim.GMPUnstructuredPruner`) with the same ratio, 1x1 convs, local sparsity "
        "and GMP epochs. Shim: PaddleSlim 2.6 turns its float32 masks bool on Paddle 3.3.1 "
        "(`param * mask` then fails); in that process only, `paddleslim.GMPUnstructuredPruner` "
        "is a subclass writing the same masks as float32 (`benchmarks/_common.py`).",
    ]
    lines += _builtin_notes(rows) + _duplicate_notes(rows) + _breakdown_notes(rows)
    errors = [r for r in rows if r.get('error')]
    for row in errors:
        lines.append(f"- {row['title']} / {row['run']}: {row['error']}")
    return '\n'.join(lines) + '\n'
