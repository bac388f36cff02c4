"""The plugin's PaddleClas trainer (no clone) reads stock configs as PaddleClas's Engine does.

A config written like PaddleClas's ImageNet configs (``AMP: {use_amp: False}``, Piecewise with
``learning_rate``, AutoAugment / TimmAutoAugment / RandomErasing, Mixup / Cutmix through
OpSampler), in a folder not named ppcls, trains through ``prune-train`` to exact sparsity; the
AMP switch, the learning-rate rules, the operators and the soft-target loss are checked as
values. About 40 s on 2 cores (one 10-update training run).
"""
import math
import random

import numpy as np
import paddle
import pytest

from ppcls_helpers import (run, stderr_lines, write_stock_style_config, zeros_of_conv1x1)
from PIL import Image

from prune_plugin.adapters.ppcls.autoaugment import (_RANGES, TIMM_OPS, TIMM_RAND_INCREASING_OPS,
                                                     AutoAugment, RandAugment, TimmAutoAugment,
                                                     _bin_magnitude, _classic_ops,
                                                     parse_rand_config)
from prune_plugin.adapters.ppcls.batch_ops import (CutmixOperator, MixCollate, MixupOperator,
                                                   OpSampler)
from prune_plugin.adapters.ppcls.config import amp_settings, load_config, validate_config
from prune_plugin.adapters.ppcls.data import build_transforms
from prune_plugin.adapters.ppcls.lr import build_lr
from prune_plugin.adapters.ppcls.ops import ColorJitter, Cutout, RandomErasing
from prune_plugin.adapters.ppcls.optim import CELoss, build_optimizer
from prune_plugin.core.errors import PruneConfigError


@pytest.fixture(scope='module')
def stock_config(tmp_path_factory):
    return write_stock_style_config(tmp_path_factory.mktemp('user'))


