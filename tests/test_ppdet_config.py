"""PaddleDetection adapter, no training: config reading, demo data, the Paddle 3 PadGT fix."""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from prune_plugin.demo_data import ppdet_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, 'configs', 'ppdet')


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr('prune_plugin.demo_data.ppdet_data.data_root', lambda: str(tmp_path))
    monkeypatch.chdir(tmp_path)   # configs say data/ppdet_*: relative to the working folder
    return tmp_path


def _config(tmp_path, text, base='picodet_m_prune_demo.yml'):
    path = tmp_path / 'case.yml'
    path.write_text(f"_BASE_: ['{os.path.join(CONFIGS, base)}']\n{text}")
    return str(path)


def test_demo_data_is_deterministic_voc_and_coco(tmp_path):
    first = ppdet_data.ensure_dataset('ppdet_voc_shapes', str(tmp_path / 'a'))
    second = ppdet_data.ensure_dataset('ppdet_voc_shapes', str(tmp_path / 'b'))
    for name in ('trainval.txt', 'Annotations/train_0007.xml', 'JPEGImages/val_0003.jpg'):
        with open(os.path.join(first, name), 'rb') as a:
            with open(os.path.join(second, name), 'rb') as b:
                assert a.read() == b.read(), name
    assert len(open(os.path.join(first, 'trainval.txt')).readlines()) == 48
    assert len(open(os.path.join(first, 'test.txt')).readlines()) == 16
    coco = ppdet_data.ensure_dataset('ppdet_coco_shapes', str(tmp_path / 'a'))
    val = json.load(open(os.path.join(coco, 'annotations', 'instances_val.json')))
    assert len(val['images']) == 16 and [c['name'] for c in val['categories']] == list(
        ppdet_data.CLASSES)
    assert all(1 <= len([a for a in val['annotations'] if a['image_id'] == im['id']]) <= 3
               for im in val['images'])


def test_demo_data_first_use_by_two_processes_at_once_gives_one_complete_dataset(tmp_path):
    """Two ranks (or two test workers) generating the same dataset at once: both return the
    complete folder, no staging folder is left; a half-written leftover is replaced."""
    leftover = tmp_path / 'ppdet_voc_shapes'
    (leftover / 'JPEGImages').mkdir(parents=True)
    (leftover / 'trainval.txt').write_text('JPEGImages/half.jpg Annotations/half.xml\n')
    code = ('import sys; from prune_plugin.demo_data import ppdet_data; '
            'print(ppdet_data.ensure_dataset("ppdet_voc_shapes", sys.argv[1]))')
    procs = [subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(leftover)}
    assert sorted(os.listdir(tmp_path)) == ['ppdet_voc_shapes']  # no staging folder left
    lines = (leftover / 'trainval.txt').read_text().splitlines()
    assert len(lines) == 48 and 'half' not in ''.join(lines)
    assert len(os.listdir(leftover / 'JPEGImages')) == 64 and (leftover / '.complete').is_file()


def test_demo_config_reads_through_ppdet_datasets(data_dir):
    from prune_plugin.adapters.ppdet.config import load_ppdet_config
    cfg, spec = load_ppdet_config(os.path.join(CONFIGS, 'yolov3_prune_demo.yml'))
    assert (spec.mode, spec.threshold) == ('threshold', 0.01)
    assert 'slim' not in cfg and 'UnstructuredPrune' not in cfg
    dataset = cfg['TrainDataset']
    assert dataset.dataset_dir == os.path.join(str(data_dir), 'ppdet_voc_shapes')
    dataset.parse_dataset()
    assert len(dataset.roidbs) == 48
    assert {int(c) for r in dataset.roidbs for c in r['gt_class'].ravel()} == {0, 1, 2}

    cfg, spec = load_ppdet_config(os.path.join(CONFIGS, 'picodet_m_prune_demo.yml'),
                                  {'TrainDataset': {'sample_num': 8}})
    assert (spec.ratio, spec.prune_params_type, spec.local_sparsity) == (0.75, 'conv1x1_only', True)
    assert spec.gmp_configs(steps_per_epoch=12) == {
        'pruning_steps': 4, 'initial_ratio': 0.15, 'stable_iterations': 0,
        'pruning_iterations': 48, 'tunning_iterations': 48}
    cfg['TrainDataset'].parse_dataset()
    assert len(cfg['TrainDataset'].roidbs) == 8
    assert {'PadGTInt64': {}} in cfg['TrainReader']['batch_transforms']


def test_full_configs_name_the_reference_recipes():
    from prune_plugin.adapters.ppdet.config import load_ppdet_config
    cfg, spec = load_ppdet_config(os.path.join(CONFIGS, 'picodet_m_prune.yml'))
    assert cfg['architecture'] == 'PicoDet' and cfg['use_ema'] is True
    assert cfg['TrainDataset'].dataset_dir == 'dataset/coco'
    assert spec.gmp == {'stable_epochs': 0, 'pruning_epochs': 150, 'tunning_epochs': 150,
                        'pruning_steps': 300, 'initial_ratio': 0.15}
    cfg, spec = load_ppdet_config(os.path.join(CONFIGS, 'yolov3_prune.yml'))
    assert (cfg['architecture'], cfg['num_classes']) == ('YOLOv3', 20)
    assert cfg['TrainDataset'].dataset_dir == 'dataset/voc'
    assert (spec.mode, spec.threshold, spec.gmp) == ('threshold', 0.01, None)


