"""Narrow fixes for ppdet 2.6 on Paddle 3, applied through ppdet's own registries.

PicoDet's assigners (ATSSAssigner, TaskAlignedAssigner) fail on Paddle 3 with a TypeError:
they mix an int64 ``argmax`` with ``arange(dtype=gt_labels.dtype)`` where ``PadGT`` made the
labels int32. :class:`PadGTInt64` is ``PadGT`` with int64 labels; :func:`use_int64_gt_class`
swaps it in for ``PadGT`` in a config's TrainReader. Nothing in site-packages is edited.

``Trainer.export`` needs a full-graph ``to_static`` (:func:`full_graph_to_static`).
"""
import contextlib
import functools

import numpy as np
import paddle
from ppdet.data import transform as ppdet_transforms
from ppdet.data.transform.batch_operators import PadGT


class PadGTInt64(PadGT):
    """``PadGT`` whose padded ``gt_class`` is int64, as the Paddle 3 assigners need."""

    def __call__(self, samples, context=None):
        samples = super().__call__(samples, context)
        for sample in samples:
            if 'gt_class' in sample:
                sample['gt_class'] = np.asarray(sample['gt_class']).astype(np.int64)
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


@contextlib.contextmanager
def full_graph_to_static(legacy_ir=True):
    """Within the block, ``paddle.jit.to_static`` defaults to ``full_graph=True`` (on the legacy IR).

    ppdet's ``Trainer.export`` reads ``static_model.forward.main_program``, which Paddle 3 only
    has for full-graph conversion (its default became the SOT mode, ``full_graph=False``), and
    ppdet's static ops (``multiclass_nms3`` via ``LayerHelper.append_op``) need the legacy
    program IR instead of PIR (``FLAGS_enable_pir_api``). Paddle 3's ``paddle.multiply`` /
    ``sigmoid`` take only PIR values, so PicoDet (ESNet / LCNet) fails there: it exports on PIR
    with ``legacy_ir=False`` when NMS is left out of the graph (``-o export.nms=False``).

    Args:
        legacy_ir: Switch to the legacy program IR inside the block (Paddle 3 only).
    """
    original = paddle.jit.to_static
    pir_flag = 'FLAGS_enable_pir_api'
    pir_before = paddle.get_flags([pir_flag]).get(pir_flag) \
        if legacy_ir and needs_int64_gt_class() else None

    @functools.wraps(original)
    def to_static(function=None, *args, **kwargs):
        kwargs.setdefault('full_graph', True)
        return original(function, *args, **kwargs)

    paddle.jit.to_static = to_static
    if pir_before:   # what paddle.pir_utils.OldIrGuard does, minus its switch to static mode
        from paddle.pir_utils import _switch_to_old_ir_
        paddle.set_flags({pir_flag: False})
        _switch_to_old_ir_()
    try:
        yield
    finally:
        paddle.jit.to_static = original
        if pir_before:
            from paddle.pir_utils import _switch_to_pir_
            paddle.set_flags({pir_flag: True})
            _switch_to_pir_()
