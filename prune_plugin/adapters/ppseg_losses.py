"""PaddleSeg's losses on Paddle 3: every loss of a config returns shape ``[1]`` and runs.

Two things stop PaddleSeg 2.8 / 2.9 losses on Paddle 3.3 (measured by building every loss type
the 2.8 and 2.9 configs use and running a forward on small inputs, see
``docs/real-checkouts/ppseg.md``):

1. Shape: Paddle 3 reductions return 0-d tensors; the paddleseg 2.8.0 wheel's ``core.train``
   indexes ``l[0]`` of every loss value. A forward post-hook gives every loss object of the
   config (nested ones too: ``MixedLoss`` and any loss that holds losses) a ``[1]``-shaped value.
   This is the generic fix; the value and its gradient are unchanged.
2. Dtypes: Paddle 2 cast the right operand of ``float * int`` / ``float * bool`` to the left
   one's dtype; Paddle 3 raises ``TypeError (InvalidType)``. Seven losses rely on it:
   ``CrossEntropyLoss`` and ``OhemCrossEntropyLoss`` (2.8; 2.9 fixed both),
   ``OhemEdgeAttentionLoss``, ``PointCrossEntropyLoss``, ``RMILoss``, ``RelaxBoundaryLoss`` and
   ``DualTaskLoss`` (and their subclasses). For each, a mixin overrides the one method that
   mixes dtypes with the same computation, cast explicitly as Paddle 2 did.
3. ``DiceLoss`` sets the ignored labels to 0 in place: in a ``MixedLoss`` after
   ``CrossEntropyLoss`` the backward pass then fails (``Tensor ... has been modified by an
   inplace operation``), before it the other loss sees ignored pixels as class 0. Its mixin
   hands it a copy of the labels.

:func:`make_losses_paddle3_ready` applies both to the loss objects ``SegBuilder.loss`` built
(``{'types': [...], 'coef': [...]}``): each object of a failing class becomes an instance of a
subclass of its own class (same name, so ``core.train``'s checks by class name still hold) with
the fixed method. Nothing is renamed in the config and no paddleseg file is touched. Under
Paddle 2 it does nothing.
"""
import sys

import paddle
import paddle.nn.functional as F

FIXED_MARK = '_prune_plugin_paddle3_ready'


def paddle_major():
    """Major version of the installed Paddle; a develop build (``0.0.0``) counts as the newest."""
    try:
        major = int(paddle.__version__.split('.')[0])
    except ValueError:
        return 99
    return 99 if major == 0 else major


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
        if self.top_k_percent_pixels == 1.0:
            return paddle.mean(loss) / (paddle.mean(mask * coef) + self.EPS)
        loss = loss.reshape((-1, ))
        top_k = int(self.top_k_percent_pixels * loss.numel())
        loss, indices = paddle.topk(loss, top_k)
        coef = paddle.gather(coef.reshape((-1, )), indices)
        coef.stop_gradient = True
        return loss.mean() / (paddle.mean(coef.astype('float32')) + self.EPS)


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
        if self.top_k_percent_pixels == 1.0:
            return paddle.mean(loss) / (paddle.mean(mask * coef) + self.EPS)
        loss = loss.reshape((-1, ))
        top_k = int(self.top_k_percent_pixels * loss.numel())
        loss, indices = paddle.topk(loss, top_k)
        coef = paddle.gather(coef.reshape((-1, )), indices)
        coef.stop_gradient = True
        return loss.mean() / (paddle.mean(coef) + self.EPS)


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
_FIXED_CLASSES = {}


def _registered_losses():
    from paddleseg.cvlibs import manager
    return manager.LOSSES.components_dict


def _fix_for(cls):
    """The mixin for ``cls`` (a registered failing class or a subclass of one), or None."""
    registered = _registered_losses()
    for name, mixin in METHOD_FIXES.items():
        base = registered.get(name)
        if isinstance(base, type) and issubclass(cls, base):
            return mixin
    return None


def fixed_class(cls):
    """``cls`` with its fix mixed in (same ``__name__``), or ``cls`` itself."""
    mixin = _fix_for(cls)
    if mixin is None:
        return cls
    if cls not in _FIXED_CLASSES:
        _FIXED_CLASSES[cls] = type(cls.__name__, (mixin, cls), {
            '__module__': __name__, '__qualname__': f"{cls.__name__}[prune_plugin fix]",
            '__doc__': cls.__doc__, 'paddleseg_class': cls})
    return _FIXED_CLASSES[cls]


def _value_of_shape_1(layer, inputs, output):
    """Forward post-hook: 0-d loss values (alone or in a list) become shape ``[1]``."""
    if isinstance(output, paddle.Tensor):
        return output.reshape([1]) if output.ndim == 0 else None
    if isinstance(output, (list, tuple)) and any(
            isinstance(o, paddle.Tensor) and o.ndim == 0 for o in output):
        return type(output)(o.reshape([1]) if isinstance(o, paddle.Tensor) and o.ndim == 0
                            else o for o in output)
    return None


def loss_objects(losses):
    """Every loss layer in ``losses`` (a loss dict, a list or a layer), nested ones included.

    Nested losses are found in a loss's sublayers and in its plain list / tuple / dict
    attributes (``MixedLoss.losses`` is a plain list).
    """
    registered = tuple(c for c in _registered_losses().values() if isinstance(c, type))
    found, seen = [], set()

    def visit(obj):
        if isinstance(obj, dict):
            for value in obj.values():
                visit(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                visit(value)
        elif isinstance(obj, paddle.nn.Layer) and id(obj) not in seen:
            seen.add(id(obj))
            if isinstance(obj, registered):
                found.append(obj)
            for value in vars(obj).values():
                if isinstance(value, (paddle.nn.Layer, list, tuple, dict)):
                    visit(value)

    visit(losses)
    return found


def make_losses_paddle3_ready(losses):
    """Under Paddle >= 3, make every loss in ``losses`` run and return shape ``[1]``, in place.

    Args:
        losses: What ``SegBuilder.loss`` returns (``{'types': [...], 'coef': [...]}``), or any
            list / layer holding paddleseg losses.

    Returns:
        The names of the classes given a method fix (empty under Paddle 2, or when none needed
        one).

    Example:
        >>> loss = builder.loss
        >>> make_losses_paddle3_ready(loss)     # MixedLoss[CrossEntropyLoss, LovaszSoftmaxLoss]
        ['CrossEntropyLoss']
    """
    if paddle_major() < 3:
        return []
    changed = []
    for layer in loss_objects(losses):
        if getattr(layer, FIXED_MARK, False):
            continue
        fixed = fixed_class(type(layer))
        if fixed is not type(layer):
            layer.__class__ = fixed
            changed.append(fixed.__name__)
        layer.register_forward_post_hook(_value_of_shape_1)
        setattr(layer, FIXED_MARK, True)
    return changed
