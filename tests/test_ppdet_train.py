"""PaddleDetection adapter through ppdet's real Trainer on the generated demo data.

Every run is a ``tools/*.py`` subprocess, as a user runs it. Sizes: 8 training images,
batch 4 (2 steps per epoch), 128x128 inputs, CPU.

Run as a script (``--probe DIR``) this file is the 2-process probe: ``train_main`` with a
callback wrapper that records a digest of every rank's masks after each prune event.
"""
import glob
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, 'configs', 'ppdet')
PICODET = os.path.join(CONFIGS, 'picodet_m_prune_demo.yml')
YOLOV3 = os.path.join(CONFIGS, 'yolov3_prune_demo.yml')
# 2 steps per epoch; GMP over 2 epochs in 2 ratio steps, then 1 epoch at the target:
# ratio 0.15 at iterations 0-1, 0.675 at 2-3, 0.75 from 4 on.
PICODET_OPTS = ['TrainDataset.sample_num=8', 'EvalDataset.sample_num=4',
                'TrainReader.shuffle=false',
                'UnstructuredPrune.gmp.pruning_epochs=2', 'UnstructuredPrune.gmp.tunning_epochs=1',
                'UnstructuredPrune.gmp.pruning_steps=2', 'snapshot_epoch=1']


def ratio_after(iteration):
    """The GMP ratio in force after ``iteration`` optimizer steps (schedule above)."""
    from prune_plugin.core import GMPSchedule
    schedule = GMPSchedule(0.75, 0.15, 0, 4, 2, 2)
    return schedule.ratio_at(iteration - 1)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp('ppdet')


def run_tool(workdir, tool, config, *args, launch=None):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PRUNE_PLUGIN_DATA': str(workdir / 'data'),
           'PYTHONPATH': REPO}
    command = [sys.executable]
    if launch:
        command += ['-m', 'paddle.distributed.launch', '--nproc_per_node', '2',
                    '--log_dir', str(workdir / 'launch_log'), *launch]
    else:
        command += [os.path.join(REPO, 'tools', tool)]
    command += ['-c', config, *args]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                            timeout=400)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    return log


def load_weights(path):
    import paddle
    return {k: np.asarray(v) for k, v in paddle.load(str(path)).items()}


def conv1x1_weights(state):
    return {k: v for k, v in state.items() if v.ndim == 4 and v.shape[2:] == (1, 1)}


def assert_exact_local_sparsity(state, ratio):
    """conv1x1_only + local_sparsity: every 1x1 conv weight has exactly round(ratio * n) zeros."""
    weights = conv1x1_weights(state)
    assert len(weights) > 50
    for name, value in weights.items():
        assert int((value == 0).sum()) == round(ratio * value.size), (name, ratio)


def masks_of(state):
    return {k: v == 0 for k, v in conv1x1_weights(state).items()}


@pytest.fixture(scope='module')
def picodet_runs(workdir):
    """One uninterrupted 3-epoch run, and the same run stopped after epoch 1 then resumed."""
    logs = {}
    logs['full'] = run_tool(workdir, 'train.py', PICODET, '--seed', '0', '--use_vdl',
                            '--vdl_log_dir', str(workdir / 'vdl'), '-o', *PICODET_OPTS,
                            'epoch=3', 'save_dir=full')
    logs['part1'] = run_tool(workdir, 'train.py', PICODET, '--seed', '0', '-o', *PICODET_OPTS,
                             'epoch=1', 'save_dir=split')
    os.rename(workdir / 'split/picodet_m_prune_demo/model_final.pdparams',
              workdir / 'split/picodet_m_prune_demo/0.pdparams')
    for ext in ('pdema', 'pdopt', 'pdprune'):
        os.rename(workdir / f'split/picodet_m_prune_demo/model_final.{ext}',
                  workdir / f'split/picodet_m_prune_demo/0.{ext}')
    logs['part2'] = run_tool(workdir, 'train.py', PICODET, '--seed', '0', '-r',
                             'split/picodet_m_prune_demo/0', '-o', *PICODET_OPTS,
                             'epoch=3', 'save_dir=split')
    return logs


def test_picodet_ema_checkpoints_are_exactly_sparse(workdir, picodet_runs):
    folder = workdir / 'full' / 'picodet_m_prune_demo'
    for name, iteration in (('0', 2), ('1', 4), ('model_final', 6)):
        state = json.load(open(folder / f'{name}.pdprune'))
        assert state['iteration'] == iteration
        ratio = ratio_after(iteration)
        assert state['sparsity'] == pytest.approx(ratio, abs=1e-3)
        # .pdparams holds the EMA weights ppdet evaluates, .pdema the trained ones: both sparse
        for ext in ('pdparams', 'pdema'):
            assert_exact_local_sparsity(load_weights(folder / f'{name}.{ext}'), ratio)
    assert ratio_after(2) == 0.15 and ratio_after(4) == pytest.approx(0.675)
    assert ratio_after(6) == 0.75


