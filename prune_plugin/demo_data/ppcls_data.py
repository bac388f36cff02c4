"""Classification data in PaddleClas's ImageNet list format, generated on first use.

Two sources, same on-disk layout (what ``ImageNetDataset`` in a PaddleClas config reads)::

    <root>/<name>/train/00000.png ...      images
    <root>/<name>/val/00000.png ...
    <root>/<name>/train_list.txt           "train/00000.png 3" per line
    <root>/<name>/val_list.txt
    <root>/<name>/label_list.txt           "0 0" ... "9 9"

* ``digits``: scikit-learn's bundled handwritten digits (1,797 real 8x8 scans, no download),
  upsampled to 32x32 grey PNGs, with a fixed stratified split (70% train / 30% val, seed 0).
* ``mnist``: MNIST through ``paddle.vision.datasets.MNIST`` (downloads when online), as 28x28 PNGs.

:func:`write_imagenet_list` writes a small subset of the digits, at any size and in colour, in
the layout a PaddleClas clone's ImageNet configs read (``dataset/ILSVRC2012/train_list.txt``
with paths relative to ``dataset/ILSVRC2012/``), for trying a clone's own configs::

    python -c "from prune_plugin.demo_data.ppcls_data import write_imagenet_list; \
               write_imagenet_list('dataset/ILSVRC2012')"
"""
import os

import numpy as np

from . import data_root

DIGITS_NAME = 'digits'
MNIST_NAME = 'mnist'
DIGITS_SIZE = 32
DIGITS_VAL_FRACTION = 0.3
SPLIT_SEED = 0
_DONE_MARK = '.complete'


def dataset_dir(name, root=None):
    """Folder of dataset ``name`` under ``root`` (default: ``data_root()``)."""
    return os.path.join(root or data_root(), name)


def _is_complete(folder):
    return os.path.isfile(os.path.join(folder, _DONE_MARK))


def _write_split(folder, split, images, labels):
    from PIL import Image

    os.makedirs(os.path.join(folder, split), exist_ok=True)
    lines = []
    for index, (image, label) in enumerate(zip(images, labels)):
        relative = f"{split}/{index:05d}.png"
        Image.fromarray(image).save(os.path.join(folder, relative))
        lines.append(f"{relative} {int(label)}\n")
    with open(os.path.join(folder, f"{split}_list.txt"), 'w') as f:
        f.writelines(lines)


def _write_dataset(folder, splits, class_count):
    """Write all splits into a temporary folder, then move it in place (no half-written data)."""
    tmp = f"{folder}.tmp{os.getpid()}"
    for split, (images, labels) in splits.items():
        _write_split(tmp, split, images, labels)
    with open(os.path.join(tmp, 'label_list.txt'), 'w') as f:
        f.writelines(f"{i} {i}\n" for i in range(class_count))
    open(os.path.join(tmp, _DONE_MARK), 'w').close()
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished first
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def stratified_split(labels, val_fraction, seed=SPLIT_SEED):
    """Indices ``(train, val)``: ``val_fraction`` of every class goes to val, fixed by ``seed``.

    Args:
        labels: 1-D int array.
        val_fraction: Fraction of each class for validation, in (0, 1).
        seed: RandomState seed; the same seed gives the same split.

    Returns:
        Two sorted int arrays.
    """
    rng = np.random.RandomState(seed)
    train, val = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        n_val = int(round(len(members) * val_fraction))
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return np.sort(np.array(train)), np.sort(np.array(val))


