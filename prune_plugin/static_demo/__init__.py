"""PaddleSlim's static unstructured-pruning demo (``demo/unstructured_prune/train.py`` and
``evaluate.py``) on :mod:`prune_plugin.static`: ``python -m prune_plugin.static_demo train|evaluate``.

Digits (scikit-learn, offline) by default; MNIST from local files (``--data mnist``); ImageNet
from list files (``--data imagenet``). See docs/engine.md, "Static graph".
"""
