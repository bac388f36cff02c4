"""Small detection datasets for the PaddleDetection demos, in VOC and COCO format.

Each image is a noisy gray background with a few coloured shapes; every shape is one object
with its box and class. The files are written deterministically (fixed seeds) on first use,
so the same command gives the same data on any machine. A dataset is written into a staging
folder and renamed into place when complete, so concurrent first uses (the ranks of a
two-process launch, parallel test workers) never read a half-written one::

    >>> from prune_plugin.demo_data.ppdet_data import ensure_dataset
    >>> root = ensure_dataset('ppdet_voc_shapes')   # <data_root()>/ppdet_voc_shapes

Layouts are the ones ppdet's own readers expect:

* ``ppdet_voc_shapes/``: ``JPEGImages/*.jpg``, ``Annotations/*.xml``, ``trainval.txt`` and
  ``test.txt`` (``image xml`` per line), ``label_list.txt`` -> ``VOCDataSet``.
* ``ppdet_coco_shapes/``: ``train/``, ``val/``, ``annotations/instances_{train,val}.json``
  -> ``COCODataSet``.
"""
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image, ImageDraw

from . import data_root

CLASSES = ('red_box', 'green_ellipse', 'blue_box')
_COLORS = {'red_box': (220, 40, 40), 'green_ellipse': (40, 200, 60), 'blue_box': (50, 70, 230)}
IMAGE_SIZE = 128
SPLITS = {'train': (48, 0), 'val': (16, 1000)}   # images, seed offset
DATASETS = ('ppdet_voc_shapes', 'ppdet_coco_shapes')
_DONE_FILE = '.complete'


