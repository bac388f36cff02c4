"""``prune-export --format onnx`` of each suite, ``prune-report model.onnx``, the inference
benchmark's smoke mode.

Every export is the command a user runs (a subprocess). The sparse checkpoints are made without
training: each suite's demo model, seeded, 75% of every 1x1-conv weight tensor set to zero by
prune_plugin's engine (ratio mode, per layer). Run as a script (``--make-checkpoints DIR``) this
file writes them.
"""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, 'configs')
PPCLS = os.path.join(CONFIGS, 'ppcls', 'mobilenetv1_prune_demo.yml')     # MobileNetV1 x0.5, 32 px
PPDET = os.path.join(CONFIGS, 'ppdet', 'picodet_m_prune_demo.yml')       # PicoDet-M, 128 px
PPSEG = os.path.join(CONFIGS, 'ppseg', 'pphumanseg_lite_prune_demo.yml')  # PP-HumanSeg-Lite
SHAPES = {'ppcls': [3, 32, 32], 'ppdet': [3, 128, 128], 'ppseg': [3, 64, 64]}
RATIO = 0.75


def make_checkpoints(folder):
    """Seeded demo models of the three suites, 75% of each 1x1 conv zero; ``{suite: path}``."""
    import paddle

    sys.path.insert(0, REPO)
    from prune_plugin import UnstructuredPruner

    def build(suite):
        paddle.seed(0)
        if suite == 'ppcls':
            from paddleclas.ppcls.arch import build_model
            return build_model({'Arch': {'name': 'MobileNetV1_x0_5', 'class_num': 10}})
        if suite == 'ppdet':
            from ppdet.core.workspace import create, load_config
            return create(load_config(PPDET).architecture)
        from paddleseg.cvlibs import SegBuilder

        from prune_plugin.adapters.ppseg.config import PruneSegConfig
        return SegBuilder(PruneSegConfig(PPSEG)).model

    paths = {}
    for suite in ('ppcls', 'ppdet', 'ppseg'):
        model = build(suite)
        UnstructuredPruner(model, mode='ratio', ratio=RATIO, prune_params_type='conv1x1_only',
                           local_sparsity=True).step()
        paths[suite] = os.path.join(folder, f'{suite}.pdparams')
        paddle.save(model.state_dict(), paths[suite])
    return paths


def _env(**extra):
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': REPO, **extra}


