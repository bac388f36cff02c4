"""prune-report on checkpoints and exported models that the plugin itself produced.

MobileNetV1 (scale 0.25) pruned three ways: ratio 0.55 element-wise, ratio 0.5 in 2x1 blocks and
the 2:4 pattern. The report's totals must equal ``total_sparse`` / ``total_sparse_conv1x1`` on the
model exactly, and the block / pattern checks must hold for the matching checkpoint only.
"""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from prune_plugin import UnstructuredPruner, total_sparse, total_sparse_conv1x1
from prune_plugin.report import main

PRUNINGS = {
    'ratio': dict(mode='ratio', ratio=0.55),
    'block2x1': dict(mode='ratio', ratio=0.5, sparse_block=(2, 1)),
    'pattern2of4': dict(mode='ratio', sparse_pattern='2:4'),
}
INPUT_SPEC = [paddle.static.InputSpec([None, 3, 64, 64], 'float32', name='image')]


def pruned_mobilenet(kind):
    paddle.seed(7)
    model = paddle.vision.models.mobilenet_v1(scale=0.25, num_classes=10)
    pruner = UnstructuredPruner(model, **PRUNINGS[kind])
    pruner.step()
    model.eval()
    return model, pruner


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp('pruned')
    made = {}
    for kind in PRUNINGS:
        model, pruner = pruned_mobilenet(kind)
        path = str(root / kind / 'model_final.pdparams')
        paddle.save(model.state_dict(), path)
        made[kind] = {'path': path, 'model': model, 'pruner': pruner,
                      'total': total_sparse(model), 'conv1x1': total_sparse_conv1x1(model)}
    return made


def report_json(capsys, *argv):
    capsys.readouterr()  # drop what the test printed before (e.g. a pruner's log line)
    code = main([str(a) for a in argv] + ['--format', 'json'])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize('kind', list(PRUNINGS))
def test_totals_equal_total_sparse_on_the_model(checkpoints, capsys, kind):
    made = checkpoints[kind]
    report = report_json(capsys, os.path.dirname(made['path']), '--all')
    assert report['totals']['all']['sparsity'] == made['total']
    assert report['totals']['conv1x1']['sparsity'] == made['conv1x1']
    state = made['model'].state_dict()
    rows = {r['name']: r for r in report['params']}
    assert set(rows) == set(state)
    for name, tensor in state.items():
        weight = tensor.numpy()
        assert rows[name]['zeros'] == weight.size - np.count_nonzero(weight), name
    if kind != 'pattern2of4':  # the pattern leaves out layers whose inputs do not split by 4
        assert report['totals']['prunable']['sparsity'] == made['pruner'].prunable_sparsity()
        assert report['totals']['prunable']['params'] == len(made['pruner'].params) == 28


def test_block_and_pattern_checks_pass_only_for_their_checkpoint(checkpoints, capsys):
    checks = {kind: report_json(capsys, made['path'], '--block', '2x1', '--pattern', '2:4')
              ['checks'] for kind, made in checkpoints.items()}
    block, pattern = checks['block2x1']['block'], checks['pattern2of4']['pattern']
    assert block['holds'] and (block['conforming'], block['layers']) == (28, 28)
    assert block['conforming_share'] == 1.0
    assert pattern['holds'] and (pattern['conforming'], pattern['not_applicable']) == (14, 14)
    pruned_names = {p.name for p in checkpoints['pattern2of4']['pruner'].params}
    prunable_numel = sum(int(np.prod(p.shape)) for p in checkpoints['ratio']['pruner'].params)
    pattern_numel = sum(int(np.prod(p.shape)) for p in checkpoints['pattern2of4']['pruner'].params)
    assert pattern['conforming_share'] == pattern_numel / prunable_numel
    assert len(pruned_names) == 14
    assert not checks['ratio']['block']['holds'] and not checks['ratio']['pattern']['holds']
    assert checks['ratio']['block']['violating'] == 28
    assert not checks['block2x1']['pattern']['holds']
    assert not checks['pattern2of4']['block']['holds']
    code = main([checkpoints['ratio']['path'], '--pattern', '2:4', '--strict'])
    assert code == 1
    code = main([checkpoints['pattern2of4']['path'], '--pattern', '2:4', '--strict',
                 '--expect', '0.47'])
    assert code == 0
    capsys.readouterr()


