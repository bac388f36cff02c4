"""``prune-report`` / ``python -m prune_plugin.report``: how sparse are these weights, really?

The chain: :func:`load_weights` -> :func:`collect_param_stats` -> :func:`build_report`
(totals, checks, gate, then filter/sort) -> a formatter. Exit codes: 0 report printed and every
requested gate passed; 1 a gate failed (``--expect``, or ``--strict`` with a violated
``--block`` / ``--pattern``); 2 bad arguments or input (one line on stderr).
"""
import argparse
import os
import re
import sys

from .. import __version__
from .formatting import FORMATTERS
from .loading import ReportInputError, load_weights
from .patterns import parse_block, parse_pattern, summarize_check
from .stats import SORT_KEYS, collect_param_stats, select_rows, sparsity_totals

PROG = 'prune-report'
EXPECT_OF = ('prunable', 'all', 'conv1x1')
PROGRESS_DELAY_S = 2.0

EPILOG = """examples:
  prune-report output/ppyoloe_sparse/model_final.pdparams
  prune-report output/ppyoloe_sparse                       # newest checkpoint in the folder
  prune-report output/seg --checkpoint best_model          # best_model/model.pdparams
  prune-report output_inference/yolov3/model.pdmodel       # exported model (.pdmodel or .json)
  prune-report output_inference/yolov3/model.onnx          # ONNX (prune-export --format onnx)
  prune-report ckpt.pdparams --block 2x1 --pattern 2:4 --strict
  prune-report ckpt.pdparams --block 2x1 --transposed 'mask_head\\.deconv'  # [in,out,k,k]
  prune-report ckpt.pdparams --sort sparsity --top 10 --min-sparsity 0.3
  prune-report ckpt.pdparams --format json > sparsity.json
  prune-report ckpt.pdparams --plot sparsity.png
  prune-report ckpt.pdparams --expect 0.75 || echo "not sparse enough"   # CI gate

exit codes: 0 ok, 1 a gate failed (--expect, --strict), 2 bad arguments or input
"""


def _ratio(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} should be a number in [0, 1]") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} should be a number in [0, 1]")
    return value


def _positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} should be an int >= 1")
    return int(text)


def _regex(text):
    try:
        return re.compile(text)
    except re.error as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression ({err})") \
            from None


def transposed_names(loaded, patterns):
    """Transposed-conv weights: what the file says plus names matching ``--transposed``."""
    matched = {name for name in loaded.arrays if any(p.search(name) for p in patterns)}
    return set(loaded.transposed) | matched


def _arg_type(parse):
    def convert(text):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return convert


