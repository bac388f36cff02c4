"""PaddleDetection commands: ppdet's own flags, the checkpoint-state files, one-line refusals.

No training here. The configs are written in ppdet's real style (``!Tag`` lines, ``_BASE_``
lists) in a folder that is not named after the suite. Refusals go through the real installed
entry (``prune-train`` ...) where the brief is "one line, exit 2".
"""
import json
import os
import re
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from prune_plugin.adapters.ppdet.args import (FlagError, build_parser, check_flags,
                                              merge_flags, parse_flags)

BIN = os.path.dirname(sys.executable)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The flags of ppdet's tools (release/2.6 and develop), read from their parse_args().
PPDET_FLAGS = {
    'train': ['--eval', '-r', '--resume', '--slim_config', '--enable_ce', '--amp', '--fleet',
              '--use_vdl', '--vdl_log_dir', '--use_wandb', '--save_prediction_only',
              '--profiler_options', '--save_proposals', '--proposals_path', '--to_static'],
    'eval': ['--output_eval', '--json_eval', '--slim_config', '--bias', '--classwise',
             '--save_prediction_only', '--amp', '--slice_infer', '--slice_size',
             '--overlap_ratio', '--combine_method', '--match_threshold', '--match_metric'],
    'export': ['--output_dir', '--export_serving_model', '--slim_config', '--for_fd'],
}
TOOLS = {'train': 'train.py', 'eval': 'eval.py', 'export': 'export_model.py'}


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def detector(tmp_path):
    """A user's config tree (not named ppdet): model file -> [dataset, runtime, optimizer]."""
    root = tmp_path / 'detector_work' / 'configs'
    write(root / 'datasets' / 'coco.yml', """\
        metric: COCO
        num_classes: 3
        TrainDataset:
          !COCODataSet
            image_dir: train
            anno_path: annotations/instances_train.json
            dataset_dir: dataset/coco
            data_fields: ['image', 'gt_bbox', 'gt_class', 'is_crowd']
        """)
    write(root / 'runtime.yml', "use_gpu: false\nlog_iter: 20\nsave_dir: output\n"
                                "snapshot_epoch: 1\n")
    write(root / 'picodet' / '_base_' / 'optimizer.yml', """\
        epoch: 300
        LearningRate:
          base_lr: 0.1
          schedulers:
          - !CosineDecay
            max_epochs: 300
          - !LinearWarmup
            start_factor: 0.1
            steps: 300
        """)
    write(root / 'picodet' / '_base_' / 'picodet.yml', "architecture: PicoDet\n")
    return write(root / 'picodet' / 'picodet_s.yml', """\
        _BASE_: [
          '../datasets/coco.yml',
          '../runtime.yml',
          '_base_/optimizer.yml',
          '_base_/picodet.yml',
        ]
        slim: UnstructuredPrune
        UnstructuredPrune: {ratio: 0.75, prune_params_type: conv1x1_only}
        """)


def test_bool_flags_take_a_value_or_none_and_read_it_right():
    for argv, expected in ((['--use_vdl'], True), (['--use_vdl', 'True'], True),
                           (['--use_vdl=false'], False), (['--use_vdl', 'False'], False),
                           (['--use_vdl', '0'], False), ([], False)):
        assert parse_flags('train', ['-c', 'x.yml', *argv]).use_vdl is expected, argv
    flags = parse_flags('train', ['-c', 'x.yml', '--enable_ce', 'true', '--use_wandb', 'no'])
    assert (flags.enable_ce, flags.use_wandb) == (True, False)
    assert parse_flags('export', ['-c', 'x.yml', '--export_serving_model=1']) \
        .export_serving_model is True
    with pytest.raises(FlagError, match=r"--use_vdl: .*expected true or false, got 'maybe'"):
        parse_flags('train', ['-c', 'x.yml', '--use_vdl', 'maybe'])