def test_picodet_logs_sparsity_with_ppdet_logger_and_visualdl(workdir, picodet_runs):
    lines = [l for l in picodet_runs['full'].splitlines() if 'prune_plugin: iter' in l]
    assert any('prunable sparsity 15.00%' in l and 'conv1x1' in l for l in lines)
    assert any('prunable sparsity 75.00%' in l for l in lines)
    assert all('prune_plugin.ppdet INFO' in l for l in lines)
    records = b''.join(open(f, 'rb').read() for f in glob.glob(str(workdir / 'vdl' / '*')))
    for tag in (b'sparsity/total', b'sparsity/conv1x1', b'sparsity/prunable', b'loss'):
        assert tag in records


def test_resume_continues_gmp_and_reaches_the_same_masks(workdir, picodet_runs):
    assert 'prune_plugin: iter 2: prunable sparsity 15.00%' in picodet_runs['part2']
    resumed = workdir / 'split' / 'picodet_m_prune_demo'
    assert json.load(open(resumed / 'model_final.pdprune'))['iteration'] == 6
    full = load_weights(workdir / 'full/picodet_m_prune_demo/model_final.pdparams')
    split = load_weights(resumed / 'model_final.pdparams')
    full_masks, split_masks = masks_of(full), masks_of(split)
    assert full_masks.keys() == split_masks.keys()
    assert all(np.array_equal(full_masks[k], split_masks[k]) for k in full_masks)
    assert_exact_local_sparsity(split, 0.75)


def test_resume_without_state_file_derives_the_iteration_from_the_epoch(workdir, picodet_runs):
    import shutil
    source, target = workdir / 'split' / 'picodet_m_prune_demo', workdir / 'nostate'
    target.mkdir()
    for ext in ('pdparams', 'pdema', 'pdopt'):   # a checkpoint without .pdprune
        shutil.copy(source / f'0.{ext}', target / f'0.{ext}')
    log = run_tool(workdir, 'train.py', PICODET, '--seed', '0', '-r', 'nostate/0', '-o',
                   *PICODET_OPTS, 'epoch=2', 'save_dir=nostate_out')
    assert 'the pruner continues at iteration 2 (= epoch 1 x 2 steps)' in log
    state = json.load(open(workdir / 'nostate_out/picodet_m_prune_demo/model_final.pdprune'))
    assert state['iteration'] == 4
    resumed = load_weights(workdir / 'nostate_out/picodet_m_prune_demo/model_final.pdparams')
    uninterrupted = load_weights(workdir / 'full/picodet_m_prune_demo/1.pdparams')
    assert_exact_local_sparsity(resumed, ratio_after(4))
    resumed_masks, uninterrupted_masks = masks_of(resumed), masks_of(uninterrupted)
    assert resumed_masks.keys() == uninterrupted_masks.keys()
    assert all(np.array_equal(resumed_masks[k], uninterrupted_masks[k]) for k in resumed_masks)


def test_yolov3_threshold_train_eval_export_stay_sparse(workdir):
    log = run_tool(workdir, 'train.py', YOLOV3, '--eval', '-o', 'TrainDataset.sample_num=8',
                   'EvalDataset.sample_num=4', 'epoch=1', 'save_dir=yolo')
    assert 'mAP(0.50, 11point)' in log
    folder = workdir / 'yolo' / 'yolov3_prune_demo'
    state = json.load(open(folder / 'model_final.pdprune'))
    weights = load_weights(folder / 'model_final.pdparams')
    # threshold mode: every pruned weight is zero and every kept one is >= 0.01 in size
    prunable = {k: v for k, v in weights.items() if v.ndim == 4 and 'norm' not in k}
    zeros = sum(int((v == 0).sum()) for v in prunable.values())
    total = sum(v.size for v in prunable.values())
    assert zeros / total == pytest.approx(state['sparsity'], abs=1e-6)
    assert 0.2 < state['sparsity'] < 0.6
    assert all(np.all((v == 0) | (np.abs(v) >= 0.01)) for v in prunable.values())
    # (a run where best_model and model_final differ is tests/test_ppdet_checkouts.py)
    model = str(folder / 'model_final')
    log = run_tool(workdir, 'eval.py', YOLOV3, '-o', f'weights={model}', 'EvalDataset.sample_num=4')
    assert 'mAP(0.50, 11point)' in log
    ones = conv1x1_weights(weights).values()
    conv1x1 = sum(int((v == 0).sum()) for v in ones) / sum(v.size for v in ones)
    printed = re.search(r"model_final: total sparsity [\d.]+%, conv1x1 ([\d.]+)%", log).group(1)
    assert float(printed) == round(100 * conv1x1, 2) and conv1x1 > 0.05
    run_tool(workdir, 'export_model.py', YOLOV3, '--output_dir', 'exported', '-o',
             f'weights={model}')
    # the exported program is in the legacy format: read it in a legacy-IR process
    reader = ("import sys, numpy as np, paddle; m = paddle.jit.load(sys.argv[1]); "
              "print(sum(int((np.asarray(p) == 0).sum()) for p in m.parameters() "
              "if len(p.shape) == 4))")
    result = subprocess.run([sys.executable, '-c', reader,
                             str(workdir / 'exported' / 'yolov3_prune_demo' / 'model')],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, 'FLAGS_enable_pir_api': '0', 'OMP_NUM_THREADS': '1'})
    assert int(result.stdout.strip().splitlines()[-1]) == zeros


