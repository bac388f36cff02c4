"""The suite benchmark: the three demo configs trained dense and sparse through the CLIs.

Run it as ``python -m benchmarks.suites`` from the repo root (:mod:`.__main__`, see its
docstring); :mod:`.defs` holds the suites' arguments and metrics, :mod:`.launcher` and
:mod:`.ppdet_builtin` are the training subprocesses (``python benchmarks/suites/launcher.py``),
:mod:`.checkpoint` reads the checkpoints and :mod:`.format` writes ``results/suites.md``.
"""