def draw_sample(rng, size=IMAGE_SIZE, max_objects=3):
    """One image with 1..``max_objects`` non-overlapping shapes.

    Args:
        rng: ``numpy.random.RandomState``.
        size: Image side in pixels.
        max_objects: Most shapes per image.

    Returns:
        ``(PIL.Image, [(class_name, (x1, y1, x2, y2)), ...])`` with boxes in pixels.
    """
    noise = rng.randint(90, 150, size=(size, size, 1)).astype(np.uint8)
    image = Image.fromarray(np.repeat(noise, 3, axis=2))
    draw = ImageDraw.Draw(image)
    objects = []
    for _ in range(rng.randint(1, max_objects + 1)):
        for _attempt in range(20):
            w, h = rng.randint(size // 5, size // 2, size=2)
            x1, y1 = rng.randint(0, size - w), rng.randint(0, size - h)
            box = (int(x1), int(y1), int(x1 + w), int(y1 + h))
            if all(_iou(box, other) == 0 for _, other in objects):
                break
        else:
            continue
        name = CLASSES[rng.randint(len(CLASSES))]
        if name == 'green_ellipse':
            draw.ellipse(box, fill=_COLORS[name])
        else:
            draw.rectangle(box, fill=_COLORS[name])
        objects.append((name, box))
    return image, objects


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy


def _samples(split):
    count, seed = SPLITS[split]
    rng = np.random.RandomState(seed + 17)
    for index in range(count):
        image, objects = draw_sample(rng)
        yield f"{split}_{index:04d}", image, objects


def _voc_xml(name, objects, size):
    root = ET.Element('annotation')
    ET.SubElement(root, 'filename').text = f"{name}.jpg"
    size_node = ET.SubElement(root, 'size')
    for key, value in (('width', size), ('height', size), ('depth', 3)):
        ET.SubElement(size_node, key).text = str(value)
    for class_name, (x1, y1, x2, y2) in objects:
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = class_name
        ET.SubElement(obj, 'difficult').text = '0'
        bndbox = ET.SubElement(obj, 'bndbox')
        for key, value in (('xmin', x1), ('ymin', y1), ('xmax', x2), ('ymax', y2)):
            ET.SubElement(bndbox, key).text = str(value)
    return ET.ElementTree(root)


def write_voc(folder):
    """Write the VOC-format dataset into ``folder`` (trainval.txt = train, test.txt = val)."""
    for sub in ('JPEGImages', 'Annotations'):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    for split, list_name in (('train', 'trainval.txt'), ('val', 'test.txt')):
        lines = []
        for name, image, objects in _samples(split):
            image.save(os.path.join(folder, 'JPEGImages', f"{name}.jpg"), quality=95)
            _voc_xml(name, objects, image.size[0]).write(
                os.path.join(folder, 'Annotations', f"{name}.xml"))
            lines.append(f"JPEGImages/{name}.jpg Annotations/{name}.xml\n")
        with open(os.path.join(folder, list_name), 'w') as f:
            f.writelines(lines)
    with open(os.path.join(folder, 'label_list.txt'), 'w') as f:
        f.writelines(f"{c}\n" for c in CLASSES)


def write_coco(folder):
    """Write the COCO-format dataset into ``folder`` (``train/``, ``val/``, ``annotations/``)."""
    os.makedirs(os.path.join(folder, 'annotations'), exist_ok=True)
    categories = [{'id': i + 1, 'name': c, 'supercategory': 'shape'} for i, c in enumerate(CLASSES)]
    for split in SPLITS:
        os.makedirs(os.path.join(folder, split), exist_ok=True)
        images, annotations = [], []
        for index, (name, image, objects) in enumerate(_samples(split)):
            image.save(os.path.join(folder, split, f"{name}.jpg"), quality=95)
            images.append({'id': index + 1, 'file_name': f"{name}.jpg",
                           'width': image.size[0], 'height': image.size[1]})
            for class_name, (x1, y1, x2, y2) in objects:
                annotations.append({
                    'id': len(annotations) + 1, 'image_id': index + 1,
                    'category_id': CLASSES.index(class_name) + 1,
                    'bbox': [x1, y1, x2 - x1, y2 - y1], 'area': (x2 - x1) * (y2 - y1),
                    'iscrowd': 0})
        with open(os.path.join(folder, 'annotations', f"instances_{split}.json"), 'w') as f:
            json.dump({'images': images, 'annotations': annotations,
                       'categories': categories}, f)


_WRITERS = {'ppdet_voc_shapes': write_voc, 'ppdet_coco_shapes': write_coco}


def ensure_dataset(name, root=None):
    """Generate dataset ``name`` under ``root`` unless it is already complete.

    Args:
        name: One of :data:`DATASETS`.
        root: Parent folder; defaults to :func:`prune_plugin.demo_data.data_root`.

    Returns:
        The dataset folder.

    Raises:
        KeyError: ``name`` is not a demo dataset.
    """
    if name not in _WRITERS:
        raise KeyError(f"{name!r} is not a demo dataset; known: {list(DATASETS)}")
    folder = os.path.join(root or data_root(), name)
    if not os.path.exists(os.path.join(folder, _DONE_FILE)):
        _write_complete(folder, _WRITERS[name])
    return folder


def _write_complete(folder, writer):
    """``writer(staging)``, then the staging folder renamed to ``folder`` with its done mark; a
    leftover incomplete ``folder`` is replaced, a complete one written meanwhile by another
    process is kept (the data are deterministic: both are the same)."""
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}-", dir=parent)
    try:
        writer(staging)
        with open(os.path.join(staging, _DONE_FILE), 'w') as f:
            f.write('ok\n')
        if os.path.isdir(folder) and not os.path.exists(os.path.join(folder, _DONE_FILE)):
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.rename(staging, folder)
        except OSError:
            if not os.path.exists(os.path.join(folder, _DONE_FILE)):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_clone_layout(clone_root, kind):
    """Write the demo data where a PaddleDetection clone's stock configs look for their data.

    ``configs/datasets/coco_detection.yml`` reads ``dataset/coco/{train2017,val2017}`` and
    ``annotations/instances_{train,val}2017.json``; ``configs/datasets/voc.yml`` reads
    ``dataset/voc/{trainval.txt,test.txt,label_list.txt}`` with ``image xml`` lines relative to
    ``dataset/voc``. The generated shapes (3 classes) are written there, so a stock config
    trains on them with its 80 / 20 classes (the extra classes simply never occur).

    Args:
        clone_root: The clone (or any working folder the configs are run from).
        kind: ``'coco'`` or ``'voc'``.

    Returns:
        The dataset folder (``<clone_root>/dataset/coco`` or ``.../voc``).
    """
    if kind not in ('coco', 'voc'):
        raise KeyError(f"{kind!r}: expected 'coco' or 'voc'")
    folder = os.path.join(clone_root, 'dataset', kind)
    if not os.path.exists(os.path.join(folder, _DONE_FILE)):
        _write_complete(folder, write_voc if kind == 'voc' else _write_coco_2017)
    return folder


def _write_coco_2017(folder):
    """The COCO dataset under the 2017 names the stock configs read."""
    write_coco(folder)
    for split in SPLITS:
        os.replace(os.path.join(folder, split), os.path.join(folder, f"{split}2017"))
        os.replace(os.path.join(folder, 'annotations', f"instances_{split}.json"),
                   os.path.join(folder, 'annotations', f"instances_{split}2017.json"))
