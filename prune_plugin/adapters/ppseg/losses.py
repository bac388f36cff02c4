"""PaddleSeg's losses on Paddle 3: every loss of a config returns shape ``[1]`` and runs.

Three things stop PaddleSeg 2.8 / 2.9 losses on Paddle 3.3 (measured by building every loss type
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
   mixes dtypes with the same computation, cast explicitly as Paddle 2 did (one exception:
   ``RelaxBoundaryLoss``, which Paddle 2 truncated to int64, is computed in float). The mixins
   are in :mod:`~prune_plugin.adapters.ppseg.loss_fixes`.
3. ``DiceLoss`` sets the ignored labels to 0 in place: in a ``MixedLoss`` after
   ``CrossEntropyLoss`` the backward pass then fails (``Tensor ... has been modified by an
   inplace operation``), before it the other loss sees ignored pixels as class 0. Its mixin
   hands it a copy of the labels.

:func:`make_losses_paddle3_ready` applies them to the loss objects ``SegBuilder.loss`` built
(``{'types': [...], 'coef': [...]}``): each object of a failing class becomes an instance of a
subclass of its own class (same name, so ``core.train``'s checks by class name still hold) with
the fixed method. Nothing is renamed in the config and no paddleseg file is touched. Under
Paddle 2 it does nothing.
"""
import paddle

from .loss_fixes import METHOD_FIXES

FIXED_MARK = '_prune_plugin_paddle3_ready'


def paddle_major():
    """Major version of the installed Paddle; a develop build (``0.0.0``) counts as the newest."""
    try:
        major = int(paddle.__version__.split('.')[0])
    except ValueError:
        return 99
    return 99 if major == 0 else major


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
