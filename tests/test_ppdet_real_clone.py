"""Optional: a real PaddleDetection clone's own configs, on tiny data in the clone's layout.

Runs only when ``PADDLEDET_SRC`` names a clone (release/2.6 or develop); skipped otherwise, and
the skip says so. Nothing is written in the clone: the runs start in a temporary folder that
holds the data (``dataset/coco``, ``dataset/voc``, written by
:func:`prune_plugin.demo_data.ppdet_data.write_clone_layout`) and the outputs; ``prune-train``
finds the clone through ``$PADDLEDET_SRC`` and runs its ppdet.

- the documented pairing ``picodet_m_320_coco_pruner.yml`` + ``--slim_config
  picodet_m_unstructured_prune_75.yml`` (ppdet's built-in block, its GMP shortened with ``-o``):
  exactly 75% of every 1x1 conv weight zero after 4 steps, resumed after 2;
- ``yolov3_mobilenet_v1_270e_voc.yml`` with a user's threshold block: every pruned weight 0,
  every kept one >= 0.01, eval and export keep the zeros.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

CLONE = os.environ.get('PADDLEDET_SRC')
pytestmark = pytest.mark.skipif(not CLONE, reason="PADDLEDET_SRC is not set: no real "
                                                  "PaddleDetection clone to run")
BIN = os.path.dirname(sys.executable)
SMALL = ['use_gpu=false', 'pretrain_weights=null', 'worker_num=0', 'TrainReader.batch_size=4',
         'TrainDataset.sample_num=8', 'EvalDataset.sample_num=4', 'snapshot_epoch=1']


def run(args, cwd):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONDONTWRITEBYTECODE': '1'}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=1800)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    return log


def weights(path):
    import paddle
    return {k: np.asarray(v) for k, v in paddle.load(str(path)).items()}


def checkpoint(folder, name):
    """Where the clone saved ``name``: ``<folder>/<name>`` (develop) or one level down (2.6)."""
    direct = os.path.join(folder, f'{name}.pdparams')
    if os.path.exists(direct):
        return os.path.join(folder, name)
    [sub] = [d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))
             and os.path.exists(os.path.join(folder, d, f'{name}.pdparams'))]
    return os.path.join(folder, sub, name)


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    from prune_plugin.demo_data.ppdet_data import write_clone_layout
    folder = tmp_path_factory.mktemp('real_clone_runs')
    write_clone_layout(str(folder), 'coco')
    write_clone_layout(str(folder), 'voc')
    return folder


def test_picodet_pairing_reaches_exactly_75_percent_and_resumes(work):
    pairing = ['-c', os.path.join(CLONE, 'configs/picodet/legacy_model/pruner/'
                                         'picodet_m_320_coco_pruner.yml'),
               '--slim_config', os.path.join(CLONE, 'configs/slim/prune/'
                                                    'picodet_m_unstructured_prune_75.yml'),
               '-o', *SMALL, 'save_dir=picodet', 'UnstructuredPruner.pruning_epochs=1',
               'UnstructuredPruner.tunning_epochs=1', 'UnstructuredPruner.pruning_steps=2']
    first = run([os.path.join(BIN, 'prune-train'), *pairing, 'epoch=1'], work)
    assert f"(clone {os.path.abspath(CLONE)})" in first
    model = checkpoint(work / 'picodet', 'model_final')
    assert json.load(open(model + '.pdprune'))['iteration'] == 2
    second = run([os.path.join(BIN, 'prune-train'), *pairing, 'epoch=2', '-r', model], work)
    assert 'resuming at iteration 2' in second
    state = weights(model + '.pdparams')
    ones = {k: v for k, v in state.items() if v.ndim == 4 and v.shape[2:] == (1, 1)}
    assert len(ones) > 50
    assert all(int((v == 0).sum()) == round(0.75 * v.size) for v in ones.values())


def test_yolov3_voc_threshold_trains_evaluates_and_exports_sparse(work):
    config = work / 'yolov3_voc_prune.yml'
    config.write_text(f"_BASE_: ['{CLONE}/configs/yolov3/yolov3_mobilenet_v1_270e_voc.yml']\n"
                      "slim: UnstructuredPrune\nUnstructuredPrune: {mode: threshold, "
                      "threshold: 0.01}\n")
    run([os.path.join(BIN, 'prune-train'), '-c', str(config), '-o', *SMALL, 'epoch=1',
         'TrainReader.use_shared_memory=false', 'save_dir=yolo'], work)
    model = checkpoint(work / 'yolo', 'model_final')
    state = {k: v for k, v in weights(model + '.pdparams').items()
             if v.ndim == 4 and 'norm' not in k}
    assert all(np.all((v == 0) | (np.abs(v) >= 0.01)) for v in state.values())
    zeros = sum(int((v == 0).sum()) for v in state.values())
    assert zeros / sum(v.size for v in state.values()) == pytest.approx(
        json.load(open(model + '.pdprune'))['sparsity'], abs=1e-6)
    log = run([os.path.join(BIN, 'prune-eval'), '-c', str(config), '-o', 'use_gpu=false',
               'EvalDataset.sample_num=4', f'weights={model}'], work)
    assert 'mAP(0.50, 11point)' in log
    run([os.path.join(BIN, 'prune-export'), '-c', str(config), '--output_dir', 'exported',
         '-o', f'weights={model}'], work)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_ppdet_checkouts import conv1x1, read_exported_zeros, zero_digests
    assert read_exported_zeros('exported/yolov3_voc_prune', work) == zero_digests(
        conv1x1(weights(model + '.pdparams')).values())