def digits_images(size=DIGITS_SIZE):
    """scikit-learn's digits as ``uint8`` images ``[N, size, size]`` and int labels ``[N]``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    images = np.stack([np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))
                       for img in small])
    return images, digits.target.astype(np.int64)


def ensure_digits(root=None):
    """Write the digits dataset in list format once; return its folder.

    Args:
        root: Parent folder (default ``$PRUNE_PLUGIN_DATA`` or ``<repo>/data``).

    Returns:
        The dataset folder (``<root>/digits``).
    """
    folder = dataset_dir(DIGITS_NAME, root)
    if _is_complete(folder):
        return folder
    images, labels = digits_images()
    train, val = stratified_split(labels, DIGITS_VAL_FRACTION)
    return _write_dataset(folder, {'train': (images[train], labels[train]),
                                   'val': (images[val], labels[val])}, 10)


def ensure_mnist(root=None):
    """Download MNIST through Paddle's dataset code (network, once); write it in list format.

    Returns:
        The dataset folder (``<root>/mnist``).

    Raises:
        RuntimeError: MNIST is not cached and cannot be downloaded.
    """
    folder = dataset_dir(MNIST_NAME, root)
    if _is_complete(folder):
        return folder
    from paddle.vision.datasets import MNIST

    splits = {}
    for split, mode in (('train', 'train'), ('val', 'test')):
        try:
            data = MNIST(mode=mode, backend='cv2')
        except Exception as err:  # network errors come in many types
            raise RuntimeError(f"MNIST could not be downloaded ({err}); it needs network access "
                               "once. Offline, use the bundled digits data instead") from err
        images = np.stack([np.asarray(img, dtype=np.uint8).reshape(28, 28)
                           for img in data.images])
        splits[split] = (images, np.asarray(data.labels, dtype=np.int64).reshape(-1))
    return _write_dataset(folder, splits, 10)


def write_imagenet_list(folder, train_per_class=8, val_per_class=4, size=64, class_count=10):
    """Write a few digits per class as RGB PNGs in ILSVRC2012's list layout.

    Args:
        folder: Where ``train_list.txt`` / ``val_list.txt`` and ``train/`` / ``val/`` go
            (e.g. ``<clone>/dataset/ILSVRC2012``); an existing complete copy is kept.
        train_per_class, val_per_class: Images per class in each split (the first ones of the
            fixed stratified split, so the same call always writes the same files).
        size: Side in pixels (stock configs crop 224 from any size).
        class_count: Classes 0..class_count-1 (at most 10).

    Returns:
        ``folder``.

    Raises:
        ValueError: ``class_count`` outside 1..10 or a count < 1.
    """
    if not 1 <= int(class_count) <= 10 or min(train_per_class, val_per_class, size) < 1:
        raise ValueError(f"class_count must be in 1..10 and counts/size >= 1, got "
                         f"{class_count}, {train_per_class}, {val_per_class}, {size}")
    folder = os.path.abspath(folder)
    if _is_complete(folder):
        return folder
    images, labels = digits_images(size)
    train, val = stratified_split(labels, DIGITS_VAL_FRACTION)
    splits = {}
    for split, indices, per_class in (('train', train, train_per_class),
                                      ('val', val, val_per_class)):
        chosen = np.concatenate([indices[labels[indices] == c][:per_class]
                                 for c in range(class_count)])
        rgb = np.repeat(images[chosen][..., None], 3, axis=-1)
        splits[split] = (rgb, labels[chosen])
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    return _write_dataset(folder, splits, class_count)


GENERATORS = {DIGITS_NAME: ensure_digits, MNIST_NAME: ensure_mnist}


def ensure_dataset_for(path):
    """Generate the demo dataset a config path points into, if it is one and is missing.

    A path is a demo dataset's when it is a folder named like one (``.../digits``) or a file
    directly in such a folder (``.../digits/train_list.txt``); the data is written there, so
    ``./data/digits/...`` in a config works from any working directory.

    Args:
        path: A path from a config (``image_root`` or ``cls_label_path``).

    Returns:
        True when ``path`` belongs to a demo dataset (now generated), else False.
    """
    target = os.path.abspath(path)
    for folder in (target, os.path.dirname(target)):
        generate = GENERATORS.get(os.path.basename(folder))
        if generate is not None:
            generate(os.path.dirname(folder))
            return True
    return False
