"""Narrow fixes for ppdet 2.6 on Paddle 3, applied through ppdet's own registries.

PicoDet's assigners (ATSSAssigner, TaskAlignedAssigner) fail on Paddle 3 with a TypeError:
they mix an int64 ``argmax`` with ``arange(dtype=gt_labels.dtype)`` where ``PadGT`` made the
labels int32. :class:`PadGTInt64` is ``PadGT`` with int64 labels; :func:`use_int64_gt_class`
swaps it in for ``PadGT`` in a config's TrainReader. Nothing in site-packages is edited.
"""
import numpy as np
import paddle
from ppdet.data import transform as ppdet_transforms
from ppdet.data.transform.batch_operators import PadGT


class PadGTInt64(PadGT):
    """``PadGT`` whose ``pad_gt_class`` (and ``gt_class``) are int64, as Paddle 3 assigners need."""

    def __call__(self, samples, context=None):
        samples = super().__call__(samples, context)
        for sample in samples:
            for key in ('pad_gt_class', 'gt_class'):
                if key in sample:
                    sample[key] = np.asarray(sample[key]).astype(np.int64)
        return samples


def register_transforms():
    """Make ``PadGTInt64`` a name ppdet readers can build (idempotent)."""
    if getattr(ppdet_transforms, 'PadGTInt64', None) is not PadGTInt64:
        setattr(ppdet_transforms, 'PadGTInt64', PadGTInt64)


def needs_int64_gt_class():
    """True on Paddle 3 and later, where the assigners reject int32 labels."""
    major = paddle.__version__.split('.')[0]
    return not major.isdigit() or int(major) >= 3 or paddle.__version__.startswith('0.0.0')


def use_int64_gt_class(cfg, reader='TrainReader'):
    """Replace ``PadGT`` by ``PadGTInt64`` in ``cfg[reader]['batch_transforms']`` (in place).

    Args:
        cfg: The ppdet global config.
        reader: Which reader section to fix.

    Returns:
        True when a ``PadGT`` was replaced.
    """
    register_transforms()
    transforms = (cfg.get(reader) or {}).get('batch_transforms') or []
    replaced = False
    for index, entry in enumerate(transforms):
        if isinstance(entry, dict) and list(entry) == ['PadGT']:
            transforms[index] = {'PadGTInt64': entry['PadGT'] or {}}
            replaced = True
    return replaced
