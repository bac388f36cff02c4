"""The three demo configs trained dense and sparse through the CLIs, side by side.

For PaddleSeg (PP-HumanSeg-Lite), PaddleClas (MobileNetV1 x0.5) and PaddleDetection (PicoDet-m,
GMP; YOLOv3-MobileNetV1, threshold mode) each demo config is trained with a fixed budget, once
without pruning (``-o slim=null``) and once with its ``slim: UnstructuredPrune`` block, by ``tools/train.py`` in a subprocess (through
``launcher.py``, which times the plugin's calls); PicoDet also with ppdet's *built-in*
pruner (``ppdet_builtin.py``). Each final checkpoint is then evaluated by
``tools/eval.py`` (a fresh process, the metric read from its output) and read back from disk:

- metric: mIoU / top-1 / COCO mAP(0.5:0.95) on the demo's validation set;
- sparsity from the checkpoint file: zeros of the 1x1-conv weights (what the demos prune) with
  the count the configured ratio asks for, and zeros of all float weights;
- checkpoint size: bytes of the ``.pdparams``, ratio to the dense one, and deflated size;
- the plugin's share of training time: seconds inside the plugin / wall seconds of the
  train command (model build, data, steps, checkpoints; no evaluation).

Usage::

    OMP_NUM_THREADS=2 python -m benchmarks.suites                 # full: writes results/suites.md
    python -m benchmarks.suites --smoke --suites ppseg --out /tmp/s.md --json /tmp/s.json
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

SUITES_DIR = os.path.dirname(os.path.abspath(__file__))
BENCH_DIR = os.path.dirname(SUITES_DIR)
sys.path.insert(0, BENCH_DIR)

from suites.checkpoint import measure_checkpoint  # noqa: E402
from suites.defs import SUITES, metric_from_output  # noqa: E402

REPO_ROOT = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, 'results')
PYTHON = sys.executable
LAUNCHERS = {'plugin': os.path.join(SUITES_DIR, 'launcher.py'),
             'builtin': os.path.join(SUITES_DIR, 'ppdet_builtin.py')}


def _run_logged(cmd, log_path, env, timeout):
    """Run ``cmd`` from the repo root, output to ``log_path``; return (rc, seconds, text)."""
    start = time.perf_counter()
    with open(log_path, 'w') as log:
        try:
            rc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = 'timeout'
    with open(log_path, errors='replace') as log:
        text = log.read()
    return rc, time.perf_counter() - start, text


def _failure(text, rc):
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if 'Error' in ln or 'error' in ln),
                lines[-1] if lines else '')
    return f"exit {rc}: {last[:200]}"


def run_one(suite, run, work_dir, smoke, env, timeout):
    """Train, evaluate and measure one row; failures are recorded in the row, not raised.

    Args:
        suite: A :class:`suites.defs.SuiteDef`.
        run: ``'dense'``, ``'prune_plugin'`` or ``'ppdet built-in'``.
        work_dir: Folder for this row's outputs and logs.
        smoke: Use the smoke budget.
        env: Environment of the subprocesses.
        timeout: Seconds per subprocess.

    Returns:
        The row dict (see ``--json``).
    """
    out_dir = os.path.join(work_dir, suite.key, run.replace(' ', '_'))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    row = {'suite': suite.key, 'title': suite.title, 'run': run, 'config': suite.config,
           'budget': suite.budget_text(smoke), 'metric_name': suite.metric_name}
    if not os.path.isfile(os.path.join(REPO_ROOT, suite.config)):
        row['error'] = "not run: adapter not ready at measurement time (no config)"
        return row
    timing_path = os.path.join(out_dir, 'timing.json')
    launcher = LAUNCHERS['builtin' if run == 'ppdet built-in' else 'plugin']
    cmd = [PYTHON, launcher, '--timing-out', timing_path] + suite.train_args(run, out_dir, smoke)
    rc, seconds, text = _run_logged(cmd, os.path.join(out_dir, 'train.log'), env, timeout)
    row['train_command'] = ' '.join(cmd[1:]).replace(REPO_ROOT + '/', '')
    if rc != 0 or not os.path.isfile(timing_path):
        row['error'] = _failure(text, rc)
        return row
    with open(timing_path) as handle:
        timing = json.load(handle)
    row.update(train_seconds=timing['train_seconds'], plugin_seconds=timing['plugin_seconds'],
               plugin_calls=timing['calls'], pruner=timing.get('pruner'),
               plugin_seconds_by_label=timing.get('seconds_by_label'))
    row['plugin_share'] = timing['plugin_seconds'] / timing['train_seconds']
    row['span_seconds'] = timing.get('span_seconds', 0.0)
    if row['span_seconds'] > 0:
        row['plugin_share_of_loop'] = timing['plugin_seconds'] / row['span_seconds']
    checkpoint = suite.checkpoint(out_dir)
    if not os.path.isfile(checkpoint):
        row['error'] = f"no checkpoint at {checkpoint}"
        return row
    row['checkpoint'] = measure_checkpoint(checkpoint, timing.get('pruner'))
    raw = suite.raw_weights(out_dir)
    if run != 'dense' and raw and os.path.isfile(raw):
        row['raw_weights'] = measure_checkpoint(raw)
    row['metric'], error, row['eval_seconds'] = evaluate(
        suite, checkpoint, os.path.join(out_dir, 'eval.log'), env, timeout)
    if error:
        row['error'] = error
    return row


def evaluate(suite, checkpoint, log_path, env, timeout):
    """``tools/eval.py`` on ``checkpoint`` in a fresh process.

    Returns:
        ``(metric in percent or None, error line or None, seconds)``.
    """
    rc, seconds, text = _run_logged([PYTHON, 'tools/eval.py'] + suite.eval_args(checkpoint),
                                    log_path, env, timeout)
    metric = metric_from_output(suite, text) if rc == 0 else None
    return metric, (None if metric is not None else "eval: " + _failure(text, rc)), seconds


def code_version():
    """``HEAD``'s short hash, ``+dirty`` when prune_plugin/, tools/ or configs/ have changes."""
    def git(*args):
        return subprocess.run(['git', *args], cwd=REPO_ROOT, capture_output=True,
                              text=True).stdout.strip()
    try:
        dirty = git('status', '--porcelain', '--', 'prune_plugin', 'tools', 'configs')
        return (git('rev-parse', '--short', 'HEAD') or 'unknown') + ('+dirty' if dirty else '')
    except OSError:
        return 'unknown'


