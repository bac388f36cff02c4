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
