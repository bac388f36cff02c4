"""The installed commands' front door: config files of every suite's dialect, suite detection,
clone-first imports and one-line errors (exit 2) before any work starts.

The fixture configs are written here in the suites' real styles: PaddleDetection's ``!Tag`` lines
and ``_BASE_`` lists, PaddleSeg's ``_base_`` string, PaddleClas's sections; all of them in folders
not named after the suite.
"""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from prune_plugin.config_files import ConfigFileError, config_chain, merged_top_level_keys, read_yaml
from prune_plugin.suites import SuiteNotFoundError, detect_suite, locate_suite_source

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def ppdet_style(tmp_path):
    """A YOLOv3-like chain: model file -> [dataset, runtime, optimizer with tags, reader]."""
    root = tmp_path / 'detector_work' / 'cfgs'
    write(root / '_base_' / 'optimizer_270e.yml', """\
        epoch: 270
        LearningRate:
          base_lr: 0.001
          schedulers:
          - !PiecewiseDecay
            gamma: 0.1
            milestones: [216, 243]
          - !LinearWarmup
            start_factor: 0.
            steps: 4000
        OptimizerBuilder:
          optimizer: {momentum: 0.9, type: Momentum}
          regularizer: {factor: 0.0005, type: L2}
        """)
    write(root / 'datasets' / 'voc.yml', """\
        metric: VOC
        num_classes: 20
        TrainDataset:
          !VOCDataSet
            dataset_dir: dataset/voc
            anno_path: trainval.txt
            label_list: label_list.txt
            data_fields: ['image', 'gt_bbox', 'gt_class', 'difficult']
        """)
    write(root / '_base_' / 'yolov3_mobilenet_v1.yml', """\
        architecture: YOLOv3
        YOLOv3: {backbone: MobileNet, neck: YOLOv3FPN, yolo_head: YOLOv3Head}
        """)
    return write(root / 'yolov3_mobilenet_v1_270e_voc.yml', """\
        _BASE_: [
          'datasets/voc.yml',
          '_base_/optimizer_270e.yml',
          '_base_/yolov3_mobilenet_v1.yml',
        ]
        snapshot_epoch: 5
        slim: UnstructuredPrune
        UnstructuredPrune: {mode: threshold, threshold: 0.01}
        """)


def test_ppdet_tags_and_base_lists_are_read_without_ppdet(ppdet_style):
    chain = config_chain(str(ppdet_style))
    assert [os.path.basename(p) for p, _ in chain] == [
        'yolov3_mobilenet_v1_270e_voc.yml', 'voc.yml', 'optimizer_270e.yml',
        'yolov3_mobilenet_v1.yml']
    optimizer = chain[2][1]
    assert optimizer['LearningRate']['schedulers'][0] == {'gamma': 0.1, 'milestones': [216, 243]}
    assert {'architecture', 'TrainDataset', 'LearningRate', 'slim'} <= \
        merged_top_level_keys(str(ppdet_style))
    assert detect_suite(str(ppdet_style), cwd=str(ppdet_style.parent)) == 'ppdet'


def test_paddleseg_base_string_and_paddleclas_sections(tmp_path):
    seg_base = write(tmp_path / 'seg_cfgs' / '_base_' / 'humanseg.yml', """\
        batch_size: 8
        iters: 1000
        train_dataset: {type: Dataset, dataset_root: data/portrait, num_classes: 2}
        """)
    seg = write(tmp_path / 'seg_cfgs' / 'lite' / 'pp_humanseg_lite.yml', """\
        _base_: '../_base_/humanseg.yml'
        model: {type: PPHumanSegLite, num_classes: 2}
        loss:
          types:
          - type: MixedLoss
            losses: [{type: CrossEntropyLoss}, {type: LovaszSoftmaxLoss}]
            coef: [0.8, 0.2]
          coef: [1]
        """)
    cls = write(tmp_path / 'classifier' / 'MobileNetV1.yaml', """\
        Global: {epochs: 120, device: gpu}
        Arch: {name: MobileNetV1, class_num: 1000}
        DataLoader: {Train: {dataset: {name: ImageNetDataset}}}
        """)
    assert seg_base.exists()
    assert detect_suite(str(seg)) == 'ppseg'
    assert detect_suite(str(cls)) == 'ppcls'


