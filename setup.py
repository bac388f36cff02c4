import os
import re

from setuptools import find_packages, setup

# One version: prune_plugin.__version__ (read as text: importing the package needs paddle).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'prune_plugin', '__init__.py'),
          encoding='utf-8') as _init:
    VERSION = re.search(r"^__version__ = '([^']+)'", _init.read(), re.M).group(1)

setup(
    name='prune_plugin',
    version=VERSION,
    description='Sparse training for PaddleDetection, PaddleSeg and PaddleClas',
    packages=find_packages(include=['prune_plugin', 'prune_plugin.*']),
    python_requires='>=3.8',
    # paddlepaddle (or paddlepaddle-gpu) and the suites are installed by scripts/install.sh:
    # their published pins conflict, see README "Installing".
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