def run(args, cwd, **env):
    return subprocess.run([sys.executable, '-m', 'prune_plugin', *args], cwd=cwd,
                          env=_env(**env), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp('onnx')


@pytest.fixture(scope='module')
def checkpoints(workdir):
    result = subprocess.run([sys.executable, __file__, '--make-checkpoints', str(workdir)],
                            env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def export_args(suite, checkpoint, out):
    if suite == 'ppcls':
        return ['-c', PPCLS, '-o', f'Global.pretrained_model={checkpoint[:-len(".pdparams")]}',
                '-o', f'Global.save_inference_dir={out}'], os.path.join(out, 'inference')
    if suite == 'ppdet':
        return ['-c', PPDET, '-o', f'weights={checkpoint}', 'export.nms=False',
                '--output_dir', out], os.path.join(out, 'picodet_m_prune_demo', 'model')
    return ['-c', PPSEG, '--model_path', checkpoint, '--save_dir', out, '--output_op', 'none'], \
        os.path.join(out, 'model')


@pytest.fixture(scope='module')
def exported(workdir, checkpoints):
    """``prune-export ... --format onnx`` of each suite: ``{suite: (prefix, stdout)}``."""
    done = {}
    for suite, checkpoint in checkpoints.items():
        args, prefix = export_args(suite, checkpoint, str(workdir / f'{suite}_export'))
        result = run(['export', *args, '--format', 'onnx'], workdir)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        done[suite] = (prefix, result.stdout)
    return done


def _digest(array):
    return array.shape, hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.mark.parametrize('suite', ['ppcls', 'ppdet', 'ppseg'])
def test_onnx_weights_are_the_checkpoint_tensors_with_their_zeros(suite, checkpoints, exported):
    from prune_plugin.report.inference import load_inference_model
    from prune_plugin.report.loading import load_pdparams
    from prune_plugin.report.onnx_file import load_onnx_model

    prefix, stdout = exported[suite]
    onnx_arrays = load_onnx_model(prefix + '.onnx', names_from=None).arrays
    paddle_arrays = load_inference_model(prefix).arrays
    checkpoint = load_pdparams(checkpoints[suite]).arrays
    # every weight of the Paddle export is in the ONNX file under its name, bit for bit
    weights = {k: v for k, v in paddle_arrays.items() if v.ndim >= 2}
    assert weights and set(weights) <= set(onnx_arrays)
    for name, array in weights.items():
        assert np.array_equal(onnx_arrays[name], array), name
    # ... and is one checkpoint tensor (one to one): the zeros per layer are the checkpoint's
    by_content = {}
    for name, array in checkpoint.items():
        by_content.setdefault(_digest(array), []).append(name)
    zeros = total = conv1x1 = 0
    for name in weights:
        array = onnx_arrays[name]
        matches = by_content.get(_digest(array))
        assert matches, f"{name} {array.shape} is no checkpoint tensor"
        source = checkpoint[matches.pop()]
        assert int((array == 0).sum()) == int((source == 0).sum())
        zeros += int((array == 0).sum())
        total += array.size
        if array.ndim == 4 and array.shape[2:] == (1, 1) and array.shape[1] > 1:
            conv1x1 += 1   # a pruned 1x1 conv: exactly round(0.75 n) zeros (per layer)
            assert int((array == 0).sum()) == round(RATIO * array.size), name
    assert conv1x1 >= 10
    # prune-report's names: the checkpoint's own keys (metadata written by the export), every
    # tensor of the Paddle export (biases and BN statistics too) equal to the checkpoint's
    named = load_onnx_model(prefix + '.onnx').arrays
    mapped = [name for name in named if name in checkpoint]
    assert len(mapped) == len(paddle_arrays)
    for name in mapped:
        assert np.array_equal(named[name], checkpoint[name]), name
    assert f"exported ONNX {prefix}.onnx: {zeros} of {total} weights (rank >= 2) are zero" \
        in stdout


@pytest.mark.parametrize('suite', ['ppcls', 'ppdet', 'ppseg'])
def test_onnxruntime_outputs_equal_paddles(suite, exported):
    import onnxruntime as ort
    import paddle

    prefix, _ = exported[suite]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(prefix + '.onnx', options, providers=['CPUExecutionProvider'])
    x = np.random.RandomState(0).rand(1, *SHAPES[suite]).astype('float32')
    got = session.run(None, {session.get_inputs()[0].name: x})
    layer = paddle.jit.load(prefix)
    layer.eval()
    want = layer(paddle.to_tensor(x))
    want = want if isinstance(want, (list, tuple)) else [want]
    assert len(got) == len(want) >= 1
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-4)


def _report(path, cwd):
    result = run(['report', path, '--format', 'json'], cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)['totals']


@pytest.mark.parametrize('suite', ['ppcls', 'ppseg'])
def test_prune_report_of_the_onnx_file_has_the_checkpoints_totals(suite, workdir, checkpoints,
                                                                  exported):
    prefix, _ = exported[suite]
    onnx_totals = _report(prefix + '.onnx', workdir)
    # the same totals as the exported Paddle model (the same tensors, by name)
    assert onnx_totals == _report(prefix + ('.json' if os.path.isfile(prefix + '.json')
                                            else '.pdmodel'), workdir)
    checkpoint_totals = _report(checkpoints[suite], workdir)
    if suite == 'ppcls':   # every parameter exported: the checkpoint's totals exactly
        assert onnx_totals['prunable'] == checkpoint_totals['prunable']
        assert onnx_totals['conv1x1'] == checkpoint_totals['conv1x1']
        assert onnx_totals['conv1x1']['zeros'] == round(RATIO * onnx_totals['conv1x1']['numel'])
    else:   # PP-HumanSeg-Lite has 10 never-called 1x1 convs (80,352 weights): not exported
        assert checkpoint_totals['conv1x1']['numel'] - onnx_totals['conv1x1']['numel'] == 80352
        assert checkpoint_totals['conv1x1']['zeros'] - onnx_totals['conv1x1']['zeros'] == \
            round(RATIO * 80352)


def test_a_legacy_ir_export_converts_with_the_checkpoints_names_and_zeros(workdir):
    """YOLOv3 exports on the legacy IR (model.pdmodel + .pdiparams.info): translated, converted,
    and prune-report names the ONNX weights with the checkpoint's structured names."""
    script = ("import sys, paddle; sys.path.insert(0, sys.argv[2]); "
              "from ppdet.core.workspace import create, load_config; "
              "from prune_plugin import UnstructuredPruner; paddle.seed(0); "
              "m = create(load_config(sys.argv[3]).architecture); "
              "UnstructuredPruner(m, mode='ratio', ratio=0.75, prune_params_type='conv1x1_only', "
              "local_sparsity=True).step(); paddle.save(m.state_dict(), sys.argv[1])")
    yolov3 = os.path.join(CONFIGS, 'ppdet', 'yolov3_prune_demo.yml')
    checkpoint = str(workdir / 'yolov3.pdparams')
    made = subprocess.run([sys.executable, '-c', script, checkpoint, REPO, yolov3], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    result = run(['export', '-c', yolov3, '-o', f'weights={checkpoint}', '--output_dir',
                  str(workdir / 'yolo'), '--format', 'onnx'], workdir)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    prefix = str(workdir / 'yolo' / 'yolov3_prune_demo' / 'model')
    assert os.path.isfile(prefix + '.pdmodel') and os.path.isfile(prefix + '.onnx')
    assert 'is a legacy-IR program, translated to PIR' in result.stdout + result.stderr
    from prune_plugin.report.loading import load_pdparams
    from prune_plugin.report.onnx_file import load_onnx_model
    onnx_arrays = load_onnx_model(prefix + '.onnx').arrays
    weights = load_pdparams(checkpoint).arrays
    conv1x1 = [k for k, v in weights.items() if v.ndim == 4 and v.shape[2:] == (1, 1)]
    assert len(conv1x1) == 27
    for name in conv1x1:   # by the checkpoint's own names, bit for bit
        assert np.array_equal(onnx_arrays[name], weights[name]), name
        assert int((onnx_arrays[name] == 0).sum()) == round(RATIO * weights[name].size)
    assert _report(prefix + '.onnx', workdir) == _report(prefix + '.pdmodel', workdir)


def test_an_existing_onnx_file_is_refused_before_any_work(workdir, exported, checkpoints):
    prefix, _ = exported['ppseg']
    before = {f: os.path.getmtime(os.path.join(os.path.dirname(prefix), f))
              for f in os.listdir(os.path.dirname(prefix))}
    args, _ = export_args('ppseg', checkpoints['ppseg'], os.path.dirname(prefix))
    result = run(['export', *args, '--format', 'onnx'], workdir)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {prefix}.onnx exists: remove it or export to another folder (nothing was "
        "exported)")
    after = {f: os.path.getmtime(os.path.join(os.path.dirname(prefix), f))
             for f in os.listdir(os.path.dirname(prefix))}
    assert after == before


def _shim(folder, module):
    package = folder / module
    package.mkdir(parents=True)
    (package / '__init__.py').write_text(
        f"raise ModuleNotFoundError(\"No module named '{module}'\", name='{module}')\n")
    return str(folder)


def test_without_paddle2onnx_one_line_names_the_pip_command(tmp_path):
    shim = _shim(tmp_path / 'shim', 'paddle2onnx')
    out = tmp_path / 'out'
    result = run(['export', '-c', PPSEG, '--save_dir', str(out), '--format', 'onnx'], tmp_path,
                 PYTHONPATH=os.pathsep.join([shim, REPO]))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --format onnx needs the paddle2onnx package (No module named 'paddle2onnx'): "
        "run `pip install 'prune_plugin[onnx]'` (paddle2onnx==2.1.0, onnx, onnxruntime)"]
    assert not out.exists()
    bad = run(['export', '-c', PPSEG, '--save_dir', str(out), '--format', 'tflite'], tmp_path)
    assert (bad.returncode, bad.stderr.strip()) == (
        2, "error: --format 'tflite' is not allowed: expected one of paddle, onnx")
    assert not out.exists()


def test_prune_report_without_onnx_is_one_line(tmp_path, exported):
    shim = _shim(tmp_path / 'shim', 'onnx')
    prefix, _ = exported['ppcls']
    result = run(['report', prefix + '.onnx'], tmp_path, PYTHONPATH=os.pathsep.join([shim, REPO]))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "prune-report: error: reading .onnx files needs the onnx package (No module named "
        "'onnx'): run `pip install 'prune_plugin[onnx]'` or `pip install onnx`"]