def build_parser():
    """The argparse parser of ``prune-report``."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Sparsity report of Paddle weights: per-parameter zeros, totals (the numbers "
                    "total_sparse / total_sparse_conv1x1 give) and block / n:m pattern checks.")
    parser.add_argument('path', help=".pdparams file, checkpoint directory, exported "
                        "inference model (prefix, .pdmodel, .json or .pdiparams) or .onnx file")
    parser.add_argument('--version', action='version', version=f"prune_plugin {__version__}")
    parser.add_argument('--checkpoint', metavar='NAME',
                        help="in a directory, read this checkpoint instead of the newest "
                        "(model_final, 11, iter_500, best_model, latest, ...)")
    parser.add_argument('--format', choices=sorted(FORMATTERS), default='table')
    parser.add_argument('--sort', choices=SORT_KEYS, default='order',
                        help="row order (numbers: largest first; default: file order)")
    parser.add_argument('--top', type=_positive_int, metavar='K', help="list only K rows")
    parser.add_argument('--min-sparsity', type=_ratio, metavar='X',
                        help="list only parameters with sparsity >= X (0..1)")
    parser.add_argument('--all', action='store_true', dest='include_1d',
                        help="also list 1-D parameters (biases, norm weights)")
    parser.add_argument('--block', type=_arg_type(parse_block), metavar='MxN',
                        help="check that every M-output x N-input block is all zero or all "
                        "non-zero (the pruner's sparse_block=[M, N])")
    parser.add_argument('--pattern', type=_arg_type(parse_pattern), metavar='N:M',
                        help="check at most N non-zeros in every M consecutive input channels")
    parser.add_argument('--transposed', type=_regex, action='append', default=[],
                        metavar='REGEX',
                        help="weights whose names match are transposed convs ([in, out, k, k]); "
                        "exported models say so themselves (repeatable)")
    parser.add_argument('--strict', action='store_true',
                        help="exit 1 when a layer violates --block or --pattern")
    parser.add_argument('--expect', type=_ratio, metavar='RATIO',
                        help="exit 1 when fewer than round(RATIO x N) of the N weights are zero "
                        "(CI gate)")
    parser.add_argument('--expect-of', choices=EXPECT_OF, default='prunable',
                        help="which total --expect compares (default: prunable)")
    parser.add_argument('--plot', metavar='FILE.png', help="write a per-layer sparsity bar chart")
    return parser


def _checks(rows, block, pattern):
    checks = {}
    if block:
        checks['block'] = dict(summarize_check(rows, 'block'), spec=f"{block[0]}x{block[1]}",
                               na_reason='')
    if pattern:
        checks['pattern'] = dict(
            summarize_check(rows, 'pattern'), spec=f"{pattern[0]}:{pattern[1]}",
            na_reason=f"input channels not a multiple of {pattern[1]}")
    return checks


def build_report(loaded, all_rows, args):
    """Everything the formatters need, from the rows of every parameter and the options.

    Args:
        loaded: :class:`LoadedWeights` (its path and format are reported).
        all_rows: Rows of every parameter (:func:`collect_param_stats`).
        args: Parsed options (sort, top, min_sparsity, include_1d, block, pattern, expect...).

    Returns:
        dict: ``path, format, all_rows, rows`` (filtered and sorted), ``hidden_1d``, ``totals``,
        ``checks`` and ``expect`` (None or ``{ratio, of, measured, passed}``).
    """
    totals = sparsity_totals(all_rows)
    rows = select_rows(all_rows, sort=args.sort, top=args.top, min_sparsity=args.min_sparsity,
                       include_1d=args.include_1d)
    hidden_1d = 0 if args.include_1d else sum(not r['prunable'] for r in all_rows)
    expect = None
    if args.expect is not None:
        total = totals[args.expect_of]
        # the pruner zeroes round(ratio * N) weights, which can be a hair under ratio * N
        required = round(args.expect * total['numel'])
        expect = {'ratio': args.expect, 'of': args.expect_of, 'measured': total['sparsity'],
                  'required_zeros': required, 'zeros': total['zeros'],
                  'passed': total['zeros'] >= required}
    return {
        'path': loaded.path, 'format': loaded.source_format, 'all_rows': all_rows, 'rows': rows,
        'hidden_1d': hidden_1d,
        'filtered_out': len(all_rows) - hidden_1d - len(rows),
        'totals': totals, 'checks': _checks(all_rows, args.block, args.pattern), 'expect': expect,
    }


def gate_failures(report, strict):
    """The failed CI gates of a report.

    Args:
        report: From :func:`build_report`.
        strict: Count ``--block`` / ``--pattern`` violations as failures.

    Returns:
        list of one-line messages (empty when every gate passes).
    """
    failures = []
    expect = report['expect']
    if expect and not expect['passed']:
        failures.append(f"{expect['of']} sparsity {expect['measured']:.4f} is below the expected "
                        f"{expect['ratio']:.4f} ({expect['zeros']} zeros, "
                        f"{expect['required_zeros']} required)")
    if strict:
        for key, check in report['checks'].items():
            if not check['holds']:
                failures.append(f"{check['violating']} layers violate {key} {check['spec']}")
    return failures


def _progress():
    """A tqdm wrapper shown only on a terminal and only when the scan takes > 2 s."""
    if not sys.stderr.isatty():
        return iter
    try:
        from tqdm import tqdm
    except ImportError:
        return iter

    def wrap(items):
        items = list(items)
        return tqdm(items, total=len(items), delay=PROGRESS_DELAY_S, unit='param',
                    desc='scanning', leave=False, file=sys.stderr)
    return wrap


def run(args):
    """Load, measure, print (and plot).

    Args:
        args: Parsed arguments of :func:`build_parser`.

    Returns:
        Exit code: 0, or 1 when a gate failed.

    Raises:
        ReportInputError: bad path or file.
    """
    loaded = load_weights(args.path, checkpoint=args.checkpoint)
    all_rows = collect_param_stats(loaded.arrays, block=args.block, pattern=args.pattern,
                                   transposed=transposed_names(loaded, args.transposed),
                                   progress=_progress())
    report = build_report(loaded, all_rows, args)
    print(FORMATTERS[args.format](report))
    if args.plot:
        from .plot import plot_sparsity
        try:
            plot_sparsity(report['rows'], args.plot, title=f"{loaded.path}: prunable sparsity "
                          f"{report['totals']['prunable']['sparsity'] * 100:.2f}%",
                          reference=report['totals']['prunable']['sparsity'])
        except OSError as err:
            raise ReportInputError(f"--plot {args.plot}: cannot write ({err.strerror or err})") \
                from None
    failures = gate_failures(report, args.strict)
    for line in failures:
        print(f"{PROG}: {line}", file=sys.stderr)
    return 1 if failures else 0


def main(argv=None):
    """Entry point of ``prune-report`` and ``python -m prune_plugin.report``.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        Exit code: 0 ok, 1 a gate failed, 2 bad arguments or input.

    Example:
        >>> main(['output/model_final.pdparams', '--expect', '0.5'])
        0
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error argparse already printed
        return stop.code if isinstance(stop.code, int) else 2
    try:
        return run(args)
    except ReportInputError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `prune-report ... | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # unreadable files or folders the loaders did not name
        where = err.filename or args.path
        print(f"{PROG}: error: {where}: cannot read ({err.strerror or err})", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{PROG}: error: {args.path}: out of memory while reading the weights",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug, or a file shaped in a way no test has seen
        if os.environ.get('PRUNE_REPORT_DEBUG'):
            raise
        print(f"{PROG}: error: {args.path}: unexpected {type(err).__name__}: "
              f"{str(err).splitlines()[0] if str(err) else ''} (PRUNE_REPORT_DEBUG=1 shows the "
              "traceback)", file=sys.stderr)
        return 2
