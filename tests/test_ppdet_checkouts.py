"""A user's PaddleDetection checkout, trained sparse three ways, on the generated COCO-format data.

The "checkout" is written here in ppdet's real style: ``!Tag`` datasets and schedulers,
``_BASE_`` lists, a reader with ppdet's common transforms, ppdet's built-in
``UnstructuredPruner`` slim file, all in a folder not named after the suite, with the data in
the layout the configs name (``dataset/coco``). A small PicoDet (LCNet x0.5, EMA) trains on 8
images of 128 px, batch 4: 2 steps per epoch. The GMP schedule (ratio 0.75, conv1x1 weights,
local): 0.15 after step 1, 0.675 after step 2, 0.75 from step 3 on.

(a) ``prune-train`` from that folder (the wheel's ppdet): 1 epoch with ``--eval``, then
    ``-r model_final`` to 2 epochs without eval: ``best_model`` (iteration 2) and
    ``model_final`` (iteration 4) now differ; ``prune-eval`` and ``prune-export`` of them;
(b) ppdet-style ``tools/train.py`` of the checkout with the one hook line, ppdet's
    ``--slim_config`` built-in file, 2 epochs uninterrupted: the same masks as (a)'s resumed run;
(c) a clone layout (the wheel's ppdet copied in, with a marker and develop's checkpoint
    layout: weights in ``save_dir/``): its package runs, ``.pdprune`` lands beside the
    weights and ``-r`` finds it.
"""
import collections
import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

BIN = os.path.dirname(sys.executable)
RATIO_AFTER = {2: 0.675, 4: 0.75}       # GMP ratio in force after n optimizer steps


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