def test_every_flag_of_ppdet_tools_is_accepted():
    for command, names in PPDET_FLAGS.items():
        options = set(build_parser(command)._option_string_actions)
        assert set(names) <= options, (command, set(names) - options)
    flags = parse_flags('eval', ['-c', 'x.yml', '--slice_infer', '--slice_size', '320', '320',
                                 '--overlap_ratio', '0.1', '0.2', '--match_metric', 'iou'])
    assert (flags.slice_size, flags.overlap_ratio, flags.match_metric) == (
        [320, 320], [0.1, 0.2], 'iou')
    assert parse_flags('train', ['-c', 'x.yml', '--seed', '3']).seed == 3


@pytest.mark.skipif(not os.environ.get('PADDLEDET_SRC'),
                    reason="set PADDLEDET_SRC to a PaddleDetection clone to compare its tools")
@pytest.mark.parametrize('command', sorted(TOOLS))
def test_the_clone_tools_have_no_flag_we_lack(command):
    source = open(os.path.join(os.environ['PADDLEDET_SRC'], 'tools', TOOLS[command])).read()
    theirs = set(re.findall(r"""add_argument\(\s*['"](-[-\w]+)['"]""", source))
    assert theirs and theirs <= set(build_parser(command)._option_string_actions)


def test_flags_merge_into_the_config_like_ppdet_merge_args():
    flags = parse_flags('train', ['-c', 'x.yml', '--eval', '--to_static', '--use_vdl',
                                  '--profiler_options', 'batch_range=[1,2]', '--seed', '1',
                                  '--slim_config', 's.yml', '-o', 'a.b=1', 'a.c=2'])
    assert flags.opt == {'a': {'b': 1, 'c': 2}}      # both nested keys kept
    cfg = merge_flags({}, flags)
    assert cfg['eval'] and cfg['to_static'] and cfg['use_vdl']
    assert cfg['vdl_log_dir'] == 'vdl_log_dir/scalar' and cfg['resume'] is None
    assert cfg['profiler_options'] == 'batch_range=[1,2]'
    assert cfg['proposals_path'] == 'sniper/proposals.json'
    assert not {'config', 'opt', 'slim_config', 'seed'} & set(cfg)


def test_flags_that_cannot_be_honoured_are_named():
    trainer = SimpleNamespace(export=lambda self, output_dir='output_inference': None)
    flags = parse_flags('train', ['-c', 'x.yml', '--save_proposals'])
    cfg = merge_flags({'TrainDataset': object()}, flags)
    with pytest.raises(FlagError, match=r"^--save_proposals needs a SNIPER dataset .*object$"):
        check_flags('train', flags, cfg, trainer)
    import paddle
    from ppdet.utils import profiler
    flags = parse_flags('train', ['-c', 'x.yml', '--profiler_options', 'nonsense'])
    if hasattr(profiler, 'profiler') or hasattr(paddle.utils, 'profiler'):
        expected = "^--profiler_options 'nonsense': expected"
    else:   # ppdet 2.6's profiler on Paddle 3: paddle.utils.profiler is gone
        expected = "^--profiler_options: this ppdet's profiler calls paddle.utils.profiler"
    with pytest.raises(FlagError, match=expected):
        check_flags('train', flags, merge_flags({}, flags), trainer)
    flags = parse_flags('export', ['-c', 'x.yml', '--for_fd'])
    with pytest.raises(FlagError, match=r"^--for_fd needs ppdet develop"):
        check_flags('export', flags, {}, trainer)
    flags = parse_flags('train', ['-c', 'x.yml', '--use_wandb'])
    import importlib.util
    if importlib.util.find_spec('wandb') is None:
        with pytest.raises(FlagError, match=r"^--use_wandb needs the wandb package"):
            check_flags('train', flags, merge_flags({}, flags), trainer)