def test_stock_style_config_trains_through_prune_train_without_a_clone(stock_config, tmp_path):
    result = run(['prune-train', '-c', stock_config, '-o', 'Optimizer.lr.learning_rate=0.01',
                  f"Global.output_dir={tmp_path}"], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "paddleclas.ppcls from" in out and "(installed package)" in out
    assert "mixed precision: off (fp32, AMP.use_amp is false)" in out
    # -o Optimizer.lr.learning_rate wins over the Piecewise values (0.1), as in PaddleClas
    assert "[Train][Epoch 1] lr(PiecewiseDecay): 0.01000000" in out
    assert "[Train][Epoch 2] lr(PiecewiseDecay): 0.01000000" in out
    assert "result: 75.00% of the prunable weights pruned at iteration 10 (target 75%)" in out
    folder = tmp_path / 'MobileNetV1_x0_25'
    zeros, total = zeros_of_conv1x1(str(folder / 'epoch_1.pdparams'))
    assert zeros == round(0.675 * total)  # GMP step 2 of 4: 0.15 + 0.6 * (1 - 0.5 ** 3)
    zeros, total = zeros_of_conv1x1(str(folder / 'latest.pdparams'))
    assert zeros == round(0.75 * total)


@pytest.mark.parametrize('section, level', [
    ({'use_amp': False, 'level': 'O1', 'scale_loss': 128.0}, 'O0'),
    ({'level': 'O1', 'scale_loss': 128.0}, 'O1'),            # no use_amp key: on, as the Engine
    ({'use_amp': True, 'level': 'O1'}, 'O1'),
    (None, 'O0')])
def test_amp_section_is_read_as_the_engine_reads_it(stock_config, section, level):
    from paddleclas.ppcls.arch import build_model
    from prune_plugin.adapters.ppcls.trainer import prepare_model

    cfg = load_config(stock_config)
    cfg.pop('AMP')
    if section is not None:
        cfg['AMP'] = section
    validate_config(cfg)
    model = prepare_model(cfg, build_model(cfg), steps_per_epoch=5)
    assert model._adapter._amp_level == level
    settings = amp_settings(cfg)
    assert (settings is None) == (level == 'O0')
    if settings and 'scale_loss' in section:
        assert settings['init_loss_scaling'] == 128.0


def lrs(lr_cfg, epochs, steps, at):
    schedule, by_epoch = build_lr(lr_cfg, epochs, steps)
    seen = []
    for _ in range(max(at) + 1):
        seen.append(schedule.last_lr)  # get_lr() recomputes recursive schedules
        schedule.step()
    return [seen[i] for i in at], by_epoch


def test_learning_rate_rules_are_paddleclas_s():
    piecewise = {'name': 'Piecewise', 'learning_rate': 0.01, 'decay_epochs': [30, 60, 90],
                 'values': [0.1, 0.01, 0.001, 0.0001]}
    got, _ = lrs(piecewise, 120, 10, [0, 299, 300, 600, 900, 1199])
    assert got == pytest.approx([0.01, 0.01, 0.001, 0.0001, 0.00001, 0.00001])
    got, _ = lrs(piecewise, 2, 10, [0, 19])  # fewer than 31 epochs: one value
    assert got == pytest.approx([0.01, 0.01])
    got, _ = lrs(dict(piecewise, learning_rate=None), 120, 10, [0, 300])  # values when unset
    assert got == pytest.approx([0.1, 0.01])
    # warm-up longer than the run is clamped to the run (then the cosine has no steps left)
    got, _ = lrs({'name': 'Cosine', 'learning_rate': 0.1, 'warmup_epoch': 5}, 2, 10, [0, 10, 19])
    assert got == pytest.approx([0.0, 0.05, 0.095])
    got, _ = lrs({'name': 'Step', 'learning_rate': 0.1, 'step_size': 2, 'gamma': 0.5}, 6, 10,
                 [19, 20, 40])
    assert got == pytest.approx([0.1, 0.05, 0.025])
    got, _ = lrs({'name': 'MultiStepDecay', 'learning_rate': 0.1, 'milestones': [1, 3]}, 6, 10,
                 [9, 10, 30])
    assert got == pytest.approx([0.1, 0.01, 0.001])
    got, _ = lrs({'name': 'Linear', 'learning_rate': 0.1, 'end_lr': 0.0}, 2, 10, [0, 10])
    assert got == pytest.approx([0.1, 0.05])
    got, by_epoch = lrs({'name': 'Cosine', 'learning_rate': 0.1, 'by_epoch': True}, 4, 10, [0, 2])
    assert by_epoch and got == pytest.approx([0.1, 0.05])  # one step per epoch


def test_adamw_with_paddleclas_arguments():
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 1), paddle.nn.BatchNorm2D(4))
    opt, _, _ = build_optimizer({'name': 'AdamW', 'beta1': 0.9, 'beta2': 0.999, 'epsilon': 1e-8,
                                 'weight_decay': 0.05, 'no_weight_decay_name': '1.',
                                 'one_dim_param_no_weight_decay': True,
                                 'lr': {'name': 'Cosine', 'learning_rate': 0.001}},
                                net, epochs=2, steps_per_epoch=3)
    assert isinstance(opt, paddle.optimizer.AdamW)
    decays = {p.name: opt._apply_decay_param_fun(p.name) for p in net.parameters()}
    conv_weight = net[0].weight.name
    assert decays[conv_weight] and sum(decays.values()) == 1  # biases and BN: no decay


def image(seed=0, size=32):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(size, size, 3)).astype('uint8')


