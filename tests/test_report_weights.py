"""prune-report on hand-built weight files with known zero counts, and on bad input."""
import csv
import io
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import paddle
import pytest

from prune_plugin.report import main

# name -> (shape, zeros, kind)
KNOWN = {
    'backbone.conv1.weight': ((8, 3, 3, 3), 100, 'conv kxk'),
    'backbone.dw.weight': ((8, 1, 3, 3), 36, 'depthwise'),
    'backbone.pw.weight': ((16, 8, 1, 1), 64, 'conv1x1'),
    'backbone.bn.weight': ((16,), 0, 'other'),
    'backbone.bn._mean': ((16,), 16, 'other'),
    'neck.conv1d.weight': ((4, 2, 3), 6, 'other'),
    'head.fc.weight': ((16, 10), 80, 'linear'),
    'head.fc.bias': ((10,), 3, 'other'),
}


def make_arrays(known=KNOWN, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, (shape, zeros, _) in known.items():
        values = rng.uniform(0.1, 1.0, size=shape).astype('float32')
        flat = values.reshape(-1)
        flat[rng.choice(flat.size, zeros, replace=False)] = 0.0
        arrays[name] = values
    return arrays


def save_weights(path, arrays):
    paddle.save({k: paddle.to_tensor(v) for k, v in arrays.items()}, str(path))
    return str(path)


@pytest.fixture(scope='module')
def weights_file(tmp_path_factory):
    return save_weights(tmp_path_factory.mktemp('hand') / 'model.pdparams', make_arrays())


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_counts_kinds_and_totals_match_the_known_zeros(weights_file, capsys):
    code, out, err = run_cli(capsys, weights_file, '--format', 'json', '--all')
    assert code == 0 and err == ''
    report = json.loads(out)
    rows = {r['name']: r for r in report['params']}
    assert list(rows) == list(KNOWN)
    for name, (shape, zeros, kind) in KNOWN.items():
        numel = int(np.prod(shape))
        assert rows[name]['shape'] == list(shape)
        row = rows[name]
        assert (row['kind'], row['numel'], row['zeros']) == (kind, numel, zeros)
        assert rows[name]['sparsity'] == zeros / numel
    numel_all = sum(int(np.prod(s)) for s, _, _ in KNOWN.values())
    zeros_all = sum(z for _, z, _ in KNOWN.values())
    assert report['totals']['all'] == {'params': 8, 'numel': numel_all, 'zeros': zeros_all,
                                       'sparsity': zeros_all / numel_all}
    prunable = [k for k, (s, _, _) in KNOWN.items() if len(s) > 1]
    assert report['totals']['prunable']['params'] == 5
    assert report['totals']['prunable']['zeros'] == sum(KNOWN[k][1] for k in prunable) == 286
    assert report['totals']['conv1x1'] == {'params': 1, 'numel': 128, 'zeros': 64,
                                           'sparsity': 0.5}


def test_table_lists_prunable_weights_with_totals(weights_file, capsys):
    code, out, _ = run_cli(capsys, weights_file)
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert ['backbone.pw.weight', '[16,', '8,', '1,', '1]', 'conv1x1', '128', '64',
            '50.00%'] in lines
    assert ['conv1x1', 'only', '1', '128', '64', '50.00%'] in lines
    assert ['all', 'parameters', '8', '642', '305', '47.51%'] in lines
    assert 'head.fc.bias' not in out
    assert '(3 1-D parameters (biases, norms) hidden: --all lists them)' in out


def test_human_sizes_and_percentages():
    from prune_plugin.report.formatting import human_size, percent
    assert [percent(f) for f in (0.0, 1e-6, 0.55, 0.99999, 1.0)] == \
        ['0.00%', '<0.01%', '55.00%', '>99.99%', '100.00%']
    assert [human_size(n) for n in (216, 1000, 475544, 34_600_000, 62_001_000, 2_500_000_000)] \
        == ['216', '1.0K', '475.5K', '34.6M', '62.0M', '2.5G']


def test_csv_parses_with_exact_counts(weights_file, capsys):
    code, out, _ = run_cli(capsys, weights_file, '--format', 'csv', '--block', '2x1')
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r['name'] for r in rows] == [k for k, (s, _, _) in KNOWN.items() if len(s) > 1]
    fc = next(r for r in rows if r['name'] == 'head.fc.weight')
    assert (fc['shape'], fc['kind'], fc['numel'], fc['zeros']) == ('16x10', 'linear', '160', '80')
    assert float(fc['sparsity']) == 0.5 and fc['block'] == 'FAIL'  # 80 zeros at random