# ----- checkpoint state -------------------------------------------------------------------
def test_state_lands_where_the_checkpointer_saves_in_every_layout(tmp_path):
    from prune_plugin.adapters.ppdet.state import checkpoint_folder, read_state, write_state
    release = SimpleNamespace(save_dir=str(tmp_path / 'output' / 'picodet_s'))
    develop = SimpleNamespace(save_dir=str(tmp_path / 'output'), uniform_output_enabled=False)
    uniform = SimpleNamespace(save_dir=str(tmp_path / 'output'), uniform_output_enabled=True)
    assert checkpoint_folder(release, '3') == str(tmp_path / 'output' / 'picodet_s')
    assert checkpoint_folder(develop, 'model_final') == str(tmp_path / 'output')
    assert checkpoint_folder(uniform, 'best_model') == str(tmp_path / 'output' / 'best_model')
    folder = tmp_path / 'output' / 'best_model'
    folder.mkdir(parents=True)
    path = write_state(str(folder / 'best_model.pdparams'), {'iteration': 7, 'epoch': 2})
    assert path == str(folder / 'best_model.pdprune')
    assert read_state(str(folder / 'best_model')) == {'iteration': 7, 'epoch': 2}
    assert os.listdir(folder) == ['best_model.pdprune']      # no temporary file left


def test_state_write_is_atomic_and_bad_files_are_named(tmp_path):
    from prune_plugin.adapters.ppdet.state import read_state, write_state
    write_state(str(tmp_path / 'model_final'), {'iteration': 4})
    with pytest.raises(TypeError):
        write_state(str(tmp_path / 'model_final'), {'iteration': object()})
    assert read_state(str(tmp_path / 'model_final.pdparams')) == {'iteration': 4}
    assert os.listdir(tmp_path) == ['model_final.pdprune']
    (tmp_path / 'bad.pdprune').write_text('{"iteration": -1}')
    with pytest.raises(ValueError, match=r"bad\.pdprune: expected \{'iteration': int >= 0"):
        read_state(str(tmp_path / 'bad'))
    assert read_state(str(tmp_path / 'none')) is None


# ----- refusals through the real entry ----------------------------------------------------
def run_entry(command, args, cwd):
    # the installed ppdet, also when $PADDLEDET_SRC names a clone (its import prints a warning)
    env = {k: v for k, v in os.environ.items() if k != 'PADDLEDET_SRC'}
    return subprocess.run([os.path.join(BIN, command), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env={**env, 'OMP_NUM_THREADS': '1'})


def one_error_line(result):
    """The single stderr line of a refused command (paddle's own import noise ignored)."""
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip() and 'ccache' not in l
             and 'warnings.warn' not in l and 'numba' not in l]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('error: ')
    return lines[0]


SLIM_FILES = {
    'QAT': "slim: QAT\nQAT:\n  quant_config: {weight_bits: 8}\n  print_model: false\n",
    'PTQ': "weights: w.pdparams\nslim: PTQ\nPTQ:\n  ptq_config: {}\n  quant_batch_num: 10\n",
    'Distill': "slim: Distill\ndistill_loss: DistillYOLOv3Loss\n",
    'OFA': "slim: OFA\nOFA:\n  ofa_config: {task: expand_ratio}\n",
    'DistillPrune': "slim: DistillPrune\npruner: Pruner\n",
    'Pruner': "slim: Pruner\nPruner:\n  criterion: fpgm\n  pruned_params: ['conv2d_27.w_0']\n"
              "  pruned_ratios: [0.1]\n",
}


