"""Every shipped PaddleClas config loads, validates and builds its pruner (no data needed)."""
import glob
import os

import pytest

from prune_plugin.adapters.ppcls_config import load_config, validate_config
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
