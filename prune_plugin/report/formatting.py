"""Turn report data (rows, totals, checks) into text: a table, JSON or CSV. Formatting only."""
import csv
import io
import json

TOTAL_LABELS = (('all', 'all parameters'), ('prunable', 'prunable (ndim>1)'),
                ('conv1x1', 'conv1x1 only'))


def human_size(count):
    """``475544 -> '475.5K'``, ``62001000 -> '62.0M'``, ``216 -> '216'``."""
    for limit, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(count) >= limit:
            return f"{count / limit:.1f}{suffix}"
    return str(int(count))


def percent(fraction):
    """``0.55 -> '55.00%'``; never rounds a partly zero weight to 0.00% or 100.00%."""
    if 0 < fraction < 0.00005:
        return '<0.01%'
    if 0.99995 <= fraction < 1:
        return '>99.99%'
    return f"{fraction * 100:.2f}%"


def shape_text(shape, sep=', '):
    """``(8, 3, 3, 3) -> '[8, 3, 3, 3]'``; with ``sep='x'``: ``'8x3x3x3'`` (for CSV)."""
    if sep == ', ':
        return '[' + sep.join(str(d) for d in shape) + ']'
    return sep.join(str(d) for d in shape)


def _check_columns(report):
    return [(key, f"{key} {report['checks'][key]['spec']}") for key in ('block', 'pattern')
            if key in report['checks']]


def _table(header, body, right_from):
    widths = [max(len(str(row[i])) for row in [header] + body) for i in range(len(header))]

    def line(row):
        cells = [str(c).rjust(w) if i >= right_from else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        return '  '.join(cells).rstrip()
    return [line(header)] + [line(r) for r in body]


def _check_line(key, check):
    name = f"{key} {check['spec']}"
    share = f"{percent(check['conforming_share'])} of prunable weights in conforming layers"
    na = (f", {check['not_applicable']} n/a ({check['na_reason']})"
          if check['not_applicable'] else '')
    if check['holds']:
        return f"{name}: holds: {check['conforming']}/{check['layers']} layers conform{na}; {share}"
    shown = ', '.join(check['violating_layers'][:5])
    more = f" (+{check['violating'] - 5} more)" if check['violating'] > 5 else ''
    flipped = len(check['conform_if_flipped'])
    hint = (f" ({flipped} would conform with the conv/transposed-conv layout flipped: "
            "see --transposed)" if flipped else '')
    return (f"{name}: FAILS in {check['violating']}/{check['layers']} layers: {shown}{more}"
            f"{hint}; {check['conforming']} conform{na}; {share}")


def format_table(report):
    """The human-readable report.

    Args:
        report: dict from :func:`prune_plugin.report.cli.build_report`.

    Returns:
        str (no trailing newline).
    """
    checks = _check_columns(report)
    header = ['name', 'shape', 'kind', 'numel', 'zeros', 'sparsity'] + [c[1] for c in checks]
    body = [[r['name'] + (' (T)' if r['transposed'] else ''), shape_text(r['shape']), r['kind'],
             human_size(r['numel']), human_size(r['zeros']), percent(r['sparsity'])]
            + [r.get(c[0], '-') + ('*' if r.get(f"{c[0]}_if_flipped") else '') for c in checks]
            for r in report['rows']]
    out = [f"{report['path']} ({report['format']}, {len(report['all_rows'])} arrays, "
           f"{human_size(report['totals']['all']['numel'])} parameters)", '']
    out += _table(header, body, right_from=3) if body else ['(no parameter matches the filters)']
    notes = []
    if any(r['transposed'] for r in report['rows']):
        notes.append("(T): transposed conv, checked as [in, out, k...]")
    if any(r.get(f"{c[0]}_if_flipped") for r in report['rows'] for c in checks):
        notes.append("FAIL*: conforms with the conv/transposed layout flipped (--transposed)")
    if report['filtered_out']:
        notes.append(f"{report['filtered_out']} more not listed (--top / --min-sparsity)")
    if report['hidden_1d']:
        notes.append(f"{report['hidden_1d']} 1-D parameters (biases, norms) hidden: --all lists "
                     "them")
    if notes:
        out.append('(' + '; '.join(notes) + ')')
    out.append('')
    totals = [[label, t['params'], human_size(t['numel']), human_size(t['zeros']),
               percent(t['sparsity'])]
              for key, label in TOTAL_LABELS for t in [report['totals'][key]]]
    out += _table(['totals', 'params', 'numel', 'zeros', 'sparsity'], totals, right_from=1)
    if checks or report.get('expect'):
        out.append('')
    for key, _ in checks:
        out.append(_check_line(key, report['checks'][key]))
    if report.get('expect'):
        e = report['expect']
        verdict = 'PASS' if e['passed'] else 'FAIL'
        out.append(f"expect {e['of']} sparsity >= {e['ratio']:.4f}: {verdict} "
                   f"(measured {e['measured']:.4f}; {e['zeros']} zeros, {e['required_zeros']} "
                   "required)")
    return '\n'.join(out)


def _jsonable_row(row):
    return dict(row, shape=list(row['shape']))


def format_json(report):
    """The report as JSON: ``path, format, totals, checks, expect, params`` (filtered rows)."""
    head = json.dumps({
        'path': report['path'],
        'format': report['format'],
        'totals': report['totals'],
        'checks': report['checks'],
        'expect': report.get('expect'),
    }, indent=2)
    rows = ',\n'.join('    ' + json.dumps(_jsonable_row(r)) for r in report['rows'])
    return f'{head[:-2]},\n  "params": [\n{rows}\n  ]\n}}'  # one line per parameter


def format_csv(report):
    """One CSV row per listed parameter; shape as ``8x3x3x3``, exact counts, sparsity in [0, 1]."""
    checks = [c[0] for c in _check_columns(report)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['name', 'shape', 'kind', 'numel', 'zeros', 'sparsity'] + checks)
    for r in report['rows']:
        writer.writerow([r['name'], shape_text(r['shape'], sep='x'), r['kind'], r['numel'],
                         r['zeros'], f"{r['sparsity']:.6f}"] + [r.get(c, '') for c in checks])
    return buf.getvalue().rstrip('\n')


FORMATTERS = {'table': format_table, 'json': format_json, 'csv': format_csv}