CONFIGS = {
    'configs/datasets/coco_detection.yml': """\
        metric: COCO
        num_classes: 3
        TrainDataset:
          !COCODataSet
            image_dir: train
            anno_path: annotations/instances_train.json
            dataset_dir: dataset/coco
            data_fields: ['image', 'gt_bbox', 'gt_class', 'is_crowd']
            sample_num: 8
        EvalDataset:
          !COCODataSet
            image_dir: val
            anno_path: annotations/instances_val.json
            dataset_dir: dataset/coco
            allow_empty: true
            sample_num: 4
        TestDataset:
          !ImageFolder
            anno_path: annotations/instances_val.json
            dataset_dir: dataset/coco
        """,
    'configs/runtime.yml': """\
        use_gpu: false
        use_xpu: false
        log_iter: 1
        save_dir: output
        snapshot_epoch: 1
        print_flops: false
        print_params: false
        worker_num: 0
        """,
    'configs/picodet/_base_/picodet_tiny_lcnet.yml': """\
        architecture: PicoDet
        pretrain_weights: null
        use_ema: true
        PicoDet: {backbone: LCNet, neck: CSPPAN, head: PicoHeadV2}
        LCNet: {scale: 0.5, feature_maps: [3, 4, 5]}
        CSPPAN: {out_channels: 64, use_depthwise: true, num_csp_blocks: 1, num_features: 4}
        PicoHeadV2:
          conv_feat:
            name: PicoFeat
            feat_in: 64
            feat_out: 64
            num_convs: 2
            num_fpn_stride: 4
            norm_type: bn
            share_cls_reg: true
            use_se: true
          feat_in_chan: 64
          fpn_stride: [8, 16, 32, 64]
          prior_prob: 0.01
          reg_max: 7
          cell_offset: 0.5
          grid_cell_scale: 5.0
          static_assigner_epoch: 100
          use_align_head: true
          static_assigner: {name: ATSSAssigner, topk: 4, force_gt_matching: false}
          assigner: {name: TaskAlignedAssigner, topk: 13, alpha: 1.0, beta: 6.0}
          loss_class: {name: VarifocalLoss, use_sigmoid: false, iou_weighted: true, loss_weight: 1.0}
          loss_dfl: {name: DistributionFocalLoss, loss_weight: 0.5}
          loss_bbox: {name: GIoULoss, loss_weight: 2.5}
          nms: {name: MultiClassNMS, nms_top_k: 100, keep_top_k: 20, score_threshold: 0.025, nms_threshold: 0.6}
        """,
    'configs/picodet/_base_/optimizer_2e.yml': """\
        epoch: 2
        LearningRate:
          base_lr: 0.05
          schedulers:
          - !CosineDecay
            max_epochs: 2
          - !LinearWarmup
            start_factor: 0.1
            steps: 2
        OptimizerBuilder:
          optimizer: {momentum: 0.9, type: Momentum}
          regularizer: {factor: 0.00004, type: L2}
        """,
    'configs/picodet/_base_/picodet_128_reader.yml': """\
        eval_size: &eval_size [128, 128]
        TrainReader:
          sample_transforms:
          - Decode: {}
          - Resize: {interp: 2, target_size: *eval_size, keep_ratio: false}
          batch_transforms:
          - NormalizeImage: {is_scale: true, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
          - Permute: {}
          - PadGT: {}
          batch_size: 4
          shuffle: false
          drop_last: true
        EvalReader:
          sample_transforms:
          - Decode: {}
          - Resize: {interp: 2, target_size: *eval_size, keep_ratio: false}
          - NormalizeImage: {is_scale: true, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
          - Permute: {}
          batch_transforms:
          - PadBatch: {pad_to_stride: 32}
          batch_size: 4
          shuffle: false
        TestReader:
          inputs_def:
            image_shape: [1, 3, 128, 128]
          sample_transforms:
          - Decode: {}
          - Resize: {interp: 2, target_size: *eval_size, keep_ratio: false}
          - NormalizeImage: {is_scale: true, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
          - Permute: {}
          batch_transforms:
          - PadBatch: {pad_to_stride: 32}
          batch_size: 1
        """,
    'configs/picodet/picodet_tiny.yml': """\
        _BASE_: [
          '../datasets/coco_detection.yml',
          '../runtime.yml',
          '_base_/picodet_tiny_lcnet.yml',
          '_base_/optimizer_2e.yml',
          '_base_/picodet_128_reader.yml',
        ]
        weights: output/picodet_tiny/model_final
        """,
    'configs/picodet/picodet_tiny_prune.yml': """\
        _BASE_: ['picodet_tiny.yml']
        weights: output/picodet_tiny_prune/model_final
        slim: UnstructuredPrune
        UnstructuredPrune:
          ratio: 0.75
          prune_params_type: conv1x1_only
          local_sparsity: true
          gmp: {stable_epochs: 0, pruning_epochs: 1, tunning_epochs: 1, pruning_steps: 2, initial_ratio: 0.15}
        """,
    # ppdet's built-in block, as configs/slim/prune/picodet_m_unstructured_prune_75.yml has it
    'configs/slim/prune/picodet_unstructured_prune_75.yml': """\
        slim: UnstructuredPruner

        UnstructuredPruner:
            stable_epochs: 0
            pruning_epochs: 1
            tunning_epochs: 1
            pruning_steps: 2
            ratio: 0.75
            initial_ratio: 0.15
            prune_params_type: conv1x1_only
        """,
}

# A training script in the style of ppdet's tools/train.py (written for this test), with the
# one line a user adds after ppdet's imports.
HOOKED_TRAIN = """\
    import os
    import sys

    sys.path.insert(0, os.path.abspath(os.path.join(__file__, '..', '..')))

    import paddle
    from ppdet.core.workspace import load_config, merge_config
    from ppdet.engine import Trainer, init_parallel_env, set_random_seed
    from ppdet.slim import build_slim_model
    from ppdet.utils.cli import ArgsParser, merge_args
    import ppdet.utils.check as check
    from prune_plugin.ppdet import Trainer      # the hook line


    def main():
        parser = ArgsParser()
        parser.add_argument('--eval', action='store_true', default=False)
        parser.add_argument('-r', '--resume', default=None)
        parser.add_argument('--slim_config', default=None, type=str)
        parser.add_argument('--enable_ce', type=bool, default=False)
        flags = parser.parse_args()
        cfg = load_config(flags.config)
        merge_args(cfg, flags)
        merge_config(flags.opt)
        paddle.set_device('cpu')
        if flags.slim_config:
            cfg = build_slim_model(cfg, flags.slim_config)
        merge_config(flags.opt)
        check.check_config(cfg)
        init_parallel_env()
        if flags.enable_ce:
            set_random_seed(0)
        trainer = Trainer(cfg, mode='train')
        if flags.resume is not None:
            trainer.resume_weights(flags.resume)
        trainer.train(flags.eval)


    if __name__ == '__main__':
        main()
    """


