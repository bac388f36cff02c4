"""paddleseg 2.8 / 2.9 on Paddle 3: the evaluation metric, and what each version can do.

The paddleseg 2.8.0 wheel's ``metrics.calculate_area`` concatenates 0-d sums, which Paddle 3
rejects, so every evaluation (``prune-eval``, ``--do_eval``) fails; the release/2.8 and 2.9
branches stack them and work, and 2.9 adds a ``use_multilabel`` argument. Instead of deciding by
version number, :func:`install_metric_fixes` runs the loaded ``calculate_area`` once on a 2x2
input and replaces it only when it fails (``paddleseg.core.val`` looks it up as
``metrics.calculate_area`` at each call). The replacement, :func:`calculate_area`, takes the
2.9 signature and computes what both versions compute. The losses are
:mod:`~prune_plugin.adapters.ppseg.losses`.
"""
import inspect
import logging

import paddle
from paddleseg.core import evaluate
from paddleseg.utils import metrics as seg_metrics

logger = logging.getLogger('prune_plugin')


def calculate_area(pred, label, num_classes, ignore_index=255, use_multilabel=False):
    """paddleseg's ``metrics.calculate_area`` (2.9 semantics), safe on Paddle 3.

    Args:
        pred: Predicted class ids ``[N, H, W]`` / ``[N, 1, H, W]``; multilabel: ``[N, C, H, W]``
            of 0/1.
        label: Ground truth, same shape.
        num_classes: Number of classes.
        ignore_index: Label value that does not count (not multilabel).
        use_multilabel: Per-class 0/1 maps instead of class ids (paddleseg >= 2.9).

    Returns:
        (intersect_area, pred_area, label_area): int64 tensors of shape ``[num_classes]``.

    Raises:
        ValueError: ``pred`` and ``label`` shapes differ.
    """
    if use_multilabel:
        return ((pred * label).sum([0, 2, 3]).astype('int64'),
                pred.sum([0, 2, 3]).astype('int64'), label.sum([0, 2, 3]).astype('int64'))
    if len(pred.shape) == 4:
        pred = paddle.squeeze(pred, axis=1)
    if len(label.shape) == 4:
        label = paddle.squeeze(label, axis=1)
    if pred.shape != label.shape:
        raise ValueError(f"Shape of `pred` and `label` should be equal, but there are "
                         f"{pred.shape} and {label.shape}.")
    valid = label != ignore_index
    intersect, predicted, labelled = [], [], []
    for i in range(num_classes):
        pred_i = paddle.logical_and(pred == i, valid)
        label_i = label == i
        predicted.append(pred_i.astype('int64').sum().reshape([1]))
        labelled.append(label_i.astype('int64').sum().reshape([1]))
        intersect.append(paddle.logical_and(pred_i, label_i).astype('int64').sum().reshape([1]))
    return paddle.concat(intersect), paddle.concat(predicted), paddle.concat(labelled)


def metric_works(function):
    """True when ``function`` (a ``calculate_area``) runs on a 2x2 prediction."""
    pred = paddle.to_tensor([[[0, 1], [1, 1]]], dtype='int32')
    label = paddle.to_tensor([[[0, 1], [0, 255]]], dtype='int64')
    try:
        areas = function(pred, label, 2)
        return [a.numpy().tolist() for a in areas] == [[1, 1], [1, 2], [2, 1]]
    except Exception:  # noqa: BLE001 - any failure means: replace it
        return False


def install_metric_fixes():
    """Replace paddleseg's ``metrics.calculate_area`` when it fails on this Paddle.

    Returns:
        True when replaced (the paddleseg 2.8.0 wheel on Paddle 3), False when the loaded one
        works (paddleseg's release/2.8 and 2.9 branches, Paddle 2) or is ours already.
    """
    if seg_metrics.calculate_area is calculate_area or metric_works(seg_metrics.calculate_area):
        return False
    seg_metrics.calculate_area = calculate_area
    logger.debug("paddleseg metrics.calculate_area replaced (it fails on Paddle %s)",
                 paddle.__version__)
    return True


def evaluate_takes(argument):
    """True when this paddleseg's ``core.evaluate`` has ``argument`` (``use_multilabel``: 2.9)."""
    return argument in inspect.signature(evaluate).parameters