@pytest.mark.parametrize('text, message', [
    ("a: [1, 2\nb: 3\n", ":2:"),                 # unclosed flow sequence: the line is named
    ("- just\n- a list\n", "top level is a list"),
    ("key: value\n\tbad: tab\n", ":2:"),
])
def test_bad_yaml_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / 'bad.yml'
    path.write_text(text)
    with pytest.raises(ConfigFileError) as err:
        read_yaml(str(path))
    assert message in str(err.value) and str(path) in str(err.value)
    assert '\n' not in str(err.value)


def test_base_chain_errors_name_the_file(tmp_path):
    missing = write(tmp_path / 'a.yml', "_BASE_: ['nowhere/b.yml']\narchitecture: YOLOv3\n")
    with pytest.raises(ConfigFileError, match=r"a\.yml: base file .*nowhere/b\.yml not found"):
        config_chain(str(missing))
    write(tmp_path / 'loop1.yml', "_BASE_: ['loop2.yml']\n")
    write(tmp_path / 'loop2.yml', "_BASE_: ['loop1.yml']\n")
    with pytest.raises(ConfigFileError, match=r"loop2\.yml: its base chain loops back"):
        config_chain(str(tmp_path / 'loop1.yml'))
    bad = write(tmp_path / 'c.yml', "_base_: {a: 1}\n")
    with pytest.raises(ConfigFileError, match="_base_ must be a file path"):
        config_chain(str(bad))


def test_a_config_of_no_suite_is_refused(tmp_path):
    other = write(tmp_path / 'x.yml', "learning_rate: 0.1\n")
    with pytest.raises(SuiteNotFoundError, match="cannot tell the suite"):
        detect_suite(str(other), cwd=str(tmp_path))


def test_a_slim_only_file_takes_the_suite_of_the_clone_it_sits_in(tmp_path):
    clone = tmp_path / 'PaddleDetection'
    write(clone / 'ppdet' / '__init__.py', "")
    slim = write(clone / 'configs' / 'slim' / 'prune' / 'p.yml', "slim: UnstructuredPruner\n")
    assert detect_suite(str(slim), cwd=str(clone)) == 'ppdet'
    assert locate_suite_source('ppdet', str(slim), cwd=str(tmp_path)) == str(clone)
    assert locate_suite_source('ppseg', str(slim), cwd=str(tmp_path)) is None


def test_clone_lookup_order_cwd_then_config_then_env(tmp_path, monkeypatch):
    here, there, env = tmp_path / 'here', tmp_path / 'there', tmp_path / 'env'
    for root in (here, there, env):
        write(root / 'paddleseg' / '__init__.py', "")
    config = write(there / 'configs' / 'x.yml', "model: {type: X}\ntrain_dataset: {}\n")
    monkeypatch.setenv('PADDLESEG_SRC', str(env))
    assert locate_suite_source('ppseg', str(config), cwd=str(here)) == str(here)
    assert locate_suite_source('ppseg', str(config), cwd=str(tmp_path)) == str(there)
    outside = write(tmp_path / 'cfg.yml', "model: {type: X}\ntrain_dataset: {}\n")
    assert locate_suite_source('ppseg', str(outside), cwd=str(tmp_path)) == str(env)
    monkeypatch.setenv('PADDLESEG_SRC', str(tmp_path / 'not_a_clone'))
    with pytest.raises(SuiteNotFoundError, match=r"\$PADDLESEG_SRC=.* is not a PaddleSeg clone"):
        locate_suite_source('ppseg', str(outside), cwd=str(tmp_path))


def run_command(args, cwd, **env):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'OMP_NUM_THREADS': '1', **env})


def stderr_lines(result):
    return [line for line in result.stderr.splitlines()
            if line.strip() and 'ccache' not in line and 'warnings.warn' not in line]


@pytest.mark.parametrize('command', [
    ['prune-train', '-c', 'missing.yml'],
    ['prune-eval', '-c', 'bad.yml'],
    ['prune-export', '--config=loop.yml'],
    ['prune-train', '-c', 'nosuite.yml'],
    ['prune-train'],
])
def test_installed_commands_refuse_bad_input_in_one_line(tmp_path, command):
    (tmp_path / 'bad.yml').write_text("architecture: [YOLOv3\n")
    (tmp_path / 'loop.yml').write_text("_BASE_: ['loop.yml']\narchitecture: YOLOv3\n")
    (tmp_path / 'nosuite.yml').write_text("epochs: 3\n")
    result = run_command([os.path.join(BIN, command[0]), *command[1:]], tmp_path)
    assert result.returncode == 2, result.stderr
    lines = stderr_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(('error: ', 'usage: ')) and 'Traceback' not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bad.yml', 'loop.yml', 'nosuite.yml']


