"""PaddleClas ``DataLoader`` sections on ``paddle.io``: ``ImageNetDataset`` in list format.

A list file has one ``relative/path.jpg label`` per line, paths relative to ``image_root``
(ILSVRC2012's ``train_list.txt`` / ``val_list.txt`` layout). ``transform_ops`` are PaddleClas's
operators, by name and arguments (:mod:`.ops`, :mod:`.autoaugment`);
``batch_transform_ops`` its batch operators (:mod:`.batch_ops`: Mixup, Cutmix, OpSampler).
As in PaddleClas, images come out CHW (transposed at the end unless ``ToCHWImage`` already did).
"""
import logging
import os

import numpy as np
import paddle

from ...core.errors import PruneConfigError
from ...demo_data.ppcls_data import ensure_dataset_for
from .autoaugment import policy_operators
from .batch_ops import MixCollate, build_batch_operator
from .engine_check import check_arguments
from .ops import basic_operators

logger = logging.getLogger('prune_plugin')
TRANSFORM_OPERATORS = {**basic_operators(), **policy_operators()}
SAMPLERS = ('DistributedBatchSampler', 'BatchSampler')


def build_transforms(items, key='transform_ops'):
    """PaddleClas's ``[{Name: {args}}, ...]`` -> operator objects, every name and argument checked.

    Raises:
        PruneConfigError: an operator the plugin's trainer does not have (the message lists
            what it has; a clone's Engine builds every operator), or a bad argument.
    """
    ops = []
    for i, item in enumerate(items or []):
        if not isinstance(item, dict) or len(item) != 1:
            raise PruneConfigError(f"{key}.{i}", item, "one {Name: {arguments}} mapping")
        (name, args), = item.items()
        cls = TRANSFORM_OPERATORS.get(name)
        if cls is None:
            raise PruneConfigError(f"{key}.{i}", name, (
                f"an operator of the plugin's trainer {sorted(TRANSFORM_OPERATORS)} (run at the "
                f"root of a PaddleClas clone, or with $PADDLECLAS_SRC, and the clone's Engine "
                f"builds every operator of ppcls.data.preprocess)"))
        check_arguments(cls, args, f"{key}.{i}.{name}")
        ops.append(cls(**(args or {})))
    return ops


class ImageNetDataset(paddle.io.Dataset):
    """Images and labels from a PaddleClas list file.

    Args:
        image_root: Folder the list's paths are relative to.
        cls_label_path: The list file (``path label`` per line).
        transform_ops: PaddleClas ``[{OpName: {args}}]`` list.

    Raises:
        PruneConfigError: the list file is missing (the demo datasets are generated instead).
    """

    def __init__(self, image_root, cls_label_path, transform_ops=None, delimiter=None,
                 relabel=False):
        super().__init__()
        if not os.path.isfile(cls_label_path):
            try:
                ensure_dataset_for(cls_label_path)
            except RuntimeError as err:  # MNIST offline
                raise PruneConfigError('dataset.cls_label_path', cls_label_path,
                                       f"an existing list file; generating it failed: {err}")
        if not os.path.isfile(cls_label_path):
            raise PruneConfigError(
                'dataset.cls_label_path', cls_label_path,
                "an existing list file (run `python tools/prepare_data.py digits` or `... mnist`, "
                "or point it at your ILSVRC2012 train_list.txt / val_list.txt)")
        self.image_root = image_root
        self.samples = []
        with open(cls_label_path) as f:
            for line in f:
                parts = line.strip().split(delimiter)
                if parts and parts[0]:
                    self.samples.append((os.path.join(image_root, parts[0]), int(parts[-1])))
        for line, (path, _) in enumerate(self.samples, 1):
            if not os.path.isfile(path):  # PaddleClas checks every image too
                raise PruneConfigError('dataset.cls_label_path', cls_label_path,
                                       f"a list of existing images (line {line}: {path} is "
                                       f"missing)")
        if relabel:
            mapping = {old: new for new, old in enumerate(sorted({lb for _, lb in self.samples}))}
            self.samples = [(path, mapping[label]) for path, label in self.samples]
        self.transform_ops = transform_ops or []
        self.ops = build_transforms(transform_ops, 'transform_ops')
        self.chw = False
        for item in transform_ops or []:
            (name, args), = item.items()
            self.chw = name == 'ToCHWImage' or (name == 'DecodeImage' and
                                                (args or {}).get('channel_first', False))
        self.labels = np.array([label for _, label in self.samples], dtype='int64')

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        img = path
        for i, op in enumerate(self.ops):
            try:
                img = op(img)
            except Exception as err:
                # paddle's DataLoader hangs on an exception in its reader thread: say it here
                logger.error("transform_ops.%d %s failed on %s: %s: %s", i,
                             type(op).__name__, path, type(err).__name__, err)
                raise
        if not self.chw:
            img = img.transpose((2, 0, 1))
        return np.ascontiguousarray(img, dtype='float32'), np.array([label], dtype='int64')

    def check_first_sample(self, key):
        """Run the operators on the first image in this thread (errors name the operator).

        Raises:
            PruneConfigError: an operator fails on the data (before any training).
        """
        if not self.samples:
            return
        img = self.samples[0][0]
        for i, op in enumerate(self.ops):
            try:
                img = op(img)
            except PruneConfigError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure is the config's, on this data
                (name, args), = self.transform_ops[i].items()
                raise PruneConfigError(f"{key}.transform_ops.{i}.{name}", args,
                                       f"arguments that work on {self.samples[0][0]} ("
                                       f"{type(err).__name__}: {err})") from None


def build_dataloader(section, class_num=None, key='DataLoader'):
    """A ``paddle.io.DataLoader`` from a PaddleClas ``DataLoader.Train`` / ``.Eval`` section.

    The batch sampler is ``paddle.io.DistributedBatchSampler``: with N processes each one
    reads its 1/N share of every epoch. Its shuffle is seeded by the epoch: call
    ``loader.batch_sampler.set_epoch(epoch)`` every epoch (the trainer does).

    Args:
        section: ``DataLoader.Train`` or ``DataLoader.Eval``.
        class_num: ``Arch.class_num`` (the batch operators' soft targets need it).
        key: ``DataLoader.Train`` / ``DataLoader.Eval``, for errors.

    Raises:
        PruneConfigError: a missing list or image, an operator that fails on the first image.
    """
    ds_cfg = dict(section['dataset'])
    ds_cfg.pop('name')
    batch_ops = ds_cfg.pop('batch_transform_ops', None)
    dataset = ImageNetDataset(**ds_cfg)
    dataset.check_first_sample(key)
    collate = MixCollate(build_batch_operator(batch_ops, class_num)) if batch_ops else None
    sampler_cfg = section.get('sampler') or {}
    sampler = paddle.io.DistributedBatchSampler(
        dataset, batch_size=sampler_cfg['batch_size'], shuffle=bool(sampler_cfg.get('shuffle')),
        drop_last=bool(sampler_cfg.get('drop_last', False)))
    loader_cfg = section.get('loader') or {}
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                num_workers=int(loader_cfg.get('num_workers', 0)),
                                use_shared_memory=bool(loader_cfg.get('use_shared_memory', False)))