def make_checkout(root):
    """Write the configs, the hooked script and the data (``dataset/coco``) under ``root``."""
    from prune_plugin.demo_data.ppdet_data import ensure_dataset
    for name, text in CONFIGS.items():
        write(root / name, text)
    write(root / 'tools' / 'train.py', HOOKED_TRAIN)
    generated = ensure_dataset('ppdet_coco_shapes', str(root / '.generate'))
    (root / 'dataset').mkdir(exist_ok=True)
    shutil.move(generated, root / 'dataset' / 'coco')
    shutil.rmtree(root / '.generate')
    return root


def run(command, cwd, **extra_env):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', **extra_env}
    env.pop('PADDLEDET_SRC', None)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=1500)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    return log


def load(path):
    import paddle
    return {k: np.asarray(v) for k, v in paddle.load(str(path)).items()}


def conv1x1(state):
    return {k: v for k, v in state.items() if v.ndim == 4 and v.shape[2:] == (1, 1)}


def assert_exact(state, ratio):
    """Every 1x1 conv weight has exactly round(ratio * n) zeros (conv1x1_only, local)."""
    weights = conv1x1(state)
    assert len(weights) > 20
    for name, value in weights.items():
        assert int((value == 0).sum()) == round(ratio * value.size), (name, ratio)


def zero_fraction(state):
    weights = conv1x1(state).values()
    return sum(int((v == 0).sum()) for v in weights) / sum(v.size for v in weights)


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    return make_checkout(tmp_path_factory.mktemp('users') / 'my_detector')


@pytest.fixture(scope='module')
def runs(checkout):
    """(a) prune-train 1 epoch with --eval, resumed to 2 epochs; (b) the hooked script."""
    config = 'configs/picodet/picodet_tiny_prune.yml'
    logs = {'a1': run([os.path.join(BIN, 'prune-train'), '-c', config, '--eval',
                       '--enable_ce', 'true', '-o', 'epoch=1'], checkout)}
    logs['a2'] = run([os.path.join(BIN, 'prune-train'), '-c', config, '--enable_ce=True',
                      '-r', 'output/picodet_tiny_prune/model_final'], checkout)
    logs['b'] = run([sys.executable, 'tools/train.py', '-c', 'configs/picodet/picodet_tiny.yml',
                     '--slim_config', 'configs/slim/prune/picodet_unstructured_prune_75.yml',
                     '--enable_ce', 'True'], checkout)
    return logs


def test_prune_train_from_a_users_folder_plans_saves_and_resumes(checkout, runs):
    folder = checkout / 'output' / 'picodet_tiny_prune'
    assert 'PaddleDetection 2.6.0: ppdet from' in runs['a1'] and '(installed package)' in runs['a1']
    assert ("plan: GMP from the first step, ratio 0.15 rising to 0.75 in 2 steps of 1 "
            "iterations; target reached at iteration 2 = 1 epochs of 2 steps; the run has 2 "
            "iterations = 1 epochs of 2 steps") in runs['a1']
    assert ("the run ends at iteration 2 with 67.5% of the prunable weights pruned, below the "
            "target 75%") in runs['a1']
    assert "result: 67.50% of the prunable weights pruned at iteration 2 (target 75%) (below " \
           "the target" in runs['a1']
    # resumed at the saved iteration, not at epoch x steps; the plan says so
    assert 'resuming at iteration 2' in runs['a2'] and '.pdprune: the pruner' not in runs['a2']
    assert 'result: 75.00% of the prunable weights pruned at iteration 4 (target 75%)' \
        in runs['a2']
    import json
    best = json.load(open(folder / 'best_model.pdprune'))
    final = json.load(open(folder / 'model_final.pdprune'))
    assert (best['iteration'], final['iteration']) == (2, 4)
    for name, iteration in (('best_model', 2), ('model_final', 4)):
        for ext in ('pdparams', 'pdema'):      # EMA weights (evaluated) and trained ones
            assert_exact(load(folder / f'{name}.{ext}'), RATIO_AFTER[iteration])
        # the state was written after the weights it describes
        assert os.stat(folder / f'{name}.pdprune').st_mtime_ns >= \
            os.stat(folder / f'{name}.pdparams').st_mtime_ns


