"""Train / evaluate a ``paddleclas.ppcls.arch`` model from a PaddleClas config with hapi.

hapi supplies the loop, the progress bar (``ProgBarLogger``), the LR stepping (``LRScheduler``),
VisualDL and data parallelism; :class:`ClsCheckpoint` (a ``ModelCheckpoint``) adds PaddleClas's
checkpoint layout and eval schedule; :class:`~prune_plugin.hapi_callback.PruneCallback` keeps the
weights sparse. Checkpoints, as in PaddleClas, under ``<Global.output_dir>/<Arch.name>/``::

    epoch_<n>.pdparams / .pdopt     every Global.save_interval epochs (plain sparse weights;
                                    none with save_interval <= 0, as in PaddleClas)
    epoch_<n>.pdprune               pruner state {'iteration': ...} (only with a slim block)
    epoch_<n>.pdstates              {'epoch': n, 'best_top1': ...} (to resume from)
    latest.*  best_model.*          the last epoch and the best eval top-1
"""
import json
import logging
import os
import random

import numpy as np
import paddle
from paddle.static import InputSpec

from ...core.plan import check_steps_per_epoch
from ...core.stats import total_sparse, total_sparse_conv1x1
from ...hapi_callback import PruneCallback, save_pruner_state
from ...report.safe_pickle import load_numpy
from .config import amp_settings
from .data import build_dataloader
from .optim import build_loss, build_metrics, build_optimizer

logger = logging.getLogger('prune_plugin')


def is_rank0():
    return paddle.distributed.ParallelEnv().local_rank == 0


def setup_runtime(cfg):
    """Pick the device and seed every generator from ``Global.seed`` (if set)."""
    device = cfg['Global']['device']
    if device == 'gpu' and not paddle.is_compiled_with_cuda():
        logger.warning("Global.device=gpu but this paddle has no CUDA: using cpu")
        device = 'cpu'
    paddle.set_device(device)
    seed = cfg['Global'].get('seed')
    if seed is not None:
        paddle.seed(int(seed))
        np.random.seed(int(seed))
        random.seed(int(seed))


def build_network(cfg):
    """``paddleclas.ppcls.arch.build_model(cfg)``, with ``Global.pretrained_model`` loaded."""
    from paddleclas.ppcls.arch import build_model

    network = build_model(cfg)
    pretrained = cfg['Global'].get('pretrained_model')
    if pretrained:
        load_weights(network, pretrained)
    return network


def load_weights(network, prefix):
    """Load ``<prefix>.pdparams`` into ``network``; log (not fail on) shape mismatches.

    The usual case is ImageNet weights into a model with another ``class_num``: the classifier
    is left initialised and everything else is loaded.
    """
    state = load_numpy(f"{prefix}.pdparams")  # a user's file: read without running it
    own = network.state_dict()
    usable = {k: v for k, v in state.items() if k in own and list(v.shape) == list(own[k].shape)}
    skipped = sorted(set(state) - set(usable))
    network.set_state_dict(usable)
    if skipped and is_rank0():
        logger.info("loaded %s: %d tensors, skipped %d with other shapes or names (%s...)",
                    prefix, len(usable), len(skipped), skipped[:3])
    return len(usable)


def load_checkpoint(model, prefix):
    """``model.load(prefix)`` (hapi), but the files are read without running code in them.

    Loads ``<prefix>.pdparams`` into the network and, when present, ``<prefix>.pdopt`` into
    the optimizer (moments, LR scheduler state).
    """
    model.network.set_state_dict(load_numpy(f"{prefix}.pdparams"))
    optimizer_path = f"{prefix}.pdopt"
    if getattr(model, '_optimizer', None) is not None and os.path.isfile(optimizer_path):
        model._optimizer.set_state_dict(load_numpy(optimizer_path))


def _read_states(prefix):
    path = f"{prefix}.pdstates"
    if not os.path.isfile(path):
        return {'epoch': 0, 'best_top1': 0.0}
    with open(path) as f:
        return json.load(f)


