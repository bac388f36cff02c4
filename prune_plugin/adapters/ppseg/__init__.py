"""PaddleSeg adapter (imports ``paddleseg``; only :func:`prune_plugin.adapters.load_adapter`
and the public hooks of :mod:`prune_plugin.ppseg` import it).

- :mod:`.main`: ``train_main`` / ``eval_main`` / ``export_main``, the entries of the CLIs;
- :mod:`.args`: PaddleSeg's flags; :mod:`.config`: the config and its prune block;
- :mod:`.hook`: ``attach_pruner``, the attach hook; :mod:`.attach`: the optimizer wrapper that
  steps the pruner; :mod:`.state`: the pruner's state file; :mod:`.export`: export;
- :mod:`.compat`, :mod:`.losses`, :mod:`.loss_fixes`: what paddleseg needs to run on Paddle 3.3.
"""