def test_policy_augmentations_follow_their_tables():
    assert len(AutoAugment().policies) == 25
    assert _bin_magnitude('posterize', 8) == 4 and _bin_magnitude('rotate', 9) == 30
    assert _bin_magnitude('solarize', 5) == pytest.approx(256 - 5 * 256 / 9)
    levels = RandAugment(num_layers=2, magnitude=5).levels
    assert (levels['posterize'], levels['solarize'], levels['shearX']) == (2, 128.0, 0.15)
    parsed = parse_rand_config('rand-m9-mstd0.5-inc1')
    assert (parsed['magnitude'], parsed['magnitude_std'], parsed['num_layers']) == (9, 0.5, 2)
    assert parsed['ops'] == TIMM_RAND_INCREASING_OPS
    timm = TimmAutoAugment(config_str='rand-m7-n3-mstd0.5-inc1', img_size=32)
    assert timm.num_layers == 3 and timm.hparams['translate_const'] == 14
    assert timm.fill == (124, 116, 104)
    random.seed(0)
    np.random.seed(0)
    for op in (AutoAugment(), RandAugment(), timm):
        out = op(image())
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    # every operation at every level runs (Pillow 13 refuses posterize(0): black instead)
    pil = Image.fromarray(image())
    for name, (fn, level_to_arg) in TIMM_OPS.items():
        for level in (0, 5, 10):
            arg = level_to_arg(level, timm.hparams) if level_to_arg else None
            assert fn(pil, arg, timm.fill, Image.BICUBIC).size == (32, 32), (name, level)
    for name, fn in _classic_ops((128, 128, 128)).items():
        for index in range(10):
            magnitude = _bin_magnitude(name, index) if name in ('posterize', 'solarize') \
                else index / 9 * _RANGES[name]
            assert fn(pil, magnitude).size == (32, 32), (name, index)
    with pytest.raises(PruneConfigError, match=r"TimmAutoAugment.config_str='augmix-m5' is not "
                                               r"allowed: expected a RandAugment string"):
        TimmAutoAugment(config_str='augmix-m5')


def test_erasing_cutout_and_colorjitter():
    random.seed(1)
    ones = np.ones((32, 32, 3), dtype='float32')
    erased = RandomErasing(EPSILON=1.0, sl=0.1, sh=0.1, r1=1.0, mode='const')(ones)
    side = round(math.sqrt(0.1 * 32 * 32))  # a 10 x 10 square of the const fill (0)
    assert int((erased == 0).sum()) == side * side * 3
    assert RandomErasing(EPSILON=0.0)(ones) is ones
    np.random.seed(2)
    holes = Cutout(n_holes=1, length=8, fill_value=(0, 0, 0))(np.full((32, 32, 3), 7, 'uint8'))
    assert 0 < int((holes == 0).sum()) <= 8 * 8 * 3 and int((holes == 0).sum()) % 3 == 0
    img = image()
    assert np.array_equal(ColorJitter(prob=0.0, brightness=0.5)(img), img)
    assert not np.array_equal(ColorJitter(prob=2, brightness=0.5)(img), img)


@pytest.mark.parametrize('items, message', [
    ([{'GridMask': {'d1': 96}}], "transform_ops.0='GridMask' is not allowed: expected an "
                                 "operator of the plugin's trainer ['AutoAugment', 'ColorJitter'"),
    ([{'RandCropImage': {'sizee': 224}}],
     "transform_ops.0.RandCropImage.sizee=224 is not allowed: expected one of the arguments "
     "['size', 'progress_size'"),
])
def test_operators_are_checked_by_name_and_argument(items, message):
    with pytest.raises(PruneConfigError) as err:
        build_transforms(items)
    assert str(err.value).startswith(message)
    if 'GridMask' in message:
        assert str(err.value).endswith("(run at the root of a PaddleClas clone, or with "
                                       "$PADDLECLAS_SRC, and the clone's Engine builds every "
                                       "operator of ppcls.data.preprocess)")