def test_prune_report_refuses_bad_onnx_files_in_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    (tmp_path / 'noise.onnx').write_bytes(np.random.RandomState(0).bytes(3000))
    (tmp_path / 'secret.bin').write_bytes(b'\0' * 64)
    (tmp_path / 'inner').mkdir()
    weight = numpy_helper.from_array(np.zeros((4, 4, 1, 1), 'float32'), 'w')
    weight.ClearField('raw_data')
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (('location', '../secret.bin'), ('length', '64')):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node('Conv', ['x', 'w'], ['y'])], 'g',
                              [helper.make_tensor_value_info('x', 1, [1, 4, 2, 2])],
                              [helper.make_tensor_value_info('y', 1, None)], [weight])
    onnx.save(helper.make_model(graph), str(tmp_path / 'inner' / 'outside.onnx'))
    expected = {
        'noise.onnx': "noise.onnx: not an ONNX model (DecodeError)",
        'inner/outside.onnx': "inner/outside.onnx: cannot read its external data (ValidationError: "
                              "Data of TensorProto ( tensor name: w) should be file inside the "
                              f"{tmp_path / 'inner'}, but the '../secret.bin' points outside the "
                              "directory)",
        'missing.onnx': "missing.onnx: no such file or directory"}
    for name, message in expected.items():
        result = run(['report', name], tmp_path)
        assert (result.returncode, result.stderr.strip().splitlines()) == (
            2, [f"prune-report: error: {message}"]), name


