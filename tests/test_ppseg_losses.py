"""PaddleSeg's losses and metric on Paddle 3: every loss type the 2.8 / 2.9 configs use.

Each case is a loss entry as it appears in PaddleSeg's configs (types and arguments found in the
release/2.8 and release/2.9 ``configs/`` and ``contrib/``), built by paddleseg's own
``SegBuilder`` and run forward and backward on small inputs of the shapes its models give it.
The reference values of the fixed losses are paddleseg's own code run with Paddle 2's rule for
mixed dtypes (the right operand is cast to the left one's dtype), the rule it was written for.
"""
import numpy as np
import paddle
import pytest
from paddleseg.cvlibs import SegBuilder, manager
from paddleseg.utils import metrics as seg_metrics

from prune_plugin.adapters.ppseg import compat as ppseg_compat
from prune_plugin.adapters.ppseg.compat import calculate_area, install_metric_fixes, metric_works
from prune_plugin.adapters.ppseg.losses import (METHOD_FIXES, fixed_class, loss_objects,
                                                make_losses_paddle3_ready, paddle_major)

N, C, H, W = 2, 3, 16, 16
PADDLE3 = paddle_major() >= 3
needs_paddle3 = pytest.mark.skipif(not PADDLE3, reason="the incompatibilities are Paddle 3's")


class _Config:
    """What ``SegBuilder.build_component`` reads of a config (a file-list dataset)."""
    train_dataset_cfg = {'type': 'Dataset'}


def build(entry):
    return SegBuilder(_Config()).build_component(entry)


def tensor(array, grad=False):
    t = paddle.to_tensor(array)
    t.stop_gradient = not grad
    return t


def seg_inputs(rng, classes=C, size=(H, W)):
    logit = tensor(rng.randn(N, classes, *size).astype('float32'), grad=True)
    label = rng.randint(0, classes, (N, *size)).astype('int64')
    label[0, 0, :4] = 255
    return logit, tensor(label)


def binary_inputs(rng):
    logit = tensor(rng.randn(N, 1, H, W).astype('float32'), grad=True)
    return logit, tensor(rng.randint(0, 2, (N, 1, H, W)).astype('int64'))


def inputs_for(kind, rng):
    """(args, the tensor whose gradient must exist) for a loss given ``kind`` inputs."""
    if kind == 'seg':
        args = seg_inputs(rng)
    elif kind == 'seg19':  # RMILoss's default num_classes
        args = seg_inputs(rng, 19)
    elif kind == 'big':  # BootstrappedCrossEntropyLoss / PixelContrast need many pixels
        args = seg_inputs(rng, size=(32, 32))
    elif kind == 'binary':  # BCELoss on edges, LovaszHingeLoss, DetailAggregateLoss
        args = binary_inputs(rng)
    elif kind == 'multilabel':  # MixedLoss(BCELoss, LovaszHingeLoss) on per-class 0/1 maps
        args = (tensor(rng.randn(N, C, H, W).astype('float32'), grad=True),
                tensor(rng.randint(0, 2, (N, C, H, W)).astype('int64')))
    elif kind == 'detail':
        args = (binary_inputs(rng)[0], seg_inputs(rng)[1])
    elif kind == 'kl':
        logit = seg_inputs(rng)[0]
        args = (logit, tensor(rng.randn(N, C, H, W).astype('float32')))
    elif kind == 'edge':  # (seg logit, edge logit) as DecoupledSegNet / GSCNN give them
        logit, label = seg_inputs(rng)
        args = ((logit, tensor(rng.rand(N, 1, H, W).astype('float32'))), label)
    elif kind == 'point':  # PointRend: (point logits [N, C, P], points [N, P, 2])
        logit = tensor(rng.randn(N, C, 10).astype('float32'), grad=True)
        args = ((logit, tensor(rng.rand(N, 10, 2).astype('float32'))), seg_inputs(rng)[1])
    elif kind == 'contrast':
        logit, label = seg_inputs(rng, size=(32, 32))
        args = ({'seg': logit, 'embed': tensor(rng.randn(N, 8, 32, 32).astype('float32'),
                                               grad=True)}, label)
    elif kind == 'encode':  # SECrossEntropyLoss: image-level logits [N, C]
        args = (tensor(rng.randn(N, C).astype('float32'), grad=True), seg_inputs(rng)[1])
    elif kind == 'maskformer':
        classes = rng.randint(0, C, (N, 3)).astype('int64')
        classes[:, -1] = 255
        logits = {'pred_logits': tensor(rng.randn(N, 5, C + 1).astype('float32'), grad=True),
                  'pred_masks': tensor(rng.randn(N, 5, H, W).astype('float32'), grad=True)}
        args = (logits, {'gt_masks': tensor(rng.randint(0, 2, (N, 3, H, W)).astype('int64')),
                         'gt_classes': tensor(classes)})
    else:
        raise KeyError(kind)
    first = args[0]
    grad_of = first[0] if isinstance(first, tuple) else (
        first.get('embed', first.get('pred_logits')) if isinstance(first, dict) else first)
    return args, grad_of


