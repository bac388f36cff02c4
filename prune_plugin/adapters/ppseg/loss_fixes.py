"""The method fixes behind :func:`~prune_plugin.adapters.ppseg.losses.make_losses_paddle3_ready`.

Each mixin overrides the one method of a paddleseg loss that Paddle 3 refuses, with the same
computation and explicit casts where paddleseg relied on Paddle 2's rule (the right operand of a
mixed-dtype ``*`` / ``+`` / ``-`` is cast to the left one's dtype). ``RelaxBoundaryLoss`` is the
exception: there Paddle 2 truncated float log-probabilities to int64; the fix computes in float.
A mixin is combined with the loss's own (clone or wheel) class, so ``super()`` and the class's
attributes are paddleseg's.
"""
import sys

import paddle
import paddle.nn.functional as F


def _module_attr(layer, name, default=None):
    """A module-level name of the paddleseg module that defines ``layer``'s original class."""
    cls = getattr(layer, 'paddleseg_class', type(layer))
    return getattr(sys.modules.get(cls.__module__), name, default)


class CrossEntropyFix:
    """``CrossEntropyLoss._post_process_loss`` with float pixel weights (2.8 multiplies int64)."""

    def _post_process_loss(self, logit, label, semantic_weights, loss):
        valid = label != self.ignore_index
        mask = valid.astype('float32') if self.avg_non_ignore else \
            paddle.ones(label.shape, dtype='float32')
        mask.stop_gradient = True
        label.stop_gradient = True
        if loss.ndim > mask.ndim:
            loss = paddle.squeeze(loss, axis=-1)
        loss = loss * mask
        if semantic_weights is not None:
            loss = loss * semantic_weights
        if self.weight is not None:
            # paddle 2: label * mask (mask cast to int64) picks the class, 0 where masked
            picked = label * mask.astype(label.dtype)
            coef = paddle.sum(F.one_hot(picked, logit.shape[-1]) * self.weight, axis=-1)
        else:
            coef = paddle.ones(label.shape, dtype='float32')
        return _weighted_mean(loss, mask, coef, self.top_k_percent_pixels, self.EPS)


class PointCrossEntropyFix:
    """``PointCrossEntropyLoss.forward`` with the pixel count in float32."""

    def forward(self, logits, label, semantic_weights=None):
        logit, points = logits
        point_sample = _module_attr(self, 'point_sample')
        label = point_sample(label.unsqueeze(1).astype('float32'), points, mode='nearest',
                             align_corners=self.align_corners)
        label = paddle.squeeze(label, axis=1).astype('int64')
        if self.weight is not None and logit.shape[1] != len(self.weight):
            raise ValueError(f"The number of weights = {len(self.weight)} must be the same as "
                             f"the number of classes = {logit.shape[1]}.")
        logit = paddle.transpose(logit, [0, 2, 1])
        loss = F.cross_entropy(logit, label, ignore_index=self.ignore_index, reduction='none')
        mask = (label != self.ignore_index).astype('float32')
        loss = loss * mask
        if semantic_weights is not None:
            loss = loss * semantic_weights
        if self.weight is not None:
            class_weights = F.one_hot(label, logit.shape[-1]) * self.weight
            loss = loss * class_weights.argmax(-1).astype(loss.dtype)
            coef = paddle.sum(class_weights, axis=-1)
        else:
            coef = paddle.ones(label.shape, dtype='float32')
        label.stop_gradient = True
        mask.stop_gradient = True
        return _weighted_mean(loss, mask, coef, self.top_k_percent_pixels, self.EPS)


def _ohem_loss(loss, seg_logit, label):
    """The OHEM cross entropy of paddleseg's two OHEM losses, with the ignored-pixel offset
    in float (``prob + (1 - valid_mask)`` adds an int64 tensor to a float32 one)."""
    n, c, h, w = seg_logit.shape
    label = label.reshape((-1, )).astype('int64')
    valid_mask = (label != loss.ignore_index).astype('int64')
    num_valid = valid_mask.sum()
    label = label * valid_mask
    prob = F.softmax(seg_logit, axis=1).transpose((1, 0, 2, 3)).reshape((c, -1))
    if loss.min_kept < num_valid and num_valid > 0:
        prob = prob + (1 - valid_mask).astype(prob.dtype)  # ignored pixels: prob > 1
        prob = paddle.sum(prob * F.one_hot(label, c).transpose((1, 0)), axis=0)
        threshold = loss.thresh
        if loss.min_kept > 0:
            order = prob.argsort()
            threshold_index = int(order[min(len(order), loss.min_kept) - 1])
            if prob[threshold_index] > loss.thresh:
                threshold = prob[threshold_index]
            kept_mask = (prob < threshold).astype('int64')
            label = label * kept_mask
            valid_mask = valid_mask * kept_mask
    label = label + (1 - valid_mask) * loss.ignore_index
    label = label.reshape((n, 1, h, w))
    valid_mask = valid_mask.reshape((n, 1, h, w)).astype('float32')
    value = F.softmax_with_cross_entropy(seg_logit, label, ignore_index=loss.ignore_index, axis=1)
    value = paddle.mean(value * valid_mask) / (paddle.mean(valid_mask) + loss.EPS)
    label.stop_gradient = True
    valid_mask.stop_gradient = True
    return value