def test_mixup_and_cutmix_give_paddleclas_soft_targets():
    images = np.random.RandomState(0).rand(6, 3, 8, 8).astype('float32')
    labels = np.array([0, 1, 2, 3, 4, 5], dtype='int64')
    np.random.seed(3)
    perm, lam = np.random.permutation(6), np.random.beta(0.8, 0.8)
    np.random.seed(3)
    mixed, targets = MixupOperator(class_num=10, alpha=0.8)(images, labels)
    np.testing.assert_allclose(mixed, lam * images + (1 - lam) * images[perm], rtol=1e-6)
    expected = lam * np.eye(10)[labels] + (1 - lam) * np.eye(10)[labels[perm]]
    np.testing.assert_allclose(targets, expected, rtol=1e-6)

    np.random.seed(4)  # the draws CutmixOperator makes: permutation, lam, box centre
    perm, lam = np.random.permutation(6), np.random.beta(1.0, 1.0)
    side = int(8 * np.sqrt(1 - lam))
    cy, cx = np.random.randint(8), np.random.randint(8)
    y1, y2 = np.clip([cy - side // 2, cy + side // 2], 0, 8)
    x1, x2 = np.clip([cx - side // 2, cx + side // 2], 0, 8)
    box_lam = 1 - (y2 - y1) * (x2 - x1) / 64  # recomputed from the clipped box
    np.random.seed(4)
    mixed, targets = CutmixOperator(class_num=10, alpha=1.0)(images, labels)
    pasted = images.copy()
    pasted[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    np.testing.assert_array_equal(mixed, pasted)
    np.testing.assert_allclose(targets, box_lam * np.eye(10)[labels] +
                               (1 - box_lam) * np.eye(10)[labels[perm]], rtol=1e-6)
    assert 0 < box_lam < 1

    np.random.seed(0)
    random.seed(0)
    never = OpSampler(10, MixupOperator={'alpha': 0.8, 'prob': 0.0})
    assert never(images, labels)[1] is labels  # the batch left as it is: hard labels
    always = MixCollate(OpSampler(10, CutmixOperator={'alpha': 1.0, 'prob': 1.0}))
    batch = always([(img, np.array([lb])) for img, lb in zip(images, labels)])
    assert batch[0].shape == (6, 3, 8, 8) and batch[1].shape == (6, 10)
    with pytest.raises(PruneConfigError, match="probabilities that sum to at most 1"):
        OpSampler(10, MixupOperator={'prob': 0.6}, CutmixOperator={'prob': 0.6})


def test_celoss_takes_soft_targets_as_paddleclas():
    logits = paddle.to_tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
    soft = paddle.to_tensor([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6]])
    logp = paddle.nn.functional.log_softmax(logits).numpy()

    def softmax(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    # no epsilon: PaddleClas takes softmax(target) as the soft label
    expected = -(softmax(soft.numpy()) * logp).sum(axis=1).mean()
    assert float(CELoss()(logits, soft)) == pytest.approx(expected, rel=1e-5)
    # epsilon: the soft target is label-smoothed
    smoothed = soft.numpy() * 0.9 + 0.1 / 3
    assert float(CELoss(epsilon=0.1)(logits, soft)) == pytest.approx(
        -(smoothed * logp).sum(axis=1).mean(), rel=1e-5)
    hard = paddle.to_tensor([[0], [2]])
    assert float(CELoss()(logits, hard)) == pytest.approx(-(logp[0, 0] + logp[1, 2]) / 2,
                                                          rel=1e-5)


@pytest.mark.parametrize('overrides, message', [
    (['DataLoader.Train.dataset.transform_ops.3={GridMask: {d1: 96}}'],
     "error: DataLoader.Train.dataset.transform_ops.3='GridMask' is not allowed: expected an "
     "operator of the plugin's trainer"),
    (['DataLoader.Train.sampler.batch_size=1000', 'DataLoader.Train.sampler.drop_last=True'],
     "error: DataLoader.Train.sampler.batch_size=1000 is not allowed: expected a batch size the "
     "dataset (320 samples per process) can fill at least once: 0 steps per epoch"),
    (['AMP.use_amp=True', 'AMP.level=O3'], "error: AMP.level='O3' is not allowed"),
    (['Optimizer.name=Lamb'], "error: Optimizer.name='Lamb' is not allowed: expected one of "
                              "['Adam', 'AdamW', 'Momentum', 'RMSProp', 'SGD']"),
])
def test_bad_configs_stop_in_one_line(stock_config, tmp_path, overrides, message):
    result = run(['prune-train', '-c', stock_config, '-o', f"Global.output_dir={tmp_path}",
                  *overrides], tmp_path)
    lines = stderr_lines(result)
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith(message), lines[0]
    assert 'Traceback' not in result.stderr
    assert not list(tmp_path.rglob('*.pdparams'))