CE, LOVASZ = {'type': 'CrossEntropyLoss'}, {'type': 'LovaszSoftmaxLoss'}
# computed from argmax(logits): paddleseg's SemanticConnectivityLoss gives logits no gradient
NO_LOGIT_GRADIENT = ('SemanticConnectivityLoss', )
# (config entry, inputs): every loss type of the release/2.8 and release/2.9 configs
CONFIG_LOSSES = [
    (CE, 'seg'),
    ({'type': 'CrossEntropyLoss', 'weight': [0.8, 1.2, 2.0]}, 'seg'),
    ({'type': 'CrossEntropyLoss', 'avg_non_ignore': False}, 'seg'),
    ({'type': 'OhemCrossEntropyLoss', 'min_kept': 100, 'thresh': 0.7}, 'seg'),
    ({'type': 'BootstrappedCrossEntropyLoss', 'min_K': 500, 'loss_th': 0.3}, 'big'),
    (LOVASZ, 'seg'),
    ({'type': 'LovaszHingeLoss'}, 'binary'),
    ({'type': 'DiceLoss'}, 'seg'),
    ({'type': 'BCELoss', 'edge_label': True}, 'binary'),
    ({'type': 'BCELoss', 'weight': 'dynamic', 'edge_label': True}, 'binary'),
    ({'type': 'SemanticConnectivityLoss'}, 'seg'),
    ({'type': 'RMILoss'}, 'seg19'),
    ({'type': 'RelaxBoundaryLoss'}, 'seg'),
    ({'type': 'EdgeAttentionLoss'}, 'edge'),
    ({'type': 'OhemEdgeAttentionLoss'}, 'edge'),
    ({'type': 'OhemEdgeAttentionLoss', 'min_kept': 100}, 'edge'),
    ({'type': 'DualTaskLoss'}, 'seg'),
    ({'type': 'PointCrossEntropyLoss'}, 'point'),
    ({'type': 'DetailAggregateLoss'}, 'detail'),
    ({'type': 'KLLoss'}, 'kl'),
    ({'type': 'SECrossEntropyLoss'}, 'encode'),
    ({'type': 'PixelContrastCrossEntropyLoss', 'temperature': 0.1, 'base_temperature': 0.07,
      'ignore_index': 255, 'max_samples': 1024, 'max_views': 100}, 'contrast'),
    ({'type': 'MaskFormerLoss', 'num_classes': C, 'eos_coef': 0.1}, 'maskformer'),
    ({'type': 'MixedLoss', 'losses': [CE, LOVASZ], 'coef': [0.8, 0.2]}, 'seg'),
    ({'type': 'MixedLoss', 'losses': [{'type': 'OhemCrossEntropyLoss', 'min_kept': 100},
                                      LOVASZ], 'coef': [0.8, 0.2]}, 'seg'),
    ({'type': 'MixedLoss', 'losses': [{'type': 'RMILoss'}, CE], 'coef': [1.0, 1.0]}, 'seg19'),
    ({'type': 'MixedLoss', 'losses': [CE, {'type': 'SemanticConnectivityLoss'}],
      'coef': [1, 0.05]}, 'seg'),
    ({'type': 'MixedLoss', 'losses': [{'type': 'BCELoss'}, {'type': 'LovaszHingeLoss'}],
      'coef': [0.5, 0.5]}, 'multilabel'),
    ({'type': 'MixedLoss', 'losses': [CE, {'type': 'DiceLoss'}], 'coef': [1, 1]}, 'seg'),
]