class OhemCrossEntropyFix:
    """``OhemCrossEntropyLoss.forward`` with the ignored-pixel offset in float (2.8)."""

    def forward(self, logit, label):
        if len(label.shape) != len(logit.shape):
            label = paddle.unsqueeze(label, 1)
        return _ohem_loss(self, logit, label)


class OhemEdgeAttentionFix:
    """``OhemEdgeAttentionLoss.forward`` with the ignored-pixel offset in float."""

    def forward(self, logits, label):
        seg_logit, edge_logit = logits[0], logits[1]
        if len(label.shape) != len(seg_logit.shape):
            label = paddle.unsqueeze(label, 1)
        if edge_logit.shape != label.shape:
            raise ValueError(f"The shape of edge_logit should equal to the label, but they are "
                             f"{edge_logit.shape} != {label.shape}")
        filler = paddle.ones_like(label) * self.ignore_index
        label = paddle.where(edge_logit > self.edge_threshold, label, filler)
        return _ohem_loss(self, seg_logit, label)


class RMIFix:
    """``RMILoss.forward_sigmoid`` with the valid-pixel mask in float32."""

    def forward_sigmoid(self, logits_4D, labels_4D, do_rmi=False):
        valid = labels_4D != self.ignore_index
        classes = labels_4D.astype('int64') * valid.astype('int64')
        onehot = F.one_hot(classes, num_classes=self.num_classes).astype('float32')
        onehot = onehot * paddle.unsqueeze(valid, axis=3).astype('float32')
        clip_min = _module_attr(self, '_CLIP_MIN', 1e-6)
        probs = F.sigmoid(logits_4D) * paddle.unsqueeze(valid, axis=1).astype(
            logits_4D.dtype) + clip_min
        onehot = paddle.transpose(onehot, [0, 3, 1, 2])
        onehot.stop_gradient = True
        return self.rmi_lower_bound(onehot, probs)


class RelaxBoundaryFix:
    """``RelaxBoundaryLoss.custom_nll`` given its int64 one-hot labels as float (see above)."""

    def custom_nll(self, logit, label, class_weights=None, border_weights=None,
                   ignore_mask=None):
        return super().custom_nll(logit, label.astype(logit.dtype), class_weights=class_weights,
                                  border_weights=border_weights, ignore_mask=ignore_mask)


class DualTaskFix:
    """``DualTaskLoss.forward`` (GSCNN) with its valid-pixel mask in the logits' dtype."""

    def forward(self, logit, labels):
        threshold, eps = 1e-8, 1e-10
        if len(labels.shape) == 3:
            labels = labels.unsqueeze(1)
        valid = labels != self.ignore_index
        valid.stop_gradient = True
        valid_f = valid.astype(logit.dtype)
        logit = logit * valid_f
        labels = labels * valid.astype(labels.dtype)
        labels = labels.squeeze(1)
        labels.stop_gradient = True
        labels = F.one_hot(labels, logit.shape[1]).transpose((0, 3, 1, 2))
        labels.stop_gradient = True
        g = self.compute_grad_mag(self._gumbel_softmax_sample(logit, tau=self.tau))
        g_hat = self.compute_grad_mag(labels)
        loss = F.l1_loss(g, g_hat, reduction='none') * valid_f

        def edge_mean(edges):
            selected = (edges > threshold).astype('float32')
            selected.stop_gradient = True
            count = paddle.sum(selected)
            total = paddle.sum(loss * selected)
            return total / count if count > eps else total

        return 0.5 * edge_mean(g) + 0.5 * edge_mean(g_hat)


class DiceLabelsCopy:
    """``DiceLoss.forward`` on its own copy of the labels (it edits them in place)."""

    def forward(self, logits, labels):
        return super().forward(logits, labels.clone())


# paddleseg class name -> the mixin that fixes it (its subclasses are fixed too)
METHOD_FIXES = {
    'CrossEntropyLoss': CrossEntropyFix,
    'OhemCrossEntropyLoss': OhemCrossEntropyFix,
    'OhemEdgeAttentionLoss': OhemEdgeAttentionFix,
    'PointCrossEntropyLoss': PointCrossEntropyFix,
    'RMILoss': RMIFix,
    'RelaxBoundaryLoss': RelaxBoundaryFix,
    'DualTaskLoss': DualTaskFix,
    'DiceLoss': DiceLabelsCopy,
}


def _weighted_mean(loss, mask, coef, top_k_percent_pixels, eps):
    """paddleseg's cross-entropy average: all pixels, or the largest ``top_k_percent_pixels``."""
    if top_k_percent_pixels == 1.0:
        return paddle.mean(loss) / (paddle.mean(mask * coef) + eps)
    loss = loss.reshape((-1, ))
    top_k = int(top_k_percent_pixels * loss.numel())
    loss, indices = paddle.topk(loss, top_k)
    coef = paddle.gather(coef.reshape((-1, )), indices)
    coef.stop_gradient = True
    return loss.mean() / (paddle.mean(coef.astype('float32')) + eps)