class ClsCheckpoint(paddle.callbacks.ModelCheckpoint):
    """PaddleClas's save / eval schedule on hapi's checkpoint callback.

    Args:
        save_dir: ``<output_dir>/<Arch.name>``.
        save_interval: ``Global.save_interval`` (epochs).
        eval_loader: Eval DataLoader, or None (``Global.eval_during_train: False``).
        eval_interval: ``Global.eval_interval`` (epochs).
        train_loader: Its sampler is re-seeded with the global epoch every epoch.
        start_epoch: Epochs done before this run (resume); names continue from it.
        prune_callback: Its pruner state is saved beside every checkpoint.
        best_top1: Best eval top-1 so far (resume).
    """

    def __init__(self, save_dir, save_interval, eval_loader, eval_interval, train_loader,
                 start_epoch=0, prune_callback=None, best_top1=0.0):
        super().__init__(save_freq=max(1, save_interval), save_dir=save_dir)
        self.save_interval = save_interval  # <= 0: no epoch_<n> checkpoints (as PaddleClas)
        self.eval_loader = eval_loader
        self.eval_interval = eval_interval
        self.train_loader = train_loader
        self.start_epoch = start_epoch
        self.prune_callback = prune_callback
        self.best_top1 = best_top1
        self.last_eval = {}
        self.last_eval_epoch = None

    def on_epoch_begin(self, epoch=None, logs=None):
        super().on_epoch_begin(epoch, logs)
        sampler = getattr(self.train_loader, 'batch_sampler', None)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(self.start_epoch + epoch)
        optimizer = getattr(self.model, '_optimizer', None)
        if optimizer is not None and is_rank0():
            schedule = optimizer._learning_rate
            logger.info("[Train][Epoch %d] lr(%s): %.8f", self.start_epoch + epoch + 1,
                        type(schedule).__name__, optimizer.get_lr())

    def _save(self, name, global_epoch):
        if not self._is_save():
            return
        prefix = os.path.join(self.save_dir, name)
        self.model.save(prefix)
        with open(f"{prefix}.pdstates", 'w') as f:
            json.dump({'epoch': global_epoch, 'best_top1': self.best_top1}, f)
        if self.prune_callback is not None:
            save_pruner_state(self.prune_callback.pruner, prefix)

    def on_epoch_end(self, epoch, logs=None):
        global_epoch = self.start_epoch + epoch + 1
        is_best = False
        if self.eval_loader is not None and global_epoch % self.eval_interval == 0:
            self.last_eval = evaluate(self.model, self.eval_loader)
            self.last_eval_epoch = global_epoch
            top1 = self.last_eval.get('top1', 0.0)
            is_best = top1 > self.best_top1
            self.best_top1 = max(self.best_top1, top1)
            if is_rank0():
                logger.info("[Eval][Epoch %d] top1: %.5f, top5: %.5f, best top1: %.5f, "
                            "total_sparse: %.4f, total_sparse_conv1x1: %.4f", global_epoch,
                            top1, self.last_eval.get('top5', 0.0), self.best_top1,
                            total_sparse(self.model.network),
                            total_sparse_conv1x1(self.model.network))
        if self.save_interval > 0 and global_epoch % self.save_interval == 0:
            self._save(f"epoch_{global_epoch}", global_epoch)
        if is_best:
            self._save('best_model', global_epoch)
        self._save('latest', global_epoch)

    def on_train_end(self, logs=None):
        """No extra ``final`` checkpoint: ``latest`` is the last epoch."""


def evaluate(model, eval_loader):
    """``{'top1', 'top5', 'loss'}`` of a prepared ``paddle.Model`` on ``eval_loader`` (all ranks).
    """
    result = model.evaluate(eval_loader, verbose=0)
    out = {}
    for key, value in result.items():
        value = float(np.mean(value))
        out[{'acc_top1': 'top1', 'acc_top5': 'top5', 'acc': 'top1'}.get(key, key)] = value
    return out


def _mixes_batches(cfg):
    return bool(cfg['DataLoader']['Train']['dataset'].get('batch_transform_ops'))