def case_id(case):
    entry = case[0]
    inner = '+'.join(e['type'] for e in entry.get('losses', []))
    extra = ','.join(k for k in entry if k not in ('type', 'losses', 'coef'))
    return entry['type'] + (f"[{inner}]" if inner else '') + (f"({extra})" if extra else '')


def values_of(output):
    return list(output) if isinstance(output, (list, tuple)) else [output]


@needs_paddle3
@pytest.mark.parametrize('entry, kind', CONFIG_LOSSES, ids=[case_id(c) for c in CONFIG_LOSSES])
def test_every_loss_type_of_the_real_configs_runs_with_a_shape_1_value(entry, kind):
    loss = build(entry)
    make_losses_paddle3_ready({'types': [loss], 'coef': [1]})
    assert type(loss).__name__ == entry['type']  # core.train checks losses by class name
    paddle.seed(0)
    args, grad_of = inputs_for(kind, np.random.RandomState(0))
    values = values_of(loss(*args))
    assert len(values) == len(entry.get('losses', [None]))
    for value in values:
        assert list(value.shape) == [1]
        assert np.isfinite(float(value))
        value.numpy()[0]  # what the paddleseg 2.8.0 wheel's core.train does (l[0])
    sum(values).backward()
    if entry['type'] in NO_LOGIT_GRADIENT:
        assert grad_of.grad is None
    else:
        assert grad_of.grad is not None and list(grad_of.grad.shape) == list(grad_of.shape)


@pytest.fixture
def paddle2_casts(monkeypatch):
    """Paddle 2's arithmetic on tensors of different dtypes: cast the right one to the left's.

    Only to compute paddleseg's own results as it computed them on Paddle 2 (the reference).
    """
    for name in ('__mul__', '__rmul__', '__add__', '__radd__', '__sub__', '__rsub__',
                 '__truediv__', '__rtruediv__'):
        original = getattr(paddle.Tensor, name)

        def cast_right(self, other, _original=original):
            if isinstance(other, paddle.Tensor) and other.dtype != self.dtype:
                other = other.astype(self.dtype)
            return _original(self, other)

        monkeypatch.setattr(paddle.Tensor, name, cast_right)


# (entry, inputs, whether paddleseg's own code raises on Paddle 3 for these inputs)
FIXED_CASES = [
    (CE, 'seg', True),
    ({'type': 'CrossEntropyLoss', 'weight': [0.8, 1.2, 2.0]}, 'seg', True),
    ({'type': 'CrossEntropyLoss', 'avg_non_ignore': False}, 'seg', True),
    ({'type': 'CrossEntropyLoss', 'top_k_percent_pixels': 0.3}, 'seg', False),
    ({'type': 'OhemCrossEntropyLoss', 'min_kept': 100, 'thresh': 0.7}, 'seg', True),
    ({'type': 'OhemEdgeAttentionLoss', 'min_kept': 100}, 'edge', True),
    ({'type': 'PointCrossEntropyLoss'}, 'point', True),
    ({'type': 'PointCrossEntropyLoss', 'weight': [0.8, 1.2, 2.0]}, 'point', True),
    ({'type': 'RMILoss'}, 'seg19', True),
    ({'type': 'DualTaskLoss'}, 'seg', True),
]


@needs_paddle3
@pytest.mark.parametrize('entry, kind, fails', FIXED_CASES,
                         ids=[case_id(c) for c in FIXED_CASES])
def test_fixed_losses_compute_what_paddleseg_computed_on_paddle2(entry, kind, fails, request):
    fixed = build(entry)
    assert make_losses_paddle3_ready([fixed]) == [entry['type']]
    paddle.seed(7)  # DualTaskLoss draws Gumbel noise
    args, grad_of = inputs_for(kind, np.random.RandomState(1))
    ours = fixed(*args)
    ours.backward()
    our_grad = grad_of.grad.numpy().copy()
    grad_of.clear_gradient()

    original = build(entry)
    if fails:
        with pytest.raises(TypeError, match='InvalidType'):  # Paddle 3 on paddleseg's code
            original(*args)
    request.getfixturevalue('paddle2_casts')
    paddle.seed(7)
    reference = original(*args)
    reference.backward()
    assert reference.ndim == 0 and list(ours.shape) == [1]
    np.testing.assert_allclose(float(ours), float(reference), rtol=1e-6)
    np.testing.assert_allclose(our_grad, grad_of.grad.numpy(), rtol=1e-5, atol=1e-8)