def test_hook_line_with_ppdet_builtin_slim_config_gives_the_resumed_runs_masks(checkout, runs):
    assert 'prune_plugin: UnstructuredPruner on' in runs['b']
    assert 'result: 75.00% of the prunable weights pruned at iteration 4' in runs['b']
    hooked = load(checkout / 'output' / 'picodet_unstructured_prune_75' / 'model_final.pdparams')
    resumed = load(checkout / 'output' / 'picodet_tiny_prune' / 'model_final.pdparams')
    assert_exact(hooked, 0.75)
    assert conv1x1(hooked).keys() == conv1x1(resumed).keys()
    for name, value in conv1x1(hooked).items():
        assert np.array_equal(value == 0, resumed[name] == 0), name


def test_eval_prints_the_sparsity_of_the_file_it_evaluates(checkout, runs):
    """Issue 17 item 9: best_model differs from model_final; the printed value is the file's."""
    folder = checkout / 'output' / 'picodet_tiny_prune'
    printed = {}
    for name in ('best_model', 'model_final'):
        log = run([os.path.join(BIN, 'prune-eval'), '-c', 'configs/picodet/picodet_tiny_prune.yml',
                   '-o', f'weights=output/picodet_tiny_prune/{name}'], checkout)
        assert 'ppdet.engine INFO: Total sample number: 4' in log, log[-3000:]
        match = re.search(rf"prune_plugin: output/picodet_tiny_prune/{name}: total sparsity "
                          r"([\d.]+)%, conv1x1 ([\d.]+)%", log)
        printed[name] = float(match.group(2))
        assert printed[name] == round(100 * zero_fraction(load(folder / f'{name}.pdparams')), 2)
        assert 'weights are dense' not in log
    assert (printed['best_model'], printed['model_final']) == (67.5, 75.0)


def test_eval_warns_when_the_config_prunes_but_the_weights_are_dense(checkout, runs):
    import paddle
    state = paddle.load(str(checkout / 'output' / 'picodet_tiny_prune' / 'model_final.pdparams'))
    dense = {k: paddle.where(v == 0, paddle.full_like(v, 0.01), v) for k, v in state.items()}
    paddle.save(dense, str(checkout / 'dense.pdparams'))
    log = run([os.path.join(BIN, 'prune-eval'), '-c', 'configs/picodet/picodet_tiny_prune.yml',
               '-o', 'weights=dense'], checkout)
    assert ("prune_plugin: the config has 'slim: UnstructuredPrune' but dense has no zero "
            "weights: these weights are dense") in log


def zero_digests(weights):
    """Counter of (shape, digest of the zero positions) over distinct 1x1 conv weights.

    PicoHeadV2 registers each head conv under two names (``head_cls0`` and
    ``head_cls_list.0``): the checkpoint holds it twice, the exported program once.
    """
    distinct = {hashlib.sha1(v.tobytes()).hexdigest(): v for v in weights}
    return collections.Counter(f"{v.shape} {hashlib.sha1((v == 0).tobytes()).hexdigest()}"
                               for v in distinct.values())