def test_sort_top_and_min_sparsity(weights_file, capsys):
    code, out, _ = run_cli(capsys, weights_file, '--format', 'json', '--sort', 'sparsity',
                           '--top', '2', '--all')
    assert [r['name'] for r in json.loads(out)['params']] == ['backbone.bn._mean',
                                                              'backbone.dw.weight']
    code, out, _ = run_cli(capsys, weights_file, '--format', 'json', '--min-sparsity', '0.5')
    names = [r['name'] for r in json.loads(out)['params']]
    assert names == ['backbone.dw.weight', 'backbone.pw.weight', 'head.fc.weight']
    code, out, _ = run_cli(capsys, weights_file, '--format', 'json', '--sort', 'numel')
    assert [r['name'] for r in json.loads(out)['params']][:2] == ['backbone.conv1.weight',
                                                                  'head.fc.weight']
    code, out, _ = run_cli(capsys, weights_file, '--sort', 'name', '--top', '1')
    assert '(4 more not listed (--top / --min-sparsity)' in out


def test_expect_is_a_ci_gate(weights_file, capsys):
    prunable = 286 / (216 + 72 + 128 + 24 + 160)
    code, out, err = run_cli(capsys, weights_file, '--expect', '0.45')
    assert code == 0 and err == ''
    assert f"PASS (measured {prunable:.4f}; 286 zeros, 270 required)" in out
    code, out, err = run_cli(capsys, weights_file, '--expect', '0.48')
    assert code == 1 and 'FAIL' in out
    assert err == (f"prune-report: prunable sparsity {prunable:.4f} is below the expected 0.4800 "
                   "(286 zeros, 288 required)\n")
    # 286 of 600 is 0.47667 < 0.4767, but the pruner would zero round(0.4767 * 600) = 286
    code, _, err = run_cli(capsys, weights_file, '--expect', '0.4767')
    assert code == 0 and err == ''
    code, _, _ = run_cli(capsys, weights_file, '--expect', '0.5', '--expect-of', 'conv1x1')
    assert code == 0
    code, _, err = run_cli(capsys, weights_file, '--expect', '1.5')
    assert code == 2 and 'should be a number in [0, 1]' in err


def block_and_pattern_arrays():
    pw = np.ones((16, 8, 1, 1), 'float32')
    pw[0:2, 3] = 0  # one whole 2x1 block
    pw[4:6, :] = 0  # four output channels pairs x all inputs
    fc = np.ones((8, 6), 'float32')  # Linear [in, out]: groups of 4 along axis 0
    fc[0:2, :] = 0
    fc[4:6, :] = 0  # 2 of every 4 inputs zero: 2:4 holds; 2x1 blocks (2 out x 1 in) too
    dw = np.ones((8, 1, 3, 3), 'float32')
    dw[1] = 0  # half a 2x1 block: the block check fails
    return {'pw.weight': pw, 'fc.weight': fc, 'dw.weight': dw, 'fc.bias': np.zeros(6, 'float32')}


def test_block_and_pattern_checks_on_hand_built_layers(tmp_path, capsys):
    path = save_weights(tmp_path / 'bp.pdparams', block_and_pattern_arrays())
    code, out, _ = run_cli(capsys, path, '--format', 'json', '--block', '2x1', '--pattern', '2:4')
    assert code == 0
    report = json.loads(out)
    rows = {r['name']: r for r in report['params']}
    assert {k: (r['block'], r['pattern']) for k, r in rows.items()} == {
        'pw.weight': ('ok', 'FAIL'), 'fc.weight': ('ok', 'ok'), 'dw.weight': ('FAIL', 'n/a')}
    block, pattern = report['checks']['block'], report['checks']['pattern']
    assert (block['spec'], block['conforming'], block['violating'], block['holds']) == \
        ('2x1', 2, 1, False)
    assert block['conforming_share'] == (128 + 48) / (128 + 48 + 72)
    assert (pattern['conforming'], pattern['violating'], pattern['not_applicable']) == (1, 1, 1)
    assert pattern['violating_layers'] == ['pw.weight']
    assert pattern['conforming_share'] == 48 / (128 + 48 + 72)
    code, _, err = run_cli(capsys, path, '--block', '2x1', '--strict')
    assert code == 1 and err == 'prune-report: 1 layers violate block 2x1\n'
    code, out, _ = run_cli(capsys, path, '--block', '1x1', '--strict')
    assert code == 0 and 'block 1x1: holds: 3/3 layers conform' in out
    for bad in (['--block', '2y1'], ['--block', '0x1'], ['--pattern', '4:2'], ['--pattern', '2']):
        code, _, err = run_cli(capsys, path, *bad)
        assert code == 2 and bad[1] in err