def test_ppdet_builtin_pruner_slim_config_trains_through_the_plugin(workdir):
    slim = workdir / 'picodet_m_unstructured_prune_75.yml'
    slim.write_text("slim: UnstructuredPruner\nUnstructuredPruner:\n  stable_epochs: 0\n"
                    "  pruning_epochs: 150\n  tunning_epochs: 150\n  pruning_steps: 300\n"
                    "  ratio: 0.75\n  initial_ratio: 0.15\n  prune_params_type: conv1x1_only\n")
    log = run_tool(workdir, 'train.py', PICODET, '--slim_config', str(slim), '-o',
                   'TrainDataset.sample_num=8', 'epoch=1', 'save_dir=builtin')
    assert 'prune_plugin: UnstructuredPruner on' in log
    from prune_plugin.core import GMPSchedule
    # 2 steps/epoch: 300 iterations in 300 ratio steps; after 2 steps the ratio of iteration 1
    ratio = GMPSchedule(0.75, 0.15, 0, 300, 300, 300).ratio_at(1)
    assert 0.15 < ratio < 0.16
    assert_exact_local_sparsity(
        load_weights(workdir / 'builtin/picodet_m_unstructured_prune_75/model_final.pdparams'),
        ratio)   # ppdet names the run after the slim file


@pytest.mark.parametrize('fleet', [False, True], ids=['DataParallel', 'fleet'])
def test_two_processes_keep_identical_masks(workdir, fleet):
    probe = workdir / f'probe{int(fleet)}'
    flags = ['--fleet'] if fleet else []
    run_tool(workdir, None, PICODET, '--probe', str(probe), *flags, '-o',
             'TrainDataset.sample_num=8', 'TrainReader.batch_size=2', 'epoch=2',
             f'save_dir=dist{int(fleet)}',
             'UnstructuredPrune.gmp.pruning_epochs=1', 'UnstructuredPrune.gmp.tunning_epochs=1',
             'UnstructuredPrune.gmp.pruning_steps=2',
             launch=[os.path.abspath(__file__)])
    ranks = [json.load(open(probe / f'rank{r}.json')) for r in (0, 1)]
    assert [e['iteration'] for e in ranks[0]] == [1, 2, 3]   # events at iterations 0, 1, 2
    assert [round(e['sparsity'], 3) for e in ranks[0]] == [0.15, 0.675, 0.75]
    assert ranks[0] == ranks[1]
    final = workdir / f'dist{int(fleet)}' / 'picodet_m_prune_demo' / 'model_final.pdparams'
    assert_exact_local_sparsity(load_weights(final), 0.75)


def _probe_main(argv):
    """Run train_main, recording each rank's mask digests after every prune event."""
    index = argv.index('--probe')
    out = argv[index + 1]
    del argv[index:index + 2]
    import paddle.distributed as dist
    from prune_plugin.adapters.ppdet import main as adapter
    from prune_plugin.adapters.ppdet.callback import PruneCallback
    events = []
    original_step_end = PruneCallback.on_step_end
    original_train_end = PruneCallback.on_train_end

    def on_step_end(self, status):
        before = self.pruner.sparsity()
        original_step_end(self, status)
        if status.get('mode') == 'train' and self.pruner.sparsity() != before:
            digest = hashlib.sha1()
            for name in sorted(self.pruner.masks):
                digest.update(name.encode())
                digest.update(self.pruner.masks[name].numpy().tobytes())
            events.append({'iteration': self.pruner.iteration, 'digest': digest.hexdigest(),
                           'sparsity': self.pruner.sparsity()})

    def on_train_end(self, status):
        original_train_end(self, status)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, f'rank{dist.get_rank()}.json'), 'w') as f:
            json.dump(events, f)

    PruneCallback.on_step_end = on_step_end
    PruneCallback.on_train_end = on_train_end
    return adapter.train_main(argv)


if __name__ == '__main__':
    sys.exit(_probe_main(sys.argv[1:]))
