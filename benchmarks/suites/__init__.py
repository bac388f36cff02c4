"""The suite benchmark: the three demo configs trained dense and sparse through the CLIs.

Run it as ``python -m benchmarks.suites`` from the repo root (:mod:`.__main__`, see its
docstring); :mod:`.defs` holds the suites' arguments and metrics, :mod:`.launcher` and
:mod:`.ppdet_builtin` are the training subprocesses (``python benchmarks/suites/launcher.py``),
:mod:`.checkpoint` reads the checkpoints and :mod:`.format` writes ``results/suites.md``.

``python -m benchmarks.suites.paired`` (:mod:`.paired`) is the paired variant for PicoDet and
PP-HumanSeg-Lite: one dense parent per suite, every row of a seed fine-tuned from it;
:mod:`.provenance` records what each run loaded and its batch order, :mod:`.paired_report` writes
``results/suites_paired.md``.
"""