def test_inference_benchmark_quick_with_onnxruntime(tmp_path):
    out, work = tmp_path / 'results', tmp_path / 'work'
    result = subprocess.run([sys.executable, os.path.join(REPO, 'benchmarks', 'inference.py'),
                             '--quick', '--runtimes', 'onnxruntime', '--out', str(out),
                             '--work', str(work)], env=_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((out / 'inference.json').read_text())
    rows = {r['variant']: r for r in data['rows']}
    assert set(rows) == {'dense', 'u90'}
    assert rows['u90']['conv1x1_sparsity'] == pytest.approx(0.9, abs=1e-3)
    for row in rows.values():
        assert row['runs'] == 5 and row['median_ms'] > 0
        assert row['max_abs_diff'] < 1e-4       # onnxruntime vs the exported Paddle model
    assert rows['dense']['speedup'] == 1.0
    table = (out / 'inference.md').read_text()
    assert '| MobileNetV1 x0.25 (quick) | 1 | 1 | onnxruntime |' in table
    assert 'evaluation only' in table and 'end-of-life' in table
    assert (out / 'inference.png').stat().st_size > 10_000


if __name__ == '__main__' and sys.argv[1:2] == ['--make-checkpoints']:
    print(json.dumps(make_checkpoints(sys.argv[2])))