def _export_legacy(model_path, prefix):
    """Export with PIR off, as Paddle 2.x does (.pdmodel + .pdiparams + .pdiparams.info)."""
    code = ("import paddle, sys\n"
            "m = paddle.vision.models.mobilenet_v1(scale=0.25, num_classes=10)\n"
            "m.set_state_dict(paddle.load(sys.argv[1])); m.eval()\n"
            "paddle.jit.save(m, sys.argv[2], input_spec=[paddle.static.InputSpec("
            "[None, 3, 64, 64], 'float32')])\n")
    env = dict(os.environ, FLAGS_enable_pir_api='0', PYTHONWARNINGS='ignore')
    done = subprocess.run([sys.executable, '-c', code, model_path, prefix], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_exported_models_report_the_checkpoint_numbers(checkpoints, tmp_path, capsys):
    made = checkpoints['ratio']
    expected = report_json(capsys, made['path'], '--all')
    model = made['model']
    paddle.jit.save(model, str(tmp_path / 'jit' / 'model'), input_spec=INPUT_SPEC)
    static = paddle.jit.to_static(model, input_spec=INPUT_SPEC, full_graph=True)
    paddle.jit.save(static, str(tmp_path / 'static' / 'inference'))
    _export_legacy(made['path'], str(tmp_path / 'legacy' / 'model'))
    assert os.path.isfile(tmp_path / 'jit' / 'model.json')  # Paddle 3 writes PIR by default
    assert os.path.isfile(tmp_path / 'legacy' / 'model.pdmodel')
    for path, fmt in ((tmp_path / 'jit' / 'model', 'inference (pir json)'),
                      (tmp_path / 'static', 'inference (pir json)'),
                      (tmp_path / 'static' / 'inference.pdiparams', 'inference (pir json)'),
                      (tmp_path / 'legacy' / 'model.pdmodel', 'inference (pdmodel)')):
        report = report_json(capsys, path, '--all')
        assert report['format'] == fmt
        assert report['totals'] == expected['totals'], path
    legacy = report_json(capsys, tmp_path / 'legacy', '--all')
    # the .pdiparams.info of a PIR-off export gives back the structured names
    key = lambda rows: sorted((r['name'], r['zeros']) for r in rows)  # noqa: E731
    assert key(legacy['params']) == key(expected['params'])
    os.remove(tmp_path / 'jit' / 'model.pdiparams')
    code = main([str(tmp_path / 'jit' / 'model.json')])
    _, err = capsys.readouterr()
    assert code == 2 and err == (f"prune-report: error: {tmp_path / 'jit' / 'model.json'}: "
                                 "inference model without parameters (model.pdiparams is "
                                 "missing)\n")
    data = (tmp_path / 'static' / 'inference.pdiparams').read_bytes()
    (tmp_path / 'static' / 'inference.pdiparams').write_bytes(data[:len(data) - 100])
    code = main([str(tmp_path / 'static')])
    _, err = capsys.readouterr()
    assert code == 2 and 'truncated' in err and err.count('\n') == 1


class UpSampler(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(4, 8, 3, padding=1)
        self.up = paddle.nn.Conv2DTranspose(8, 6, 2, stride=2)

    def forward(self, x):
        return self.up(self.conv(x))


def test_transposed_convs_from_the_flag_or_the_exported_program(tmp_path, capsys):
    paddle.seed(3)
    model = UpSampler()
    UnstructuredPruner(model, ratio=0.5, sparse_block=(2, 1)).step()
    model.eval()
    path = str(tmp_path / 'up.pdparams')
    paddle.save(model.state_dict(), path)
    rows = lambda report: {r['name']: r for r in report['params']}  # noqa: E731
    plain = report_json(capsys, path, '--block', '2x1')
    assert rows(plain)['up.weight']['block'] == 'FAIL'
    assert plain['checks']['block']['conform_if_flipped'] == ['up.weight']
    flagged = report_json(capsys, path, '--block', '2x1', '--transposed', r'^up\.')
    assert rows(flagged)['up.weight']['transposed'] and flagged['checks']['block']['holds']
    paddle.jit.save(model, str(tmp_path / 'export' / 'model'),
                    input_spec=[paddle.static.InputSpec([None, 4, 8, 8], 'float32')])
    exported = report_json(capsys, tmp_path / 'export', '--block', '2x1')
    assert exported['checks']['block']['holds'] and exported['checks']['block']['layers'] == 2
    assert [r['transposed'] for r in exported['params']] == [False, True]
    code = main([path, '--block', '2x1'])
    out = capsys.readouterr().out
    assert code == 0 and 'FAIL*' in out and 'see --transposed' in out
