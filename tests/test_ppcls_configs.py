"""Every shipped PaddleClas config loads, validates and builds its pruner (no data needed)."""
import glob
import os

import pytest

from prune_plugin.adapters.ppcls.config import load_config, validate_config
from prune_plugin.core.errors import PruneConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, 'configs', 'ppcls', '*.yml')))
EXPECTED = {  # file -> (mode, ratio or threshold, prune_params_type, sparse_block, gmp)
    'mobilenetv1_imagenet_dense.yml': None,
    'mobilenetv1_prune_ratio055.yml': ('ratio', 0.55, None, (1, 1), False),
    'mobilenetv1_prune_threshold001.yml': ('threshold', 0.01, None, (1, 1), False),
    'mobilenetv1_prune_gmp075_conv1x1.yml': ('ratio', 0.75, 'conv1x1_only', (1, 1), True),
    'mobilenetv1_prune_gmp075_conv1x1_block2x1.yml': ('ratio', 0.75, 'conv1x1_only', (2, 1),
                                                      True),
    'mobilenetv1_prune_gmp080_conv1x1.yml': ('ratio', 0.80, 'conv1x1_only', (1, 1), True),
    'mobilenetv1_prune.yml': ('ratio', 0.75, 'conv1x1_only', (1, 1), True),
    'mobilenetv1_prune_demo.yml': ('ratio', 0.75, 'conv1x1_only', (1, 1), True),
    'mobilenetv1_prune_mnist.yml': ('ratio', 0.75, 'conv1x1_only', (1, 1), True),
}


def test_all_configs_are_listed():
    assert sorted(os.path.basename(c) for c in CONFIGS) == sorted(EXPECTED)


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_validates_and_builds(path):
    from paddleclas.ppcls.arch import build_model

    cfg = load_config(path)
    spec = validate_config(cfg)
    expected = EXPECTED[os.path.basename(path)]
    if expected is None:
        assert spec is None
        return
    mode, amount, kind, block, gmp = expected
    assert (spec.mode, spec.prune_params_type, tuple(spec.sparse_block), spec.gmp is not None) \
        == (mode, kind, block, gmp)
    assert (spec.ratio if mode == 'ratio' else spec.threshold) == amount
    pruner = spec.build(build_model(cfg), steps_per_epoch=100)
    if gmp:
        assert pruner.schedule.target_ratio == amount
    if kind == 'conv1x1_only':
        assert all(tuple(p.shape[2:]) == (1, 1) for p in pruner.params)


def test_overrides_and_base_merge():
    cfg = load_config(os.path.join(REPO, 'configs', 'ppcls', 'mobilenetv1_prune_ratio055.yml'),
                      ['Global.epochs=3', 'DataLoader.Train.dataset.transform_ops.1.RandCropImage'
                       '.size=192', 'UnstructuredPrune.ratio=0.6'])
    assert cfg['Global']['epochs'] == 3
    assert cfg['Global']['image_shape'] == [3, 224, 224]  # from the _BASE_ file
    assert cfg['DataLoader']['Train']['dataset']['transform_ops'][1] == {
        'RandCropImage': {'size': 192}}
    assert validate_config(cfg).ratio == 0.6
    with pytest.raises(PruneConfigError, match='index below'):
        load_config(CONFIGS[0], ['DataLoader.Train.dataset.transform_ops.9.X=1'])
    with pytest.raises(PruneConfigError, match='KEY=VALUE'):
        load_config(CONFIGS[0], ['Global.epochs'])


def test_lr_schedules_follow_paddleclas_semantics():
    from prune_plugin.adapters.ppcls.lr import build_lr

    def values(lr_cfg, epochs, steps, at):
        sched, by_epoch = build_lr(lr_cfg, epochs, steps)
        assert not by_epoch
        seen = []
        for it in range(max(at) + 1):
            seen.append(sched.get_lr())
            sched.step()
        return [seen[i] for i in at]

    piecewise = {'name': 'Piecewise', 'decay_epochs': [2, 4], 'values': [0.1, 0.01, 0.001]}
    assert values(piecewise, 6, 10, [0, 19, 20, 39, 40]) == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001])
    cosine = {'name': 'Cosine', 'learning_rate': 0.1, 'warmup_epoch': 1}
    got = values(cosine, 5, 10, [0, 5, 10, 30, 49])
    assert got[:3] == pytest.approx([0.0, 0.05, 0.1])  # linear warm-up over the first epoch
    assert got[3] == pytest.approx(0.05, abs=1e-9)   # cosine half-way through the other 40 steps
    assert got[4] < 0.001


def test_celoss_label_smoothing():
    import paddle
    from prune_plugin.adapters.ppcls.optim import CELoss

    logits = paddle.to_tensor([[2.0, 0.0, -1.0]])
    label = paddle.to_tensor([[0]])
    logp = paddle.nn.functional.log_softmax(logits).numpy()[0]
    smooth = 0.1
    target = [1 - smooth + smooth / 3, smooth / 3, smooth / 3]
    expected = -sum(t * lp for t, lp in zip(target, logp))
    assert float(CELoss(epsilon=smooth)(logits, label)) == pytest.approx(expected, rel=1e-5)
    assert float(CELoss()(logits, label)) == pytest.approx(-logp[0], rel=1e-5)


def test_amp_level_is_validated():
    cfg = load_config(os.path.join(REPO, 'configs', 'ppcls', 'mobilenetv1_prune_demo.yml'),
                      ['AMP={level: O3}'])
    with pytest.raises(PruneConfigError, match="AMP.level='O3'"):
        validate_config(cfg)


def test_pretrained_weights_of_another_class_count_load_all_but_the_classifier(tmp_path):
    import numpy as np
    import paddle
    from paddleclas.ppcls.arch import build_model
    from prune_plugin.adapters.ppcls.trainer import build_network

    imagenet = build_model({'Arch': {'name': 'MobileNetV1_x0_25', 'class_num': 1000}})
    paddle.save(imagenet.state_dict(), str(tmp_path / 'pretrained.pdparams'))
    cfg = load_config(os.path.join(REPO, 'configs', 'ppcls', 'mobilenetv1_prune_demo.yml'),
                      ['Arch.name=MobileNetV1_x0_25',
                       f"Global.pretrained_model={tmp_path / 'pretrained'}"])
    validate_config(cfg)
    network = build_network(cfg)
    source = imagenet.state_dict()
    loaded = skipped = 0
    for name, value in network.state_dict().items():
        if list(value.shape) == list(source[name].shape):
            np.testing.assert_array_equal(value.numpy(), source[name].numpy())
            loaded += 1
        else:
            skipped += 1
    assert skipped == 2 and loaded == len(source) - 2  # fc weight and bias: 1000 vs 10 classes