def test_plot_writes_a_png(weights_file, tmp_path, capsys):
    png = tmp_path / 'plots' / 'sparsity.png'
    code, _, _ = run_cli(capsys, weights_file, '--plot', png, '--all')
    assert code == 0
    data = png.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 5000


def _touch(path, arrays, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(path, arrays)
    os.utime(path, (mtime, mtime))


def _sparsity_of(out):
    return json.loads(out)['totals']['all']['zeros']


def test_checkpoint_directories_pick_the_newest_or_the_named(tmp_path, capsys):
    one = {'w': np.zeros((2, 2), 'float32')}
    two = {'w': np.array([[0, 1], [1, 1]], 'float32')}
    three = {'w': np.array([[0, 0], [0, 1]], 'float32')}
    ppdet = tmp_path / 'ppdet'
    _touch(ppdet / '0.pdparams', one, 1000)
    _touch(ppdet / 'model_final.pdparams', two, 3000)
    _touch(ppdet / '1.pdparams', three, 2000)
    (ppdet / 'model_final.pdopt').write_bytes(b'optimizer')
    code, out, _ = run_cli(capsys, ppdet, '--format', 'json')
    assert code == 0 and json.loads(out)['path'].endswith('model_final.pdparams')
    assert _sparsity_of(out) == 1
    code, out, _ = run_cli(capsys, ppdet, '--format', 'json', '--checkpoint', '1')
    assert _sparsity_of(out) == 3
    seg = tmp_path / 'seg'
    _touch(seg / 'iter_10' / 'model.pdparams', one, 1000)
    _touch(seg / 'iter_20' / 'model.pdparams', three, 3000)
    _touch(seg / 'best_model' / 'model.pdparams', two, 2000)
    _touch(seg / 'best_model' / 'ema_model.pdparams', one, 2000)
    _touch(seg / 'iter_20' / 'ema_model.pdparams', one, 3001)  # saved right after the model
    code, out, _ = run_cli(capsys, seg, '--format', 'json')
    assert json.loads(out)['path'].endswith(os.path.join('iter_20', 'model.pdparams'))
    code, out, _ = run_cli(capsys, seg, '--format', 'json', '--checkpoint', 'best_model')
    assert _sparsity_of(out) == 1
    code, out, _ = run_cli(capsys, seg, '--format', 'json', '--checkpoint',
                           'best_model/ema_model')
    assert _sparsity_of(out) == 4
    code, _, err = run_cli(capsys, seg, '--checkpoint', 'iter_30')
    assert code == 2 and err.count('\n') == 1 and '--checkpoint iter_30 matches nothing' in err


class Evil:
    def __reduce__(self):
        return (os.system, ('touch EVIL_RAN',))


def _bad_inputs(tmp, weights_file):
    good = open(weights_file, 'rb').read()
    (tmp / 'empty').mkdir()
    (tmp / 'notes').mkdir()
    (tmp / 'notes' / 'readme.txt').write_text('hello')
    (tmp / 'truncated.pdparams').write_bytes(good[:len(good) // 2])
    (tmp / 'garbage.pdparams').write_bytes(os.urandom(4096))
    (tmp / 'text.pdparams').write_text('not weights at all\n')
    (tmp / 'list.pdparams').write_bytes(pickle.dumps([1, 2, 3]))
    (tmp / 'evil.pdparams').write_bytes(pickle.dumps({'w': Evil()}))
    (tmp / 'noparams.pdmodel').write_bytes(b'\x0a\x00')
    (tmp / 'bad.json').write_text('{"not": "a program"}')
    (tmp / 'bad.pdiparams').write_bytes(b'\x00' * 16)  # bad.json's params: the json is read first
    (tmp / 'orphan.pdiparams').write_bytes(b'\x00' * 16)
    (tmp / 'opt.pdopt').write_bytes(b'x')
    return {
        'missing path': (tmp / 'nope.pdparams', 'no such file or directory'),
        'dir without weights': (tmp / 'empty', 'no *.pdparams or *.pdiparams'),
        'dir with other files': (tmp / 'notes', 'no *.pdparams or *.pdiparams'),
        'truncated': (tmp / 'truncated.pdparams', 'truncated'),
        'random bytes': (tmp / 'garbage.pdparams', 'not a Paddle weights file'),
        'text file': (tmp / 'text.pdparams', 'not a Paddle weights file'),
        'not a dict': (tmp / 'list.pdparams', 'not a Paddle state dict'),
        'pickle with code': (tmp / 'evil.pdparams', 'references posix.system'),
        'pdmodel without params': (tmp / 'noparams.pdmodel', 'inference model without parameters'),
        'json that is no program': (tmp / 'bad.json', 'not a Paddle PIR program'),
        'params without a program': (tmp / 'orphan.pdiparams',
                                     'no program next to it (orphan.pdmodel or .json)'),
        'optimizer state': (tmp / 'opt.pdopt', 'an optimizer state'),
    }


def test_bad_input_gives_one_line_and_exit_2(tmp_path, weights_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for what, (path, message) in _bad_inputs(tmp_path, weights_file).items():
        code, out, err = run_cli(capsys, path)
        assert code == 2, what
        assert out == '' and err.count('\n') == 1 and err.startswith('prune-report: error: '), \
            (what, err)
        assert message in err, (what, err)
    assert not (tmp_path / 'EVIL_RAN').exists()


def test_module_entry_point_never_prints_a_traceback(tmp_path, weights_file):
    (tmp_path / 'truncated.pdparams').write_bytes(open(weights_file, 'rb').read()[:300])
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    bad = subprocess.run([sys.executable, '-m', 'prune_plugin.report',
                          str(tmp_path / 'truncated.pdparams')], capture_output=True, text=True,
                         env=env, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert bad.returncode == 2 and 'Traceback' not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith('prune-report: error: ')
    good = subprocess.run([sys.executable, '-m', 'prune_plugin.report', weights_file,
                           '--format', 'csv'], capture_output=True, text=True, env=env,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert good.returncode == 0 and good.stdout.splitlines()[0].startswith('name,shape,kind')


def test_other_pickles_paddle_writes(tmp_path, capsys):
    weight = paddle.to_tensor([[1.0, 0.0, 0.0]])
    paddle.save({'w': weight}, str(tmp_path / 'p2.pdparams'), protocol=2)
    paddle.save({'w': weight, 'meta': {'epoch': 3, 'sub': {'x': paddle.zeros([2])}}},
                str(tmp_path / 'nested.pdparams'))
    # pickle.dump of 3.x Tensors: Tensor.__reduce_ex__ -> _rebuild_tensor, read without paddle
    (tmp_path / 'tensors.pdparams').write_bytes(pickle.dumps({'w': weight}))
    expected = {'p2': {'w': 2}, 'nested': {'w': 2, 'meta.sub.x': 2}, 'tensors': {'w': 2}}
    for stem, zeros in expected.items():
        code, out, err = run_cli(capsys, tmp_path / f'{stem}.pdparams', '--all', '--format', 'json')
        assert code == 0, err
        assert {r['name']: r['zeros'] for r in json.loads(out)['params']} == zeros


def test_help_has_copy_paste_examples_and_no_bar_off_a_terminal(capsys):
    from prune_plugin.report.cli import _progress
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    assert 'prune-report ckpt.pdparams --expect 0.75' in out and '{csv,json,table}' in out
    assert _progress() is iter  # pytest's stderr is not a tty


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal_and_only_when_slow(weights_file, monkeypatch, capsys):
    import prune_plugin.report.cli as cli
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, 'stderr', terminal)
    assert main([weights_file]) == 0
    assert terminal.getvalue() == ''  # a fast scan: the 2 s delay never shows the bar
    monkeypatch.setattr(cli, 'PROGRESS_DELAY_S', 0.0)
    assert main([weights_file]) == 0
    assert 'scanning:' in terminal.getvalue() and '/8' in terminal.getvalue()
    capsys.readouterr()


def test_an_unexpected_error_is_one_line_too(weights_file, monkeypatch, capsys):
    import prune_plugin.report.cli as cli

    def broken(*args, **kwargs):
        raise RuntimeError('boom\nsecond line')
    monkeypatch.setattr(cli, 'collect_param_stats', broken)
    code, out, err = run_cli(capsys, weights_file)
    assert code == 2 and out == ''
    assert err == (f"prune-report: error: {weights_file}: unexpected RuntimeError: boom "
                   "(PRUNE_REPORT_DEBUG=1 shows the traceback)\n")
    monkeypatch.setenv('PRUNE_REPORT_DEBUG', '1')
    with pytest.raises(RuntimeError):
        main([weights_file])