def add_relative_sizes(rows):
    """``size_vs_dense`` = checkpoint bytes / the same suite's dense checkpoint bytes."""
    dense = {r['suite']: r['checkpoint']['bytes'] for r in rows
             if r['run'] == 'dense' and 'checkpoint' in r}
    for r in rows:
        if 'checkpoint' in r and r['suite'] in dense:
            r['size_vs_dense'] = r['checkpoint']['bytes'] / dense[r['suite']]


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suites",
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m benchmarks.suites\n"
               "  python -m benchmarks.suites --smoke --suites ppseg --out /tmp/s.md "
               "--json /tmp/s.json")
    add_run_arguments(parser, SUITES, 'suites.md',
                      "skip the PicoDet run with ppdet's built-in pruner")
    return parse_checked(parser, argv, SUITES)


def add_run_arguments(parser, suites, results_name, builtin_help):
    """The options every suite benchmark takes (``python -m benchmarks.suites[.paired]``)."""
    parser.add_argument('--smoke', action='store_true', help="tiny budgets (seconds per run)")
    parser.add_argument('--suites', default=','.join(suites),
                        help=f"comma-separated subset of {list(suites)}")
    parser.add_argument('--no-builtin', action='store_true', help=builtin_help)
    parser.add_argument('--threads', type=int, default=int(os.environ.get('OMP_NUM_THREADS', 2)),
                        help="OMP_NUM_THREADS of the runs (default: $OMP_NUM_THREADS or 2)")
    parser.add_argument('--work-dir', default=None,
                        help="outputs and logs of the runs (default: a temporary folder)")
    parser.add_argument('--timeout', type=int, default=None,
                        help="seconds per subprocess (default 1800, smoke 300)")
    parser.add_argument('--out', default=None, help=f"markdown file (default: results/"
                                                    f"{results_name}; with --smoke: none)")
    parser.add_argument('--json', default=None, help="also write the rows as JSON here")
    parser.add_argument('--render', default=None, metavar='JSON',
                        help="run nothing: write --out from a JSON an earlier run wrote")


def parse_checked(parser, argv, suites):
    """Parse ``argv``; an unknown name in ``--suites`` is a usage error (exit 2)."""
    args = parser.parse_args(argv)
    unknown = [s for s in args.suites.split(',') if s not in suites]
    if unknown:
        parser.error(f"--suites: {unknown} not in {list(suites)}")
    return args


def main(argv=None):
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.render:
        from suites.format import results_markdown
        with open(args.render) as handle:
            saved = json.load(handle)
        out = args.out or os.path.join(RESULTS_DIR, 'suites.md')
        with open(out, 'w') as handle:
            handle.write(results_markdown(saved['rows'], saved['meta']))
        print(f"table: {out}")
        return 0
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='suites_')
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED='1')
    timeout = args.timeout or (300 if args.smoke else 1800)
    rows, start = [], time.perf_counter()
    for key in args.suites.split(','):
        suite = SUITES[key]
        for run in suite.runs(with_builtin=not args.no_builtin):
            row = run_one(suite, run, work_dir, args.smoke, env, timeout)
            rows.append(row)
            metric = row.get('metric')
            print(f"{key:6s} {run:15s} metric "
                  f"{'-' if metric is None else format(metric, '.2f')}  "
                  f"zeros {row.get('checkpoint', {}).get('conv1x1_zeros')} / expected "
                  f"{row.get('checkpoint', {}).get('expected_zeros')}  "
                  f"share {row.get('plugin_share', float('nan')):.2%}  {row.get('error', '')}",
                  flush=True)
    add_relative_sizes(rows)
    meta = {'date': datetime.datetime.now().strftime('%Y-%m-%d %H:%M'), 'smoke': args.smoke,
            'threads': args.threads, 'total_seconds': time.perf_counter() - start,
            'command': 'python -m benchmarks.suites ' + ' '.join(argv or sys.argv[1:]),
            'work_dir': work_dir, 'code_version': code_version()}
    out = args.out or (None if args.smoke else os.path.join(RESULTS_DIR, 'suites.md'))
    if out:
        from suites.format import results_markdown  # imports paddle: only when writing
        with open(out, 'w') as handle:
            handle.write(results_markdown(rows, meta))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'meta': meta, 'rows': rows}, handle, indent=1)
    print(f"{len(rows)} runs in {meta['total_seconds']:.0f} s; outputs in {work_dir}"
          + (f"; table: {out}" if out else ''))
    return 1 if any('error' in r and not r['error'].startswith('not run') for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
