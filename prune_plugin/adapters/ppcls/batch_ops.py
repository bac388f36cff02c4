"""PaddleClas's batch operators (``batch_transform_ops``), in the plugin's own code.

=================  ===========================================================================
operator           what (PaddleClas's arguments; ``class_num`` comes from ``Arch.class_num``)
=================  ===========================================================================
MixupOperator      ``alpha`` (1.0): lam ~ Beta(alpha, alpha); images ``lam*x + (1-lam)*x[perm]``
CutmixOperator     ``alpha`` (0.2): a box of area ``1-lam`` pasted from ``x[perm]``; lam is
                   recomputed from the clipped box
OpSampler          ``{Op: {prob, alpha}, ...}``: one of the ops drawn per batch with its
                   ``prob``, none with ``1 - sum(prob)`` (the batch is left as it is)
=================  ===========================================================================

A mixed batch carries soft targets ``lam * onehot(y) + (1 - lam) * onehot(y[perm])`` (float32,
``[N, class_num]``) instead of labels; PaddleClas's ``CELoss`` takes both (see
:class:`~.optim.CELoss`).
"""
import random

import numpy as np

from ...core.errors import PruneConfigError


def _positive(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise PruneConfigError(key, value, "a number > 0")
    return float(value)


def _class_num(name, class_num):
    if isinstance(class_num, bool) or not isinstance(class_num, int) or class_num < 1:
        raise PruneConfigError('Arch.class_num', class_num, f"an int >= 1 (needed by {name})")
    return class_num


class _MixBase:
    def __init__(self, class_num, alpha, name):
        self.class_num = _class_num(name, class_num)
        self.alpha = _positive(f"{name}.alpha", alpha)

    def _targets(self, labels, perm, lam):
        eye = np.eye(self.class_num, dtype='float32')
        return (lam * eye[labels] + (1.0 - lam) * eye[labels[perm]]).astype('float32')


class MixupOperator(_MixBase):
    """Mixup (Zhang et al. 2018)."""

    def __init__(self, class_num, alpha=1.0):
        super().__init__(class_num, alpha, 'MixupOperator')

    def __call__(self, images, labels):
        perm = np.random.permutation(len(images))
        lam = np.random.beta(self.alpha, self.alpha)
        mixed = (lam * images + (1.0 - lam) * images[perm]).astype(images.dtype)
        return mixed, self._targets(labels, perm, lam)


class CutmixOperator(_MixBase):
    """CutMix (Yun et al. 2019) on NCHW batches."""

    def __init__(self, class_num, alpha=0.2):
        super().__init__(class_num, alpha, 'CutmixOperator')

    def __call__(self, images, labels):
        perm = np.random.permutation(len(images))
        lam = np.random.beta(self.alpha, self.alpha)
        height, width = images.shape[2], images.shape[3]
        cut = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * cut), int(width * cut)
        cy, cx = np.random.randint(height), np.random.randint(width)
        y1, y2 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        x1, x2 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        mixed = images.copy()
        mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
        lam = 1.0 - float((y2 - y1) * (x2 - x1)) / (height * width)
        return mixed, self._targets(labels, perm, lam)


BATCH_OPERATORS = {'MixupOperator': MixupOperator, 'CutmixOperator': CutmixOperator}


class OpSampler:
    """One of several batch operators per batch, drawn with their ``prob``."""

    def __init__(self, class_num, **op_dict):
        self.ops, self.weights = [], []
        for name, args in op_dict.items():
            if name not in BATCH_OPERATORS:
                raise PruneConfigError(f"OpSampler.{name}", args, f"one of "
                                                                  f"{sorted(BATCH_OPERATORS)}")
            args = dict(args or {})
            prob = args.pop('prob', 0)
            if isinstance(prob, bool) or not isinstance(prob, (int, float)) or prob < 0:
                raise PruneConfigError(f"OpSampler.{name}.prob", prob, "a number >= 0")
            self.ops.append(BATCH_OPERATORS[name](class_num, **args))
            self.weights.append(float(prob))
        if sum(self.weights) > 1 + 1e-9:
            raise PruneConfigError('OpSampler', op_dict, "probabilities that sum to at most 1")
        self.ops.append(None)  # the batch unchanged
        self.weights.append(max(0.0, 1.0 - sum(self.weights)))

    def __call__(self, images, labels):
        op = random.choices(self.ops, weights=self.weights, k=1)[0]
        return op(images, labels) if op is not None else (images, labels)


def build_batch_operator(items, class_num, key='batch_transform_ops'):
    """The ``batch_transform_ops`` list (one operator) -> ``(images, labels) -> (images, targets)``.

    Raises:
        PruneConfigError: more than one operator (mix them with ``OpSampler``), an unknown one.
    """
    if not isinstance(items, list) or len(items) != 1:
        raise PruneConfigError(key, items, "a list of one batch operator (combine Mixup and "
                                           "Cutmix with OpSampler)")
    (name, args), = items[0].items()
    cls = OpSampler if name == 'OpSampler' else BATCH_OPERATORS.get(name)
    if cls is None:
        raise PruneConfigError(f"{key}.0", name,
                               f"one of {sorted(BATCH_OPERATORS) + ['OpSampler']}")
    return cls(class_num, **(args or {}))


class MixCollate:
    """A DataLoader ``collate_fn``: stack ``(image, label)`` samples, then the batch operator.

    Returns ``[images float32 NCHW, labels int64 [N, 1] | targets float32 [N, class_num]]``.
    """

    def __init__(self, operator):
        self.operator = operator

    def __call__(self, samples):
        images = np.stack([s[0] for s in samples]).astype('float32')
        labels = np.array([int(np.asarray(s[1]).reshape(-1)[0]) for s in samples],
                          dtype='int64')
        images, targets = self.operator(images, labels)
        return [images, targets.reshape(-1, 1) if targets.ndim == 1 else targets]
