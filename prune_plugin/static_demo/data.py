"""The demo's data: digits (offline, default), MNIST from local files, ImageNet from list files.

A :class:`Split` holds images in memory (digits, MNIST) or reads them per batch from a list file
(ImageNet); :func:`epoch_batches` gives one epoch's batches, the same on every run for the same
seed and epoch (a resumed run sees the batches the uninterrupted one saw) and sliced per rank.
"""
import os
from dataclasses import dataclass

import numpy as np

DATASETS = ('digits', 'mnist', 'imagenet')
MNIST_FILES = {'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
               'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')}
IMAGENET_LISTS = {'train': 'train_list.txt', 'val': 'val_list.txt'}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
DIGITS_TRAIN = 1437  # of 1,797: the fixed split of benchmarks/accuracy_data.py


@dataclass
class Split:
    """One split: ``images`` [N, C, H, W] float32 (or image paths), ``labels`` [N] int64."""
    images: object
    labels: np.ndarray
    root: str = None  # set for list-file splits: images are paths under it

    def __len__(self):
        return len(self.labels)

    def take(self, indices):
        """``(images, labels [n, 1])`` of ``indices``."""
        labels = self.labels[indices].reshape(-1, 1)
        if self.root is None:
            return self.images[indices], labels
        return np.stack([_imagenet_image(os.path.join(self.root, self.images[i]))
                         for i in indices]), labels


@dataclass
class Dataset:
    train: Split
    val: Split
    image_shape: tuple
    num_classes: int


def mnist_dir(data_dir):
    """The MNIST folder: ``data_dir`` or Paddle's download cache."""
    return data_dir or os.path.join(os.path.expanduser('~'), '.cache', 'paddle', 'dataset',
                                    'mnist')


def check_data_files(data, data_dir):
    """Raise the demo's input error when the files ``data`` needs are missing."""
    from .flags import DemoInputError
    if data == 'mnist':
        folder = mnist_dir(data_dir)
        missing = [f for pair in MNIST_FILES.values() for f in pair
                   if not os.path.isfile(os.path.join(folder, f))]
        if missing:
            raise DemoInputError(f"--data mnist needs {', '.join(missing)} in {folder} (pass "
                                 "--data_dir; nothing is downloaded)")
    elif data == 'imagenet':
        if data_dir is None:
            raise DemoInputError("--data imagenet needs --data_dir (a folder with "
                                 "train_list.txt and val_list.txt)")
        for name in IMAGENET_LISTS.values():
            if not os.path.isfile(os.path.join(data_dir, name)):
                raise DemoInputError(f"--data imagenet needs {name} in {data_dir}")


def load_digits_split(image_size=16):
    """scikit-learn's digits (offline), upsampled to ``image_size`` by pixel repetition, fixed
    1,437 / 360 split, normalized with the train split's mean and std; 1 channel."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.images))
    images = digits.images[order].astype(np.float32) / 16.0
    labels = digits.target[order].astype(np.int64)
    factor = image_size // 8
    images = np.kron(images, np.ones((factor, factor), np.float32))
    images = (images - images[:DIGITS_TRAIN].mean()) / images[:DIGITS_TRAIN].std()
    images = images[:, None]
    return Dataset(Split(images[:DIGITS_TRAIN], labels[:DIGITS_TRAIN]),
                   Split(images[DIGITS_TRAIN:], labels[DIGITS_TRAIN:]),
                   (1, image_size, image_size), 10)


def _mnist_split(folder, mode):
    from paddle.vision.datasets import MNIST
    images, labels = (os.path.join(folder, f) for f in MNIST_FILES[mode])
    data = MNIST(image_path=images, label_path=labels, mode=mode, download=False)
    x = np.asarray(data.images, np.float32).reshape(-1, 1, 28, 28)
    return Split((x - 127.5) / 127.5, np.asarray(data.labels, np.int64).reshape(-1))


def load_mnist(data_dir):
    """MNIST from the four local ``.gz`` files, normalized as the reference ((x - 127.5) / 127.5)."""
    folder = mnist_dir(data_dir)
    return Dataset(_mnist_split(folder, 'train'), _mnist_split(folder, 'test'), (1, 28, 28), 10)


def _read_list(data_dir, name):
    paths, labels = [], []
    with open(os.path.join(data_dir, name)) as lines:
        for line in lines:
            parts = line.split()
            if len(parts) >= 2:
                paths.append(parts[0])
                labels.append(int(parts[-1]))
    return Split(paths, np.asarray(labels, np.int64), root=data_dir)


def _imagenet_image(path, size=224, resize=256):
    from PIL import Image
    with Image.open(path) as image:
        image = image.convert('RGB')
        scale = resize / min(image.size)
        image = image.resize((max(size, round(image.size[0] * scale)),
                              max(size, round(image.size[1] * scale))), Image.BILINEAR)
        left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
        array = np.asarray(image.crop((left, top, left + size, top + size)), np.float32)
    return (array.transpose(2, 0, 1) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def load_imagenet(data_dir):
    """ImageNet from ``train_list.txt`` / ``val_list.txt`` (``relative/path.jpg label`` lines, as
    PaddleSlim's reader), read per batch; resize 256, center crop 224."""
    train, val = (_read_list(data_dir, IMAGENET_LISTS[m]) for m in ('train', 'val'))
    return Dataset(train, val, (3, 224, 224), int(max(train.labels.max(), val.labels.max())) + 1)


def load_dataset(args):
    """The :class:`Dataset` that ``args.data`` names."""
    if args.data == 'mnist':
        return load_mnist(args.data_dir)
    if args.data == 'imagenet':
        return load_imagenet(args.data_dir)
    return load_digits_split()


def steps_per_epoch(split, batch_size, world_size=1):
    """Full global batches per epoch (the last partial batch is dropped, as the reference)."""
    return len(split) // (batch_size * world_size)


def epoch_batches(split, batch_size, epoch, seed, rank=0, world_size=1):
    """Yield this rank's ``(images, labels)`` of every global batch of ``epoch``.

    The order is a permutation seeded by ``(seed, epoch)``: the same on every run and rank;
    rank r takes the r-th ``batch_size`` slice of each global batch of ``batch_size * world``.
    """
    order = np.random.RandomState([seed, epoch]).permutation(len(split))
    step = batch_size * world_size
    for start in range(0, steps_per_epoch(split, batch_size, world_size) * step, step):
        mine = order[start + rank * batch_size:start + (rank + 1) * batch_size]
        yield split.take(mine)


def eval_batches(split, batch_size):
    """Yield ``(images, labels)`` over the whole split in order (the last batch may be short)."""
    for start in range(0, len(split), batch_size):
        yield split.take(np.arange(start, min(start + batch_size, len(split))))
