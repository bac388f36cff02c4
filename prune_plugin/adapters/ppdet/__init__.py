"""PaddleDetection adapter (imports ``ppdet``; only :func:`prune_plugin.adapters.load_adapter`
and the public hooks of :mod:`prune_plugin.ppdet` import it).

- :mod:`.main`: ``train_main`` / ``eval_main`` / ``export_main``, the entries of the CLIs;
- :mod:`.args`: tools/train.py's flags; :mod:`.config`: the config and its prune block;
- :mod:`.trainer`: ``PruneTrainer``, ppdet's ``Trainer`` with the pruner attached;
- :mod:`.callback`: ``PruneCallback``, the attach hook; :mod:`.state`: the pruner's state file;
- :mod:`.compat`: what ppdet needs to run on Paddle 3.3.
"""
