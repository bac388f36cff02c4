"""Sparsity report of Paddle weights (``prune-report``, ``python -m prune_plugin.report``).

A chain of small functions, formatting last::

    loaded = load_weights('output/model_final.pdparams')       # {name: numpy array}
    rows = collect_param_stats(loaded.arrays, block=(2, 1))     # one dict per parameter
    totals = sparsity_totals(rows)                              # all / prunable / conv1x1
"""
from .cli import build_parser, build_report, main
from .loading import LoadedWeights, ReportInputError, load_weights
from .patterns import parse_block, parse_pattern, summarize_check
from .stats import collect_param_stats, param_kind, select_rows, sparsity_totals

__all__ = [
    'main', 'build_parser', 'build_report', 'load_weights', 'LoadedWeights', 'ReportInputError',
    'collect_param_stats', 'sparsity_totals', 'select_rows', 'param_kind', 'parse_block',
    'parse_pattern', 'summarize_check'
]
