import os
import re

import sys

from setuptools import Extension, find_packages, setup

# One version: prune_plugin.__version__ (read as text: importing the package needs paddle).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'prune_plugin', '__init__.py'),
          encoding='utf-8') as _init:
    VERSION = re.search(r"^__version__ = '([^']+)'", _init.read(), re.M).group(1)

# The fused host loop of the threshold step (prune_plugin/core/kernels.py). Optional: without a C
# compiler the install goes on and the engine uses its numpy path (same results, slower on CPU).
HOST_KERNELS = Extension(
    'prune_plugin.core._host_kernels', sources=['prune_plugin/core/_host_kernels.c'],
    extra_compile_args=[] if sys.platform == 'win32' else ['-O3'], optional=True)

setup(
    name='prune_plugin',
    version=VERSION,
    description='Sparse training for PaddleDetection, PaddleSeg and PaddleClas',
    packages=find_packages(include=['prune_plugin', 'prune_plugin.*']),
    python_requires='>=3.8',
    # paddlepaddle (or paddlepaddle-gpu) and the suites are installed by scripts/install.sh:
    # their published pins conflict, see README "Installing".
    ext_modules=[HOST_KERNELS],
    install_requires=['numpy<2', 'pyyaml'],
    # prune-export --format onnx / prune-report model.onnx (requirements/onnx.txt pins a tested set)
    extras_require={'onnx': ['paddle2onnx==2.1.0', 'onnx>=1.16.1', 'onnxruntime']},
    entry_points={'console_scripts': [
        'prune-train=prune_plugin.cli:train',
        'prune-eval=prune_plugin.cli:evaluate',
        'prune-export=prune_plugin.cli:export',
        'prune-report=prune_plugin.report:main',
    ]},
)
