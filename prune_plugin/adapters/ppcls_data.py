"""PaddleClas ``DataLoader`` sections on ``paddle.io``: ``ImageNetDataset`` in list format.

A list file has one ``relative/path.jpg label`` per line, paths relative to ``image_root``
(ILSVRC2012's ``train_list.txt`` / ``val_list.txt`` layout). ``transform_ops`` use PaddleClas's
names, implemented with ``paddle.vision.transforms`` (cv2 backend)::

    DecodeImage {to_rgb, channel_first}   ResizeImage {resize_short | size}
    RandCropImage {size, scale, ratio}    CropImage {size}
    RandFlipImage {flip_code: 1|0}        NormalizeImage {scale, mean, std, order}
    ToCHWImage

As in PaddleClas, images come out CHW (transposed at the end unless ``ToCHWImage`` already did).
"""
import os
from fractions import Fraction

import cv2
import numpy as np
import paddle
from paddle.vision import transforms as T

from ..core.errors import PruneConfigError
from ..demo_data.ppcls_data import ensure_dataset_for


def _number(key, value):
    """``1.0/255.0`` (PaddleClas writes the scale as an expression) or a plain number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            if '/' in value:
                num, den = value.split('/', 1)
                return float(Fraction(num.strip()) / Fraction(den.strip()))
            return float(value)
        except (ValueError, ZeroDivisionError):
            pass
    raise PruneConfigError(key, value, "a number or a fraction such as 1.0/255.0")


class DecodeImage:
    """Read an image file into an HWC uint8 array (RGB when ``to_rgb``)."""

    def __init__(self, to_rgb=True, channel_first=False):
        self.to_rgb = to_rgb
        self.channel_first = channel_first

    def __call__(self, path):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"cannot read image {path}")
        if self.to_rgb:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return img.transpose((2, 0, 1)) if self.channel_first else img


class ResizeShort:
    """Resize so the short side is ``size`` (PaddleClas ``ResizeImage: {resize_short: N}``)."""

    def __init__(self, size):
        self.size = int(size)

    def __call__(self, img):
        h, w = img.shape[:2]
        scale = self.size / min(h, w)
        return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))))


class NormalizeImage:
    """``(img * scale - mean) / std`` as float32 (``order: 'chw'`` for CHW input)."""

    def __init__(self, scale=1.0 / 255.0, mean=(0.485, 0.456, 0.406),
                 std=(0.229, 0.224, 0.225), order=''):
        self.scale = _number('NormalizeImage.scale', scale)
        shape = (-1, 1, 1) if order == 'chw' else (1, 1, -1)
        self.mean = np.array(mean, dtype='float32').reshape(shape)
        self.std = np.array(std, dtype='float32').reshape(shape)

    def __call__(self, img):
        return ((img.astype('float32') * self.scale - self.mean) / self.std).astype('float32')


class ToCHWImage:
    """HWC -> CHW."""

    def __call__(self, img):
        return img.transpose((2, 0, 1))


def _size(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (int(value), int(value))


def build_transform(name, args):
    """One PaddleClas transform op -> a callable on HWC numpy images."""
    if name == 'DecodeImage':
        return DecodeImage(**args)
    if name == 'ResizeImage':
        if 'resize_short' in args:
            return ResizeShort(args['resize_short'])
        return T.Resize(_size(args['size'])[::-1])
    if name == 'RandCropImage':
        return T.RandomResizedCrop(_size(args['size'])[::-1],
                                   scale=tuple(args.get('scale', (0.08, 1.0))),
                                   ratio=tuple(args.get('ratio', (3. / 4., 4. / 3.))))
    if name == 'CropImage':
        return T.CenterCrop(_size(args['size'])[::-1])
    if name == 'RandFlipImage':
        flip_code = args.get('flip_code', 1)
        return T.RandomHorizontalFlip() if flip_code == 1 else T.RandomVerticalFlip()
    if name == 'NormalizeImage':
        return NormalizeImage(**args)
    if name == 'ToCHWImage':
        return ToCHWImage()
    raise PruneConfigError('transform_ops', name, "a transform op listed in ppcls_data")


class ImageNetDataset(paddle.io.Dataset):
    """Images and labels from a PaddleClas list file.

    Args:
        image_root: Folder the list's paths are relative to.
        cls_label_path: The list file (``path label`` per line).
        transform_ops: PaddleClas ``[{OpName: {args}}]`` list.

    Raises:
        PruneConfigError: the list file is missing (the demo datasets are generated instead).
    """

    def __init__(self, image_root, cls_label_path, transform_ops=None):
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
                parts = line.strip().split()
                if parts:
                    self.samples.append((os.path.join(image_root, parts[0]), int(parts[-1])))
        self.ops = []
        self.chw = False
        for item in transform_ops or []:
            (name, args), = item.items()
            self.ops.append(build_transform(name, args or {}))
            self.chw = name == 'ToCHWImage' or (name == 'DecodeImage' and
                                                (args or {}).get('channel_first', False))
        self.labels = np.array([label for _, label in self.samples], dtype='int64')

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        img = path
        for op in self.ops:
            img = op(img)
        if not self.chw:
            img = img.transpose((2, 0, 1))
        return np.ascontiguousarray(img, dtype='float32'), np.array([label], dtype='int64')


def build_dataloader(section):
    """A ``paddle.io.DataLoader`` from a PaddleClas ``DataLoader.Train`` / ``.Eval`` section.

    The batch sampler is ``paddle.io.DistributedBatchSampler``: with N processes each one
    reads its 1/N share of every epoch. Its shuffle is seeded by the epoch: call
    ``loader.batch_sampler.set_epoch(epoch)`` every epoch (the trainer does).
    """
    ds_cfg = dict(section['dataset'])
    ds_cfg.pop('name')
    dataset = ImageNetDataset(**ds_cfg)
    sampler_cfg = section.get('sampler') or {}
    sampler = paddle.io.DistributedBatchSampler(
        dataset, batch_size=sampler_cfg['batch_size'], shuffle=bool(sampler_cfg.get('shuffle')),
        drop_last=bool(sampler_cfg.get('drop_last', False)))
    loader_cfg = section.get('loader') or {}
    return paddle.io.DataLoader(dataset, batch_sampler=sampler,
                                num_workers=int(loader_cfg.get('num_workers', 0)),
                                use_shared_memory=bool(loader_cfg.get('use_shared_memory', False)))