@pytest.mark.parametrize('command', [['prune-train'], ['prune-eval'], ['prune-export'],
                                     ['prune-report'], [sys.executable, '-m', 'prune_plugin'],
                                     [sys.executable, '-m', 'prune_plugin.report']])
def test_every_command_prints_the_package_version(tmp_path, command):
    import prune_plugin

    args = ([os.path.join(BIN, command[0])] if len(command) == 1 else command) + ['--version']
    result = run_command(args, tmp_path)
    assert (result.returncode, result.stdout) == (0, f"prune_plugin {prune_plugin.__version__}\n")
    assert prune_plugin.__version__ == '0.2.0'


def test_python_dash_m_commands_and_version(tmp_path):
    result = run_command([sys.executable, '-m', 'prune_plugin', '--version'], tmp_path)
    assert result.returncode == 0 and result.stdout.startswith('prune_plugin ')
    result = run_command([sys.executable, '-m', 'prune_plugin', 'fly'], tmp_path)
    assert result.returncode == 2 and "unknown command 'fly'" in result.stderr
    result = run_command([sys.executable, '-m', 'prune_plugin.cli', 'train'], tmp_path)
    assert result.returncode == 2 and 'usage:' in result.stderr
    result = run_command([sys.executable, '-m', 'prune_plugin', 'train', '-h'], tmp_path)
    assert result.returncode == 0 and 'the clone' in result.stdout


def test_the_clone_package_wins_over_the_wheel(tmp_path):
    """At the root of a clone, ``prune-train`` imports the clone's suite package and says so."""
    import paddleseg
    clone = tmp_path / 'PaddleSeg'
    shutil.copytree(os.path.dirname(paddleseg.__file__), clone / 'paddleseg',
                    ignore=shutil.ignore_patterns('__pycache__'))
    marker = tmp_path / 'clone_was_imported'
    with open(clone / 'paddleseg' / '__init__.py', 'a') as f:
        f.write(f"\nopen({str(marker)!r}, 'w').close()\n")
    config = write(clone / 'configs' / 'bad.yml', """\
        model: {type: PPHumanSegLite, num_classes: 2}
        train_dataset: {type: Dataset}
        slim: UnstructuredPrune
        UnstructuredPrune: {ratio: 1.5}
        """)
    result = run_command([os.path.join(BIN, 'prune-train'), '-c', str(config)], clone)
    assert marker.exists(), result.stdout + result.stderr
    assert f"paddleseg from {clone / 'paddleseg'} (clone {clone})" in result.stdout
    assert result.returncode == 2 and "UnstructuredPrune.ratio=1.5" in result.stderr


@pytest.mark.parametrize('middle, message', [
    ("epoch: 3\nLearningRate:\n  schedulers:\n  - !PiecewiseDecay\n    milestones: [2\n",
     "opt.yml:6:1: not valid YAML"),
    ("epoch: 3\nUnstructuredPrune: {ratio: high}\n",
     "UnstructuredPrune.ratio='high' is not allowed"),
])
def test_an_error_in_the_middle_of_a_base_chain_is_one_line(tmp_path, middle, message):
    """top.yml -> _base_/model.yml -> _base_/opt.yml, the error in opt.yml (ppdet style)."""
    cfgs = tmp_path / 'my_det' / 'cfgs'
    write(cfgs / '_base_' / 'opt.yml', middle)
    write(cfgs / '_base_' / 'model.yml', "_BASE_: ['opt.yml']\narchitecture: YOLOv3\n")
    write(cfgs / 'top.yml', "_BASE_: ['_base_/model.yml']\nslim: UnstructuredPrune\n")
    result = run_command([os.path.join(BIN, 'prune-train'), '-c', 'cfgs/top.yml'],
                         tmp_path / 'my_det')
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in stderr_lines(result) if 'numba' not in line]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert 'Traceback' not in result.stderr
    assert sorted(p.name for p in (tmp_path / 'my_det').iterdir()) == ['cfgs']
