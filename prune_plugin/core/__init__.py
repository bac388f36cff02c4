"""The sparsity engine. Imports paddle and numpy only, never a suite."""
from .errors import NonFiniteWeightsError, PruneConfigError
from .gmp import GMPUnstructuredPruner
from .pruner import UnstructuredPruner
from .validation import parse_sparse_pattern
from .schedule import GMPSchedule, gmp_ratio_at
from .selection import conv1x1_params, default_skip_params, select_prunable
from .stats import total_sparse, total_sparse_conv1x1

__all__ = [
    'PruneConfigError', 'NonFiniteWeightsError', 'UnstructuredPruner', 'GMPUnstructuredPruner',
    'GMPSchedule', 'gmp_ratio_at', 'parse_sparse_pattern', 'select_prunable',
    'default_skip_params', 'conv1x1_params', 'total_sparse', 'total_sparse_conv1x1'
]
