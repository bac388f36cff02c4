"""PaddleClas adapter (imports ``ppcls`` / ``paddleclas``; only
:func:`prune_plugin.adapters.load_adapter` and the public hooks of :mod:`prune_plugin.ppcls`
import it).

- :mod:`.main`: ``train_main`` / ``eval_main`` / ``export_main``, the entries of the CLIs;
- a clone's Engine: :mod:`.engine_cli` (commands), :mod:`.engine_adapter` (``attach_pruner``,
  the attach hook), :mod:`.engine_check` (config checks);
- the wheel (no Engine): :mod:`.config`, :mod:`.trainer`, :mod:`.data`, :mod:`.ops`,
  :mod:`.autoaugment`, :mod:`.batch_ops`, :mod:`.optim`, :mod:`.lr`, :mod:`.export`;
- :mod:`.report`: sparsity summaries and warnings.
"""
