"""A small portrait-style segmentation dataset in PaddleSeg's file-list layout.

Each image is a noisy background with one "person" (a head ellipse over a torso ellipse) in a
colour of its own; its label is a PNG with 1 on the person and 0 elsewhere. The layout is the
one ``paddleseg.datasets.Dataset`` reads::

    <root>/images/train_0000.jpg   <root>/labels/train_0000.png
    <root>/train.txt               # "images/train_0000.jpg labels/train_0000.png" per line
    <root>/val.txt

The same seed gives the same files on every machine. The folder is written next to its final
place and renamed into it, so concurrent first uses (e.g. two training processes) are safe.

Example:
    >>> root = ensure_portrait_dataset()          # <data_root()>/ppseg_portrait
"""
import os
import shutil
import tempfile

import cv2
import numpy as np

from . import data_root

DEMO_NAME = 'ppseg_portrait'
NUM_CLASSES = 2
FILE_LISTS = ('train.txt', 'val.txt')


def default_root():
    """Where the demo dataset lives: ``<data_root()>/ppseg_portrait``."""
    return os.path.join(data_root(), DEMO_NAME)


def is_complete(root):
    """True when both file lists exist and every file they name is on disk."""
    for list_name in FILE_LISTS:
        path = os.path.join(root, list_name)
        if not os.path.isfile(path):
            return False
        with open(path) as f:
            for line in f:
                if not all(os.path.isfile(os.path.join(root, p)) for p in line.split()):
                    return False
    return True


def draw_portrait(rng, size):
    """One image (HxWx3 uint8, BGR) and its label (HxW uint8 in {0, 1}).

    Args:
        rng: A ``numpy.random.RandomState``.
        size: Side of the square image in pixels.

    Returns:
        (image, label)
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    top, bottom = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    image = top[None, None, :] * (1 - ys[..., None]) + bottom[None, None, :] * ys[..., None]
    image += rng.normal(0, 12, image.shape)
    for _ in range(rng.randint(1, 4)):  # background clutter the model must learn to ignore
        corner = rng.uniform(0, size, 2).astype(int)
        extent = rng.uniform(0.08, 0.25, 2) * size
        cv2.rectangle(image, (int(corner[0]), int(corner[1])),
                      (int(corner[0] + extent[0]), int(corner[1] + extent[1])),
                      [float(c) for c in rng.uniform(0, 255, 3)], -1)
    label = np.zeros((size, size), np.uint8)
    center_x = rng.uniform(0.3, 0.7) * size
    head_y = rng.uniform(0.2, 0.4) * size
    head_r = rng.uniform(0.09, 0.15) * size
    cv2.ellipse(label, (int(center_x), int(head_y)), (int(head_r), int(head_r * 1.25)), 0, 0, 360,
                1, -1)
    torso_w = head_r * rng.uniform(1.6, 2.4)
    torso_top = head_y + head_r * 1.1
    cv2.ellipse(label, (int(center_x), int(torso_top + size * 0.45)),
                (int(torso_w), int(size * 0.45)), 0, 0, 360, 1, -1)
    person = np.array([rng.uniform(0, 255) for _ in range(3)], np.float32)
    # keep the person visibly different from the background under it
    if np.abs(person - image[label > 0].mean(axis=0)).max() < 60:
        person = 255 - person
    texture = rng.normal(0, 10, image.shape)
    image = np.where(label[..., None] > 0, person[None, None, :] + texture, image)
    return np.clip(image, 0, 255).astype(np.uint8), label


def _write_split(root, split, count, size, rng):
    lines = []
    for i in range(count):
        image, label = draw_portrait(rng, size)
        image_rel = f"images/{split}_{i:04d}.jpg"
        label_rel = f"labels/{split}_{i:04d}.png"
        cv2.imwrite(os.path.join(root, image_rel), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(os.path.join(root, label_rel), label)
        lines.append(f"{image_rel} {label_rel}\n")
    with open(os.path.join(root, f"{split}.txt"), 'w') as f:
        f.writelines(lines)


def ensure_portrait_dataset(root=None, num_train=64, num_val=16, size=64, seed=0):
    """Generate the dataset under ``root`` unless it is already there.

    Args:
        root: Target folder; default :func:`default_root`.
        num_train: Training images.
        num_val: Validation images.
        size: Image side in pixels.
        seed: Seed of the generator (same seed, same files).

    Returns:
        The absolute path of the dataset folder.
    """
    root = os.path.abspath(root or default_root())
    if is_complete(root):
        return root
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}-", dir=parent)
    try:
        os.makedirs(os.path.join(staging, 'images'))
        os.makedirs(os.path.join(staging, 'labels'))
        rng = np.random.RandomState(seed)
        _write_split(staging, 'train', num_train, size, rng)
        _write_split(staging, 'val', num_val, size, rng)
        if os.path.isdir(root) and not is_complete(root):
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.rename(staging, root)
        except OSError:
            if not is_complete(root):  # another process won the race and is not done: retry
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root
