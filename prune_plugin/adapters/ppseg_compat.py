"""paddleseg 2.8 on Paddle 3: the two incompatibilities that stop its training loop, handled here.

1. ``paddleseg.core.train`` logs ``l[0]`` of each loss value: a 0-d loss (what Paddle 3
   reductions return) fails at the first log line. Losses must have shape ``[1]``.
2. ``paddleseg.models.losses.CrossEntropyLoss`` multiplies a float32 mask by an int64 tensor,
   which Paddle 3.3 rejects.
3. ``paddleseg.utils.metrics.calculate_area`` (every evaluation, also ``--do_eval`` inside
   ``core.train``) concatenates 0-d sums, which Paddle 3 rejects.

:class:`Paddle3CrossEntropyLoss` is paddleseg's cross entropy with 1 and 2 fixed, registered in
paddleseg's ``manager.LOSSES``. :func:`use_compatible_losses` points ``CrossEntropyLoss`` entries
of a config at it (only under Paddle >= 3, only in configs run through prune_plugin), so configs
written for PaddleSeg work unchanged. For 3, ``paddleseg.core.val`` looks the function up as
``metrics.calculate_area`` at each call: :func:`install_metric_fixes` sets that attribute to
:func:`calculate_area` (same results, 1-D sums), under Paddle >= 3 only, when a prune_plugin tool
starts. No file of paddleseg is modified.
"""
import logging

import paddle
import paddle.nn.functional as F
from paddleseg.cvlibs import manager
from paddleseg.models.losses import CrossEntropyLoss
from paddleseg.utils import metrics as seg_metrics

logger = logging.getLogger('prune_plugin')

COMPATIBLE_LOSSES = {'CrossEntropyLoss': 'Paddle3CrossEntropyLoss'}


def paddle_major():
    """Major version of the installed Paddle (``0`` for a develop build)."""
    try:
        return int(paddle.__version__.split('.')[0])
    except ValueError:
        return 0


class Paddle3CrossEntropyLoss(CrossEntropyLoss):
    """paddleseg's ``CrossEntropyLoss`` (same arguments, same value) that runs on Paddle 3.

    Returns a ``[1]``-shaped loss and computes the pixel weights in float32.

    Args:
        weight: Per-class weights (length = number of classes) or None.
        ignore_index: Label value that does not count.
        top_k_percent_pixels: Average only the largest ``top_k_percent_pixels`` pixel losses.
        avg_non_ignore: Average over non-ignored pixels only.
        data_format: ``'NCHW'`` or ``'NHWC'``.
    """

    def _post_process_loss(self, logit, label, semantic_weights, loss):
        valid = label != self.ignore_index
        mask = valid.astype('float32') if self.avg_non_ignore else \
            paddle.ones(label.shape, dtype='float32')
        mask.stop_gradient = True
        if loss.ndim > mask.ndim:
            loss = paddle.squeeze(loss, axis=-1)
        loss = loss.astype('float32') * mask
        if semantic_weights is not None:
            loss = loss * semantic_weights
        if self.weight is not None:
            safe_label = paddle.where(valid, label, paddle.zeros_like(label))
            class_coef = paddle.sum(F.one_hot(safe_label, logit.shape[-1]) * self.weight, axis=-1)
        else:
            class_coef = paddle.ones(label.shape, dtype='float32')
        if self.top_k_percent_pixels == 1.0:
            avg = paddle.mean(loss) / (paddle.mean(mask * class_coef) + self.EPS)
        else:
            loss = loss.reshape((-1, ))
            top_k = int(self.top_k_percent_pixels * loss.numel())
            loss, indices = paddle.topk(loss, top_k)
            coef = paddle.gather(class_coef.reshape((-1, )), indices)
            coef.stop_gradient = True
            avg = loss.mean() / (paddle.mean(coef) + self.EPS)
        return avg.reshape([1])


if 'Paddle3CrossEntropyLoss' not in manager.LOSSES.components_dict:
    manager.LOSSES.add_component(Paddle3CrossEntropyLoss)


def calculate_area(pred, label, num_classes, ignore_index=255):
    """paddleseg's ``metrics.calculate_area`` with per-class sums stacked (Paddle 3 safe).

    Args:
        pred: Predicted class ids, ``[N, H, W]`` or ``[N, 1, H, W]``.
        label: Ground truth, same shape.
        num_classes: Number of classes.
        ignore_index: Label value that does not count.

    Returns:
        (intersect_area, pred_area, label_area): int64 tensors of shape ``[num_classes]``.

    Raises:
        ValueError: ``pred`` and ``label`` shapes differ.
    """
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


def install_metric_fixes():
    """Under Paddle >= 3, make paddleseg's evaluation use :func:`calculate_area`.

    Returns:
        True when installed (Paddle >= 3), False otherwise.
    """
    if paddle_major() < 3:
        return False
    seg_metrics.calculate_area = calculate_area
    return True


def use_compatible_losses(cfg_dict, loss_keys=('loss', 'distill_loss')):
    """Under Paddle >= 3, replace loss types that fail there by their fixed versions, in place.

    Args:
        cfg_dict: The parsed paddleseg config (``Config.dic``).
        loss_keys: Top-level keys holding ``{'types': [...], 'coef': [...]}``.

    Returns:
        The list of ``(key, old_type, new_type)`` replaced.
    """
    if paddle_major() < 3:
        return []
    replaced = []
    for key in loss_keys:
        for loss in (cfg_dict.get(key) or {}).get('types') or []:
            new_type = COMPATIBLE_LOSSES.get(loss.get('type')) if isinstance(loss, dict) else None
            if new_type:
                replaced.append((key, loss['type'], new_type))
                loss['type'] = new_type
    for key, old, new in replaced:
        logger.info("%s: %s -> %s (paddleseg's %s fails on Paddle %s)", key, old, new, old,
                    paddle.__version__)
    return replaced
