"""Smoke run of ``-m benchmarks.suites`` (PP-HumanSeg-Lite demo, 4 iterations, dense and sparse).

The figures it must produce: the sparse checkpoint holds exactly the zeros the configured ratio
asks for, sizes are byte counts with sparse <= dense, and the pruner's time share is measured.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, 'benchmarks')
PPSEG_DEMO = os.path.join(REPO, 'configs', 'ppseg', 'pphumanseg_lite_prune_demo.yml')
PPSEG_ITERS = 4


def _configured_ratio(path):
    """``UnstructuredPrune.ratio`` of a PaddleSeg config, following its ``_base_`` chain."""
    with open(path) as handle:
        cfg = yaml.safe_load(handle)
    block = cfg.get('UnstructuredPrune') or {}
    if 'ratio' in block:
        return block['ratio']
    return _configured_ratio(os.path.join(os.path.dirname(path), cfg['_base_']))


def test_suites_smoke_ppseg(tmp_path):
    out_md, out_json = tmp_path / 'suites.md', tmp_path / 'suites.json'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'benchmarks.suites', '--smoke', '--suites', 'ppseg',
         '--threads', '1', '--work-dir', str(tmp_path / 'runs'), '--out', str(out_md),
         '--json', str(out_json)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = {r['run']: r for r in json.loads(out_json.read_text())['rows']}
    assert list(rows) == ['dense', 'prune_plugin']
    dense, sparse = rows['dense'], rows['prune_plugin']
    assert 'error' not in dense and 'error' not in sparse, (dense.get('error'), sparse.get('error'))

    # exact zeros: round(ratio x N) of the 1x1-conv weights (the demo prunes conv1x1_only, global)
    ratio = _configured_ratio(PPSEG_DEMO)
    n_conv1x1 = sparse['checkpoint']['conv1x1_weights']
    assert n_conv1x1 == dense['checkpoint']['conv1x1_weights'] == 195384
    assert sparse['checkpoint']['conv1x1_zeros'] == round(ratio * n_conv1x1) == 146538
    assert sparse['checkpoint']['expected_zeros'] == sparse['checkpoint']['conv1x1_zeros']
    assert sparse['pruner']['ratio'] == ratio and sparse['pruner']['final_ratio'] == ratio
    assert dense['checkpoint']['conv1x1_zeros'] < 0.001 * n_conv1x1
    assert dense.get('pruner') is None

    # sizes are byte counts; the sparse file is no larger, and deflates far smaller
    for row in (dense, sparse):
        ckpt = row['checkpoint']
        assert isinstance(ckpt['bytes'], int) and ckpt['bytes'] > 500_000
        assert isinstance(ckpt['zlib_bytes'], int) and 0 < ckpt['zlib_bytes'] <= ckpt['bytes']
        assert ckpt['mask_buffers'] == 0  # the plugin keeps no masks in checkpoints
    assert sparse['checkpoint']['bytes'] <= dense['checkpoint']['bytes']
    assert sparse['size_vs_dense'] <= 1.0
    assert sparse['checkpoint']['zlib_bytes'] < 0.6 * dense['checkpoint']['zlib_bytes']

    # the pruner's share: step() ran once per iteration, inside the measured training time
    assert sparse['plugin_calls']['pruner.step'] == PPSEG_ITERS
    assert 0.0 < sparse['plugin_seconds'] < sparse['train_seconds']
    assert sparse['plugin_share'] == sparse['plugin_seconds'] / sparse['train_seconds']
    assert 0.0 < sparse['span_seconds'] < sparse['train_seconds']
    assert sparse['plugin_share'] < sparse['plugin_share_of_loop'] < 1.0
    assert dense['plugin_calls'].get('pruner.step', 0) == 0

    table = out_md.read_text()
    assert '| PaddleSeg PP-HumanSeg-Lite | prune_plugin |' in table
    assert '146,538 (0.75, global): exact' in table


def test_measure_checkpoint_counts_and_masks(tmp_path):
    """Zero counts leave PaddleSlim-style ``*_mask`` buffers out; local rounding per weight."""
    import paddle

    sys.path.insert(0, BENCH)
    from suites.checkpoint import expected_zeros, measure_checkpoint

    a = np.ones((3, 5, 1, 1), np.float32)
    a.flat[:11] = 0
    b = np.ones((2, 3, 1, 1), np.float32)
    state = {'a.weight': a, 'b.weight': b, 'k3.weight': np.zeros((2, 2, 3, 3), np.float32),
             'a.bias': np.zeros(3, np.float32), 'a_w_0_mask': np.zeros((3, 5, 1, 1), np.float32),
             'steps': np.array([7], np.int64)}
    path = str(tmp_path / 'm.pdparams')
    paddle.save(state, path)
    result = measure_checkpoint(path, {'mode': 'ratio', 'ratio': 0.75, 'local_sparsity': True,
                                       'prune_params_type': 'conv1x1_only'})
    assert result['conv1x1_weights'] == 21 and result['conv1x1_zeros'] == 11
    assert result['weights'] == 15 + 6 + 36 + 3 and result['zeros'] == 11 + 36 + 3
    assert result['mask_buffers'] == 1 and result['mask_bytes'] == 60
    assert result['bytes'] == os.path.getsize(path)
    assert result['expected_zeros'] == round(0.75 * 15) + round(0.75 * 6) == 11 + 4
    assert expected_zeros([a, b], 0.75, local_sparsity=False) == round(0.75 * 21) == 16


class _IgnoreTagsLoader(yaml.SafeLoader):
    """ppdet YAML has ``!COCODataSet``-style tags; the prune block has none."""


_IgnoreTagsLoader.add_multi_constructor('!', lambda loader, suffix, node: None)


def test_ppdet_builtin_block_mirrors_the_demo_block():
    """The built-in run gets the demo's ratio, 1x1 convs and GMP epochs in ppdet's own keys."""
    sys.path.insert(0, BENCH)
    from suites.ppdet_builtin import ppdet_builtin_block

    from prune_plugin.core.spec import PruneSpec

    with open(os.path.join(REPO, 'configs', 'ppdet', 'picodet_m_prune_demo.yml')) as handle:
        block = yaml.load(handle, Loader=_IgnoreTagsLoader)['UnstructuredPrune']
    spec = PruneSpec.from_block(block)
    assert ppdet_builtin_block(spec, steps_per_epoch=12) == {
        'ratio': 0.75, 'prune_params_type': 'conv1x1_only', 'pruning_steps': 4,
        'initial_ratio': 0.15, 'stable_epochs': 0, 'pruning_epochs': 4, 'tunning_epochs': 4}
    # iterations convert when they are whole epochs; what ppdet cannot express is refused
    spec_it = PruneSpec.from_block({**block, 'gmp': {
        'stable_iterations': 0, 'pruning_iterations': 48, 'tunning_iterations': 24,
        'pruning_steps': 4, 'initial_ratio': 0.15}})
    assert ppdet_builtin_block(spec_it, steps_per_epoch=12)['tunning_epochs'] == 2
    for change in ({'local_sparsity': False}, {'sparse_block': [2, 1]}):
        with pytest.raises(ValueError):
            ppdet_builtin_block(PruneSpec.from_block({**block, **change}), steps_per_epoch=12)
