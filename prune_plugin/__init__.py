"""prune_plugin: sparse training for the PaddlePaddle vision suites.

Same API as PaddleSlim's dygraph unstructured pruners::

    from prune_plugin import UnstructuredPruner, GMPUnstructuredPruner
"""
import warnings as _warnings
import zlib as _zlib

# paddlepaddle 2.6.x exports its own zlib symbols: the first zlib.decompress after `import paddle`
# segfaults (pycocotools and lap, which ppdet imports, hit it). One call before paddle loads
# binds Python's zlib to the system library. Harmless on 3.x.
_zlib.decompress(_zlib.compress(b'prune_plugin'))
# `import paddle` warns about a missing ccache (only relevant to building C++ extensions).
_warnings.filterwarnings('ignore', message='No ccache found', category=UserWarning)

from .core import (GMPSchedule, GMPUnstructuredPruner, PruneConfigError, UnstructuredPruner,
                   gmp_ratio_at, total_sparse, total_sparse_conv1x1)

__version__ = '0.2.0'  # setup.py reads it from here; CHANGELOG.md says what changed

__all__ = [
    'UnstructuredPruner', 'GMPUnstructuredPruner', 'GMPSchedule', 'gmp_ratio_at',
    'PruneConfigError', 'total_sparse', 'total_sparse_conv1x1', '__version__'
]
