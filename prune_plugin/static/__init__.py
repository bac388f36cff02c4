"""PaddleSlim's static-graph pruning API on the engine: ``UnstructuredPruner(program, ...)`` and
``GMPUnstructuredPruner(program, ...)`` for PIR and legacy programs (see docs/engine.md,
"Static graph")."""
from ..core.errors import NonFiniteWeightsError, PruneConfigError
from .pruner import GMPUnstructuredPruner, UnstructuredPruner
from .selection import default_skip_params
from .stats import total_sparse, total_sparse_conv1x1

__all__ = ['UnstructuredPruner', 'GMPUnstructuredPruner', 'PruneConfigError',
           'NonFiniteWeightsError', 'default_skip_params', 'total_sparse', 'total_sparse_conv1x1']