@pytest.mark.parametrize('kind', sorted(SLIM_FILES))
def test_other_slim_kinds_are_refused_before_anything_is_built(detector, kind, monkeypatch):
    work = detector.parents[2]
    monkeypatch.chdir(work)
    from prune_plugin.adapters.ppdet.main import train_main
    from prune_plugin.adapters.ppdet.config import OTHER_SLIM
    from prune_plugin.core.errors import PruneConfigError
    slim = write(work / 'configs' / 'slim' / f'{kind.lower()}.yml', SLIM_FILES[kind])
    with pytest.raises(PruneConfigError) as err:
        train_main(['-c', str(detector), '--slim_config', str(slim)])
    assert str(err.value) == (
        f"{slim}: slim={kind!r} is not allowed: expected 'UnstructuredPrune' or ppdet's "
        f"'UnstructuredPruner': {kind} ({OTHER_SLIM[kind]}) is ppdet's own slim method, "
        "train it with ppdet's tools/train.py")
    assert sorted(os.listdir(work)) == ['configs']     # nothing written


@pytest.mark.parametrize('extra, message', [
    ("ssod_method: DenseTeacher\n", "error: ssod_method='DenseTeacher' is not allowed: "
                                    "expected no ssod_method: semi-supervised configs"),
    ("use_cot: true\n", "error: use_cot=True is not allowed: expected no use_cot: co-tuning"),
])
def test_ssod_and_cot_configs_stop_in_one_line_before_anything_is_built(detector, extra,
                                                                         message):
    config = write(detector.parent / 'special.yml', f"_BASE_: ['picodet_s.yml']\n{extra}")
    result = run_entry('prune-train', ['-c', str(config)], detector.parents[2])
    assert one_error_line(result).startswith(message)
    assert sorted(os.listdir(detector.parents[2])) == ['configs']     # nothing written


def test_bad_config_unknown_flag_and_missing_checkpoint_are_one_line(detector):
    """Issue 17 item 8: exactly one stderr line, no traceback, through the real entry."""
    cwd = detector.parents[2]
    bad = write(detector.parent / 'bad.yml',
                "_BASE_: ['picodet_s.yml']\nUnstructuredPrune: {ratio: 0.75, ratoi: 2}\n")
    line = one_error_line(run_entry('prune-train', ['-c', str(bad)], cwd))
    assert line == ("error: UnstructuredPrune.ratoi=2 is not allowed: expected one of the keys "
                    "['mode', 'ratio', 'threshold', 'prune_params_type', 'local_sparsity', "
                    "'sparse_block', 'sparse_pattern', 'prune_params', 'skip_params', 'gmp']; "
                    "did you mean 'ratio'?")
    line = one_error_line(run_entry('prune-train', ['-c', str(detector), '--use_gpus', '2'],
                                    cwd))
    assert line.startswith("error: unrecognized arguments: --use_gpus 2 (see prune-train")
    line = one_error_line(run_entry('prune-train', ['-c', str(detector), '-r',
                                                    'output/picodet_s/9'], cwd))
    assert line == "error: -r output/picodet_s/9: output/picodet_s/9.pdparams not found"
    line = one_error_line(run_entry('prune-eval', ['-c', str(detector), '-o',
                                                   'weights=nowhere/model_final'], cwd))
    assert line == "error: weights nowhere/model_final: nowhere/model_final.pdparams not found"
    assert sorted(os.listdir(cwd)) == ['configs']     # nothing written


@pytest.mark.parametrize('command', ['prune-train', 'prune-eval', 'prune-export'])
def test_a_config_without_num_classes_is_one_line_and_exit_2(detector, command):
    """ppdet's own check_config logs and exits 1 for it; the plugin names it first (exit 2)."""
    cwd = detector.parents[2]
    config = write(detector.parent / 'no_classes.yml',  # the model without its dataset file
                   "_BASE_: ['../runtime.yml', '_base_/optimizer.yml', '_base_/picodet.yml']\n"
                   "slim: UnstructuredPrune\nUnstructuredPrune: {ratio: 0.75}\n")
    result = run_entry(command, ['-c', str(config)], cwd)
    assert one_error_line(result) == (f"error: {config}: 'num_classes' is not set in the config "
                                      "or its _BASE_ files (ppdet needs it)")
    assert sorted(os.listdir(cwd)) == ['configs']     # nothing written