def read_exported_zeros(folder, cwd):
    """:func:`zero_digests` of the 1x1 conv weights of an exported model."""
    pir = os.path.exists(os.path.join(cwd, folder, 'model.json'))
    reader = ("import sys, hashlib, numpy as np, paddle\n"
              "m = paddle.jit.load(sys.argv[1])\n"
              "np.savez(sys.argv[2], *[np.asarray(p) for p in m.parameters()\n"
              "                         if len(p.shape) == 4 and tuple(p.shape[2:]) == (1, 1)])\n")
    out = os.path.join(cwd, folder, 'conv1x1.npz')
    run([sys.executable, '-c', reader, f'{folder}/model', out], cwd,
        FLAGS_enable_pir_api='1' if pir else '0')
    with np.load(out) as arrays:
        return zero_digests([arrays[k] for k in arrays.files])


def test_export_keeps_every_zero_in_place(checkout, runs):
    model = 'output/picodet_tiny_prune/model_final'
    # PicoDet exports on Paddle 3 without NMS in the graph (ppdet 2.6's NMS is legacy-IR only)
    run([os.path.join(BIN, 'prune-export'), '-c', 'configs/picodet/picodet_tiny_prune.yml',
         '--output_dir', 'exported', '-o', f'weights={model}', 'export.nms=False'], checkout)
    exported = read_exported_zeros('exported/picodet_tiny_prune', checkout)
    saved = zero_digests(conv1x1(load(checkout / f'{model}.pdparams')).values())
    assert exported == saved and sum(saved.values()) > 20


def test_a_clone_package_wins_and_state_follows_its_checkpoint_layout(checkout, tmp_path):
    """(c) The clone's ppdet runs (marker); develop's layout (weights in save_dir/) is followed."""
    import ppdet
    clone = tmp_path / 'PaddleDetection'
    shutil.copytree(os.path.dirname(ppdet.__file__), clone / 'ppdet',
                    ignore=shutil.ignore_patterns('__pycache__'))
    marker = tmp_path / 'clone_ppdet_was_imported'
    with open(clone / 'ppdet' / '__init__.py', 'a') as f:
        f.write(f"\nopen({str(marker)!r}, 'w').close()\n")
    callbacks = clone / 'ppdet' / 'engine' / 'callbacks.py'
    source = callbacks.read_text()
    release_layout = ("self.save_dir = os.path.join(self.model.cfg.save_dir,\n"
                      "                                     self.model.cfg.filename)")
    start = source.index('class Checkpointer(Callback):')
    at = source.index(release_layout, start)
    callbacks.write_text(source[:at] + "self.save_dir = self.model.cfg.save_dir  # develop"
                         + source[at + len(release_layout):])
    shutil.copytree(checkout / 'configs', clone / 'configs')
    os.symlink(checkout / 'dataset', clone / 'dataset')
    pairing = ['-c', 'configs/picodet/picodet_tiny.yml', '--slim_config',
               'configs/slim/prune/picodet_unstructured_prune_75.yml', '--seed', '0']
    first = run([os.path.join(BIN, 'prune-train'), *pairing, '-o', 'epoch=1', 'save_dir=out'],
                clone)
    assert marker.exists()
    assert f"ppdet from {clone / 'ppdet'} (clone {clone})" in first
    assert sorted(p for p in os.listdir(clone / 'out') if p.startswith('model_final')) == [
        'model_final.pdema', 'model_final.pdopt', 'model_final.pdparams',
        'model_final.pdprune']
    second = run([os.path.join(BIN, 'prune-train'), *pairing, '-r', 'out/model_final',
                  '-o', 'save_dir=out'], clone)
    assert '.pdprune: the pruner continues' not in second
    assert 'prune_plugin: iter 2: prunable sparsity 67.50%' in second
    assert_exact(load(clone / 'out' / 'model_final.pdparams'), 0.75)


def test_an_epoch_of_zero_steps_is_named_as_such(checkout):
    result = subprocess.run([os.path.join(BIN, 'prune-train'), '-c',
                             'configs/picodet/picodet_tiny_prune.yml', '-o',
                             'TrainReader.batch_size=16', 'save_dir=zero_steps'],
                            cwd=checkout, capture_output=True, text=True, timeout=900,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: TrainReader.batch_size=16 is not allowed: expected a batch size the dataset (8 "
        "samples per process) can fill at least once: 0 steps per epoch (drop_last with a "
        "batch larger than the data)")
    assert not (checkout / 'zero_steps').exists()