@needs_paddle3
def test_relax_boundary_loss_is_computed_in_float_not_as_paddle2_truncated_it(request):
    """paddleseg's ``label * logsoft`` (int64 one-hot times float log-probabilities) made Paddle
    2 cast the log-probabilities to int64: truncated values and no gradient. The fix computes
    the float product the loss is written for."""
    entry = {'type': 'RelaxBoundaryLoss'}
    logit, label = seg_inputs(np.random.RandomState(6))
    fixed = build(entry)
    make_losses_paddle3_ready([fixed])
    ours = fixed(logit, label)
    ours.backward()
    assert list(ours.shape) == [1] and not float(ours).is_integer()
    assert float(paddle.abs(logit.grad).sum()) > 0
    logit.clear_gradient()
    original = build(entry)
    with pytest.raises(TypeError, match='InvalidType'):
        original(logit, label)
    onehot = original.relax_onehot(label, C).astype('float32')  # the float computation
    weights = onehot[:, :-1].sum(1)
    ignore = (weights == 0).astype('float32')
    expected = sum(original.custom_nll(logit[i:i + 1], onehot[i:i + 1],
                                       border_weights=weights + ignore, ignore_mask=ignore[i])
                   for i in range(N))
    np.testing.assert_allclose(float(ours), float(expected), rtol=1e-6)
    request.getfixturevalue('paddle2_casts')
    truncated = original(logit, label)  # what paddleseg computed on Paddle 2
    truncated.backward()
    assert float(truncated) != pytest.approx(float(ours), rel=1e-3)
    assert logit.grad is None or float(paddle.abs(logit.grad).sum()) == 0.0


def test_every_fixed_class_is_a_registered_paddleseg_loss():
    registered = manager.LOSSES.components_dict
    assert set(METHOD_FIXES) <= set(registered)


@needs_paddle3
def test_nested_losses_are_fixed_in_place_once_and_keep_their_classes():
    mixed = build({'type': 'MixedLoss', 'losses': [CE, LOVASZ], 'coef': [0.8, 0.2]})
    paddleseg_ce = manager.LOSSES['CrossEntropyLoss']
    losses = {'types': [mixed], 'coef': [1]}
    assert [type(x).__name__ for x in loss_objects(losses)] == \
        ['MixedLoss', 'CrossEntropyLoss', 'LovaszSoftmaxLoss']
    assert make_losses_paddle3_ready(losses) == ['CrossEntropyLoss']
    assert make_losses_paddle3_ready(losses) == []  # idempotent: no second hook, no re-class
    inner = mixed.losses[0]
    assert isinstance(inner, paddleseg_ce) and type(inner) is not paddleseg_ce
    assert type(inner).__name__ == 'CrossEntropyLoss' and type(mixed).__name__ == 'MixedLoss'
    assert all(len(x._forward_post_hooks) == 1 for x in loss_objects(losses))
    logit, label = seg_inputs(np.random.RandomState(2))
    values = mixed(logit, label)
    assert [list(v.shape) for v in values] == [[1], [1]]
    alone = build(CE)
    make_losses_paddle3_ready([alone])
    np.testing.assert_allclose(float(values[0]), 0.8 * float(alone(logit, label)), rtol=1e-6)


@needs_paddle3
def test_dice_after_cross_entropy_each_sees_the_original_labels():
    """DiceLoss edits its labels in place: without the copy the backward of the cross entropy
    before it fails, and a loss after it would see ignored pixels as class 0."""
    rng = np.random.RandomState(3)
    logit, label = seg_inputs(rng)
    before = label.numpy().copy()
    only_ce_fixed = build({'type': 'MixedLoss', 'losses': [CE, {'type': 'DiceLoss'}],
                           'coef': [1, 1]})
    only_ce_fixed.losses[0].__class__ = fixed_class(type(only_ce_fixed.losses[0]))
    with pytest.raises(RuntimeError, match='inplace'):
        sum(only_ce_fixed(logit, label.clone())).backward()
    logit.clear_gradient()
    mixed = build({'type': 'MixedLoss', 'losses': [CE, {'type': 'DiceLoss'}], 'coef': [1, 1]})
    make_losses_paddle3_ready([mixed])
    ce_value, dice_value = mixed(logit, label)
    sum([ce_value, dice_value]).backward()
    np.testing.assert_array_equal(label.numpy(), before)
    dice_alone, ce_alone = build({'type': 'DiceLoss'}), build(CE)
    make_losses_paddle3_ready([ce_alone])
    np.testing.assert_allclose(float(dice_value), float(dice_alone(logit, label.clone())),
                               rtol=1e-6)
    np.testing.assert_allclose(float(ce_value), float(ce_alone(logit, label)), rtol=1e-6)


