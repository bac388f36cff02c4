"""ppdet's own ``Trainer`` with the pruner attached: what ``prune-train`` runs, and the hook for a
PaddleDetection clone's own ``tools/train.py``.

:class:`PruneTrainer` subclasses the ``ppdet.engine.Trainer`` that is imported in this process
(the clone's when a clone is on ``sys.path`` first, as ppdet's tools put it). Its constructor
takes the pruning block out of the config *before* ppdet's constructor sees it (ppdet raises
``KeyError: 'slim_type'`` on ``slim: UnstructuredPrune``, and would build PaddleSlim's pruner
for its built-in ``UnstructuredPruner``), then builds the pruner with the real steps per epoch
and attaches :class:`PruneCallback`. ``resume_weights`` continues the schedule; eval and export
say how sparse the loaded weights are, and warn when a config asks for pruning but the weights
are dense. Nothing in ppdet is changed; without a pruning block it is ppdet's Trainer.
"""
from ppdet.engine import Trainer as PpdetTrainer
from ppdet.utils.logger import setup_logger

from ...core.plan import check_steps_per_epoch
from ...core.stats import total_sparse, total_sparse_conv1x1
from .callback import PruneCallback, rank0
from .compat import full_graph_to_static, needs_int64_gt_class, use_int64_gt_class
from .config import take_prune_block

logger = setup_logger('prune_plugin.ppdet')


class PruneTrainer(PpdetTrainer):
    """``ppdet.engine.Trainer`` that trains sparse when the config has a pruning block.

    Args:
        cfg: ppdet's config (``load_config(...)``), with ``slim: UnstructuredPrune`` + block,
            ``slim: UnstructuredPruner`` + ppdet's block, or what ppdet's ``build_slim_model``
            leaves for ``--slim_config configs/slim/prune/picodet_m_unstructured_prune_75.yml``.
        mode: ``'train'``, ``'eval'`` or ``'test'``.
        prune_spec: An already validated :class:`PruneSpec` (``prune-train`` passes it);
            default: read from ``cfg``.

    Raises:
        PruneConfigError, RegistryError: a bad block (before ppdet builds anything), or an
            epoch of 0 steps.

    Example (one line added to a clone's tools/train.py, after its imports)::

        from ppdet.engine import Trainer, TrainerCot, init_parallel_env, ...
        from prune_plugin.ppdet import Trainer
    """

    def __init__(self, cfg, mode='train', prune_spec=None):
        spec = take_prune_block(cfg)
        self.prune_spec = prune_spec if prune_spec is not None else spec
        self.prune_callback = None
        if needs_int64_gt_class():
            use_int64_gt_class(cfg)
        super().__init__(cfg, mode)
        if self.prune_spec is not None and self.mode == 'train':
            self._attach_pruner()

    @property
    def pruner(self):
        """The attached pruner, or None."""
        return self.prune_callback.pruner if self.prune_callback is not None else None

    def _attach_pruner(self):
        reader = self.cfg.get('TrainReader') or {}
        steps = check_steps_per_epoch(len(self.loader), len(self.dataset),
                                      reader.get('batch_size'), key='TrainReader.batch_size')
        pruner = self.prune_spec.build(self.model, steps_per_epoch=steps,
                                       optimizer=self.optimizer)
        self.prune_callback = PruneCallback.attach(self, pruner)
        if rank0():
            logger.info(f"prune_plugin: {self.prune_spec.name} on {len(pruner.params)} "
                        f"parameters ({steps} steps/epoch), mode {self.prune_spec.mode}")

    def resume_weights(self, weights, *args, **kwargs):
        """ppdet's resume, then the pruner continues at the saved iteration (``.pdprune``)."""
        super().resume_weights(weights, *args, **kwargs)
        if self.prune_callback is not None:
            self.prune_callback.resume(weights, self.start_epoch, len(self.loader))

    def load_weights(self, weights, *args, **kwargs):
        """ppdet's load; in eval/test mode, log the weights' sparsity (warn when dense)."""
        result = super().load_weights(weights, *args, **kwargs)
        if self.mode != 'train' and rank0():
            self._report_loaded_sparsity(weights)
        return result

    def _report_loaded_sparsity(self, weights):
        total, conv1x1 = total_sparse(self.model), total_sparse_conv1x1(self.model)
        logger.info(f"prune_plugin: {weights}: total sparsity {total:.2%}, conv1x1 "
                    f"{conv1x1:.2%}")
        if self.prune_spec is not None and total == 0:
            logger.warning(f"prune_plugin: the config has 'slim: {self.prune_spec.name}' but "
                           f"{weights} has no zero weights: these weights are dense (no pruner "
                           "was attached when they were trained); train them with prune-train "
                           "or the prune_plugin.ppdet Trainer")

    def export(self, *args, **kwargs):
        """ppdet's export with a full-graph ``to_static``: on PIR, else on the legacy IR.

        On Paddle 3, ppdet 2.6's NMS ops exist only for the legacy program IR, where
        ``paddle.multiply`` / ``sigmoid`` do not: YOLOv3 exports on the legacy IR, PicoDet on
        PIR (with ``-o export.nms=False``). The export is tried on PIR first; when that fails,
        once more on the legacy IR.
        """
        try:
            with full_graph_to_static(legacy_ir=False):
                return super().export(*args, **kwargs)
        except Exception as first:   # noqa: BLE001 - any conversion failure: retry once
            if not needs_int64_gt_class():
                raise
            logger.info(f"prune_plugin: export on PIR failed ({type(first).__name__}: "
                        f"{str(first).strip().splitlines()[-1][:200]}); exporting on the "
                        "legacy program IR")
            with full_graph_to_static(legacy_ir=True):
                return super().export(*args, **kwargs)


Trainer = PruneTrainer
