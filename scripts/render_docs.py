"""Write the benchmark tables that README.md and docs/*.md quote, from benchmarks/results/.

Tables are never copied by hand: a page marks where one goes, and this script fills it in::

    <!-- begin include: benchmarks/results/engine_overhead.md shift=1 -->
    ... (written by this script)
    <!-- end include -->

Options after the path: ``shift=N`` demotes headings by N levels; ``section=Title`` keeps only
the part under the heading ``Title`` (up to the next heading of the same or a higher level);
``columns=a,b,c`` keeps only those columns of the (first) table of the part.

    python scripts/render_docs.py           # rewrite README.md and docs/*.md in place
    python scripts/render_docs.py --check   # exit 1 if a page is out of date (the tests run it)
"""
import argparse
import glob
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = re.compile(r"(<!-- begin include: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end include -->)",
                   re.S)


def pages():
    """README.md and every docs/**/*.md."""
    return [os.path.join(REPO, 'README.md')] + sorted(
        glob.glob(os.path.join(REPO, 'docs', '**', '*.md'), recursive=True))


def _heading(line):
    match = re.match(r"(#+) (.*)", line)
    return (len(match.group(1)), match.group(2).strip()) if match else None


def _section(lines, title):
    start = level = None
    for i, line in enumerate(lines):
        head = _heading(line)
        if head is None:
            continue
        if start is None and head[1] == title:
            start, level = i, head[0]
        elif start is not None and head[0] <= level:
            return lines[start:i]
    if start is None:
        raise ValueError(f"no heading {title!r}")
    return lines[start:]


def _columns(lines, names):
    """The first markdown table of ``lines`` with only the columns ``names``."""
    first = next(i for i, line in enumerate(lines) if line.startswith('|'))
    header = [cell.strip() for cell in lines[first].strip().strip('|').split('|')]
    missing = [n for n in names if n not in header]
    if missing:
        raise ValueError(f"no column(s) {missing} in {header}")
    keep = [header.index(n) for n in names]
    out = []
    for line in lines[first:]:
        if not line.startswith('|'):
            break
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        out.append('| ' + ' | '.join(cells[k] for k in keep) + ' |')
    return out


def render(spec):
    """The text an include block with ``spec`` (``PATH key=value ...``) holds."""
    path, *options = spec.split()
    opts = dict(option.split('=', 1) for option in options)
    with open(os.path.join(REPO, path), encoding='utf-8') as f:
        lines = f.read().rstrip('\n').split('\n')
    if 'section' in opts:
        lines = _section(lines, opts['section'].replace('_', ' '))
    if 'columns' in opts:
        lines = _columns(lines, [c.replace('_', ' ') for c in opts['columns'].split(',')])
    shift = int(opts.get('shift', 0))
    in_code = False
    out = []
    for line in lines:
        if line.startswith('```'):
            in_code = not in_code
        if not in_code and _heading(line) and shift:
            line = '#' * shift + line
        out.append(line)
    return '\n'.join(out) + '\n'


def update(text):
    """``text`` with every include block filled in."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group('spec')) + m.group(4), text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true', help="only report stale pages")
    args = parser.parse_args(argv)
    stale = []
    for page in pages():
        with open(page, encoding='utf-8') as f:
            text = f.read()
        new = update(text)
        if new != text:
            stale.append(os.path.relpath(page, REPO))
            if not args.check:
                with open(page, 'w', encoding='utf-8') as f:
                    f.write(new)
    if args.check and stale:
        print(f"out of date (run python scripts/render_docs.py): {', '.join(stale)}",
              file=sys.stderr)
        return 1
    if not args.check:
        print(f"rewrote {len(stale)} page(s)" + (f": {', '.join(stale)}" if stale else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