@needs_paddle3
def test_a_0d_loss_is_what_the_wheel_core_train_cannot_index():
    value = build(LOVASZ)(*seg_inputs(np.random.RandomState(4)))
    assert value.ndim == 0
    with pytest.raises(IndexError):
        value.numpy()[0]


def areas_by_numpy(pred, label, classes, ignore=255):
    valid = label != ignore
    return ([int(((pred == c) & (label == c) & valid).sum()) for c in range(classes)],
            [int(((pred == c) & valid).sum()) for c in range(classes)],
            [int((label == c).sum()) for c in range(classes)])


def test_our_calculate_area_counts_as_paddleseg_and_takes_multilabel():
    rng = np.random.RandomState(5)
    pred = rng.randint(0, 3, (2, 1, 6, 5)).astype('int32')
    label = rng.randint(0, 3, (2, 1, 6, 5)).astype('int64')
    label[0, 0, 0] = 255
    areas = calculate_area(paddle.to_tensor(pred), paddle.to_tensor(label), 3)
    assert [a.numpy().tolist() for a in areas] == list(areas_by_numpy(pred, label, 3))
    multi_pred = rng.randint(0, 2, (2, 3, 4, 4)).astype('int64')
    multi_label = rng.randint(0, 2, (2, 3, 4, 4)).astype('int64')
    areas = calculate_area(paddle.to_tensor(multi_pred), paddle.to_tensor(multi_label), 3,
                           use_multilabel=True)
    assert [a.numpy().tolist() for a in areas] == [
        (multi_pred * multi_label).sum((0, 2, 3)).tolist(), multi_pred.sum((0, 2, 3)).tolist(),
        multi_label.sum((0, 2, 3)).tolist()]


def stacked_calculate_area(pred, label, num_classes, ignore_index=255, use_multilabel=False):
    """What paddleseg's release/2.8 and 2.9 branches compute: per-class sums, stacked."""
    pred, label = paddle.squeeze(pred, axis=1), paddle.squeeze(label, axis=1)
    valid = label != ignore_index
    p = [paddle.logical_and(pred == i, valid).astype('int64').sum() for i in range(num_classes)]
    lab = [(label == i).astype('int64').sum() for i in range(num_classes)]
    both = [paddle.logical_and(paddle.logical_and(pred == i, valid), label == i).astype(
        'int64').sum() for i in range(num_classes)]
    return paddle.stack(both), paddle.stack(p), paddle.stack(lab)


def test_the_metric_is_replaced_only_where_it_fails(monkeypatch):
    wheel_function = seg_metrics.calculate_area
    monkeypatch.setattr(seg_metrics, 'calculate_area', wheel_function)  # restored afterwards
    if PADDLE3 and wheel_function is not calculate_area:
        assert not metric_works(wheel_function)  # the 2.8.0 wheel concatenates 0-d sums
        assert install_metric_fixes() is True and seg_metrics.calculate_area is calculate_area
    assert install_metric_fixes() is False and seg_metrics.calculate_area is calculate_area
    monkeypatch.setattr(seg_metrics, 'calculate_area', stacked_calculate_area)
    assert metric_works(stacked_calculate_area)
    assert install_metric_fixes() is False  # a paddleseg whose metric works keeps its own
    assert seg_metrics.calculate_area is stacked_calculate_area


def test_use_multilabel_is_known_from_evaluate_itself():
    import paddleseg
    takes = ppseg_compat.evaluate_takes('use_multilabel')
    assert takes == (not paddleseg.__version__.startswith('2.8'))