def prepare_model(cfg, network, steps_per_epoch, train=True):
    """A ``paddle.Model`` prepared with the config's optimizer, loss, metrics and AMP.

    AMP follows PaddleClas's Engine (:func:`~.config.amp_settings`): an ``AMP`` section
    with ``use_amp: False`` trains in fp32. The optimizer's schedule is on ``model.lr_by_epoch``
    (True: step it once per epoch).
    """
    shape = cfg['Global']['image_shape']
    labels = None if train and _mixes_batches(cfg) else [InputSpec([None, 1], 'int64', 'label')]
    model = paddle.Model(network, inputs=[InputSpec([None] + shape, 'float32', 'image')],
                         labels=labels)
    amp_configs = amp_settings(cfg) if train else None
    optimizer, model.lr_by_epoch = None, False
    if train:
        updates = -(-steps_per_epoch // cfg['Global']['update_freq'])
        optimizer, _, model.lr_by_epoch = build_optimizer(
            cfg['Optimizer'], network, cfg['Global']['epochs'], updates,
            multi_precision=bool(amp_configs and amp_configs['level'] == 'O2'))
    loss_items = cfg['Loss'].get('Train' if train else 'Eval') or cfg['Loss'].get('Train')
    model.prepare(optimizer=optimizer, loss=build_loss(loss_items),
                  metrics=build_metrics(cfg['Metric'].get('Eval')), amp_configs=amp_configs)
    return model


def train(cfg, spec, output_dir=None):
    """Train ``cfg`` (sparse when ``spec`` is a PruneSpec); return the final figures.

    Args:
        cfg: A validated config.
        spec: PruneSpec or None (dense).
        output_dir: Checkpoint folder (default ``<Global.output_dir>/<Arch.name>``).

    Returns:
        ``{'top1', 'top5', 'best_top1', 'total_sparse', 'total_sparse_conv1x1', 'output_dir',
        'pruner'}``.
    """
    glob = cfg['Global']
    output_dir = output_dir or os.path.join(glob['output_dir'], cfg['Arch']['name'])
    train_section = cfg['DataLoader']['Train']
    train_loader = build_dataloader(train_section, cfg['Arch'].get('class_num'),
                                    'DataLoader.Train')
    steps = check_steps_per_epoch(len(train_loader), len(train_loader.dataset),
                                  train_section['sampler']['batch_size'],
                                  key='DataLoader.Train.sampler.batch_size')
    eval_loader = build_dataloader(cfg['DataLoader']['Eval'], key='DataLoader.Eval')
    network = build_network(cfg)
    model = prepare_model(cfg, network, steps)
    if is_rank0():
        if cfg.get('EMA'):
            logger.warning("EMA: the plugin's trainer keeps no EMA copy (PaddleClas's Engine "
                           "does: run at the root of a clone): training without it")
        amp = amp_settings(cfg)
        logger.info("mixed precision: %s", f"AMP {amp['level']}" if amp else
                    "off (fp32" + (", AMP.use_amp is false)" if cfg.get('AMP') else ")"))
    resume = glob.get('checkpoints')
    states = {'epoch': 0, 'best_top1': 0.0}
    if resume:
        load_checkpoint(model, resume)
        states = _read_states(resume)
        if is_rank0():
            logger.info("resumed from %s (epoch %d)", resume, states['epoch'])
    prune_cb = None
    callbacks = []
    if spec is not None:
        prune_cb = PruneCallback(spec, resume_from=resume or None)
        callbacks.append(prune_cb)
    checkpoint = ClsCheckpoint(output_dir, glob['save_interval'],
                               eval_loader if glob['eval_during_train'] else None,
                               glob['eval_interval'], train_loader, states['epoch'], prune_cb,
                               states.get('best_top1', 0.0))
    callbacks.append(checkpoint)
    if glob.get('use_visualdl'):
        callbacks.append(paddle.callbacks.VisualDL(log_dir=os.path.join(output_dir, 'vdl')))
    if model.lr_by_epoch:
        callbacks.append(paddle.callbacks.LRScheduler(by_step=False, by_epoch=True))
    remaining = glob['epochs'] - states['epoch']
    if remaining > 0:
        model.fit(train_loader, epochs=remaining, log_freq=glob['print_batch_step'], verbose=2,
                  callbacks=callbacks, accumulate_grad_batches=glob['update_freq'])
    final = checkpoint.last_eval
    if checkpoint.last_eval_epoch != glob['epochs']:
        final = evaluate(model, eval_loader)  # the last epoch was not an eval epoch
    return {'top1': final.get('top1'), 'top5': final.get('top5'),
            'best_top1': checkpoint.best_top1, 'total_sparse': total_sparse(network),
            'total_sparse_conv1x1': total_sparse_conv1x1(network), 'output_dir': output_dir,
            'pruner': prune_cb.pruner if prune_cb else None}