def test_ppdet_builtin_unstructured_pruner_block_runs_through_the_plugin(tmp_path, data_dir):
    from prune_plugin.adapters.ppdet.config import load_ppdet_config
    path = _config(tmp_path, """
slim: UnstructuredPruner
UnstructuredPruner:
  stable_epochs: 0
  pruning_epochs: 150
  tunning_epochs: 150
  pruning_steps: 300
  ratio: 0.75
  initial_ratio: 0.15
  prune_params_type: conv1x1_only
""")
    cfg, spec = load_ppdet_config(path)
    assert spec.name == 'UnstructuredPruner' and spec.local_sparsity
    assert spec.gmp_configs(steps_per_epoch=10)['pruning_iterations'] == 1500
    assert 'slim' not in cfg and not cfg.get('unstructured_prune')


@pytest.mark.parametrize('text, message', [
    ("UnstructuredPrune:\n  ratoi: 0.5\n", "UnstructuredPrune.ratoi"),
    ("UnstructuredPrune:\n  ratio: 1.5\n", "ratio=1.5"),
    ("UnstructuredPrune:\n  gmp: {pruning_epochs: 2, tunning_epochs: 2, pruning_step: 2}\n",
     "UnstructuredPrune.gmp.pruning_step"),
    ("slim: UnstructuredPrun\n", "UnstructuredPrun"),
])
def test_bad_blocks_fail_before_training_naming_the_key(tmp_path, data_dir, text, message):
    from prune_plugin.adapters.ppdet.config import load_ppdet_config
    with pytest.raises(ValueError, match=message.replace('.', r'\.')):
        load_ppdet_config(_config(tmp_path, text))


def test_cli_reports_a_missing_block_in_one_line_and_exit_2(tmp_path):
    """Issue 17 item 8: exactly one stderr line, no traceback, through the real entry."""
    path = tmp_path / 'missing.yml'
    path.write_text(f"_BASE_: ['{os.path.join(CONFIGS, '_base_', 'runtime.yml')}']\n"
                    "architecture: YOLOv3\nslim: UnstructuredPrune\n")
    for command in ([sys.executable, os.path.join(REPO, 'tools', 'train.py')],
                    [os.path.join(os.path.dirname(sys.executable), 'prune-train')]):
        result = subprocess.run([*command, '-c', str(path)], capture_output=True, text=True,
                                cwd=tmp_path, timeout=900,
                                env={**os.environ, 'OMP_NUM_THREADS': '1'})
        assert result.returncode == 2
        lines = [l for l in result.stderr.splitlines() if l.strip() and 'ccache' not in l
                 and 'warnings.warn' not in l and 'numba' not in l]
        assert lines == ["error: UnstructuredPrune=None is not allowed: expected a "
                         "'UnstructuredPrune:' block next to 'slim: UnstructuredPrune'"], \
            result.stderr
        assert 'Traceback' not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ['missing.yml']


def test_padgt_int64_fixes_picodet_assigners_on_paddle3():
    from ppdet.data.transform.batch_operators import PadGT
    from ppdet.modeling.assigners import ATSSAssigner, TaskAlignedAssigner
    from prune_plugin.adapters.ppdet.compat import PadGTInt64, needs_int64_gt_class
    samples = [{'gt_class': np.array([[0], [2]], np.int32),
                'gt_bbox': np.array([[2, 2, 20, 20], [30, 30, 60, 60]], np.float32)},
               {'gt_class': np.array([[1]], np.int32),
                'gt_bbox': np.array([[10, 10, 40, 40]], np.float32)}]
    ys, xs = np.meshgrid(np.arange(8), np.arange(8), indexing='ij')
    centers = np.stack([xs.ravel() * 8 + 4, ys.ravel() * 8 + 4], 1).astype(np.float32)
    anchors = paddle.to_tensor(np.concatenate([centers - 8, centers + 8], 1))

    def assign(transform):
        batch = transform()(copy.deepcopy(samples))
        labels, boxes, mask = (paddle.to_tensor(np.stack([s[k] for s in batch]))
                               for k in ('gt_class', 'gt_bbox', 'pad_gt_mask'))
        atss = ATSSAssigner(topk=9)(anchors, [64], labels, boxes, mask, bg_index=3)[0]
        paddle.seed(0)
        tal = TaskAlignedAssigner(topk=13)(paddle.rand([2, 64, 3]), paddle.rand([2, 64, 4]) * 60,
                                           paddle.to_tensor(centers), [64], labels, boxes, mask,
                                           bg_index=3)[0]
        return atss, tal

    assert needs_int64_gt_class() == (int(paddle.__version__.split('.')[0]) >= 3)
    if needs_int64_gt_class():
        with pytest.raises(TypeError):
            assign(PadGT)
    atss, tal = assign(PadGTInt64)
    assert atss.dtype == paddle.int64 and int((atss != 3).sum()) == 5
    assert set(np.unique(tal.numpy())) <= {0, 1, 2, 3} and int((tal != 3).sum()) > 0


def test_slim_config_file_is_read_like_ppdet_slim_config(tmp_path, data_dir):
    from prune_plugin.adapters.ppdet.config import load_ppdet_config
    base = _config(tmp_path, "slim: null\n")
    slim = tmp_path / 'slim.yml'
    slim.write_text("slim: UnstructuredPrune\nUnstructuredPrune:\n  ratio: 0.5\n"
                    "  sparse_block: [2, 1]\n")
    cfg, spec = load_ppdet_config(base)
    assert spec is None and 'slim' not in cfg
    cfg, spec = load_ppdet_config(base, slim_config=str(slim))
    # merged over the base config's block, as ppdet merges YAML files
    assert (spec.ratio, spec.sparse_block, spec.gmp['pruning_epochs']) == (0.5, (2, 1), 4)
    # ppdet's build_slim_model names the run after the slim file (save_dir/slim/ in 2.6)
    assert cfg['filename'] == 'slim' and 'slim' not in cfg
