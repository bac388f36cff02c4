"""prune_plugin: sparse training for the PaddlePaddle vision suites.

Same API as PaddleSlim's dygraph unstructured pruners::

    from prune_plugin import UnstructuredPruner, GMPUnstructuredPruner
"""
from .core import (GMPSchedule, GMPUnstructuredPruner, PruneConfigError, UnstructuredPruner,
                   gmp_ratio_at, total_sparse, total_sparse_conv1x1)

__version__ = '0.1.0'

__all__ = [
    'UnstructuredPruner', 'GMPUnstructuredPruner', 'GMPSchedule', 'gmp_ratio_at',
    'PruneConfigError', 'total_sparse', 'total_sparse_conv1x1', '__version__'
]
