"""prune-report on files made to attack it: nothing in a file runs, every refusal is one line.

Crafted pickles (a paddle global next to ``os.system``, ``builtins.eval`` / ``exec``,
``subprocess``, nested reduces, paddle functions that are no tensor constructor, abuse of the
globals Paddle does need), huge and lying files, FIFOs, symlink loops and directories with
thousands of entries. Each crafted case asserts exit 2, exactly one stderr line naming the file
and the global, that the marker file its command would create does not exist, and that
paddle.load was never called.
"""
import _compat_pickle
import codecs
import collections
import os
import pickle
import resource
import shutil
import signal
import struct
import subprocess
import sys

import numpy as np
import paddle
import pytest

from prune_plugin.report import main

PROTOCOLS = (2, 4)
PADDLE_LOAD = paddle.load  # the real one: the tests below replace it with a recorder
HERE = os.path.dirname(__file__)
GiB = 1 << 30


class Call:
    """Pickles as ``fn(*args)``: what a crafted file asks the unpickler to run."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _rebuild_tensor():
    from paddle.base.dygraph.math_op_patch import _rebuild_tensor as fn
    return fn


def _name(fn):
    return f"{fn.__module__}.{fn.__qualname__}"


def _written(name, protocol):
    """The name pickle writes for ``module.name``: protocol 2 uses Python 2's names."""
    module, _, attr = name.rpartition('.')
    if protocol < 3:
        module, attr = _compat_pickle.REVERSE_NAME_MAPPING.get((module, attr), (module, attr))
        module = _compat_pickle.REVERSE_IMPORT_MAPPING.get(module, module)
    return f"{module}.{attr}"


def _refs(name, protocol=4):
    return f"it references {_written(name, protocol)}, which no Paddle file needs"


EVAL_FORM = "which Paddle writes only as eval('data', {'data': array}) for a DenseTensor"


def _eval_of_code(cmd):
    code = f"__import__('os').system({cmd!r})"
    shown = repr(code)[:36] + '...'  # long expressions are cut in the message
    return {'a': Call(eval, code)}, f"it calls builtins.eval({shown}, ...), {EVAL_FORM}"

# name -> fn(marker command, protocol) -> (object to pickle, reason the report must give)
CRAFTED = {
    'paddle global, then os.system (issue 12)': lambda cmd, p: (
        {'a': Call(paddle.to_tensor, [1.0]), 'z': Call(os.system, cmd)},
        _refs(_name(paddle.to_tensor))),
    'os.system, then a paddle global': lambda cmd, p: (
        {'z': Call(os.system, cmd), 'a': Call(paddle.to_tensor, [1.0])}, _refs('posix.system')),
    'real weights, then os.system': lambda cmd, p: (
        {'w': np.ones((4, 4), np.float32), 'z': Call(os.system, cmd)}, _refs('posix.system')),
    'builtins.eval of code': lambda cmd, p: _eval_of_code(cmd),
    "eval('data') with more in its namespace": lambda cmd, p: (
        {'a': Call(eval, 'data', {'data': np.ones(2), '__builtins__': {}})},
        f"it calls builtins.eval('data', ...), {EVAL_FORM}"),
    "eval('data') wrapping os.system": lambda cmd, p: (
        {'a': Call(eval, 'data', {'data': Call(os.system, cmd)})}, _refs('posix.system')),
    'builtins.exec': lambda cmd, p: (
        {'a': Call(exec, f"import os; os.system({cmd!r})")}, _refs('builtins.exec', p)),
    'builtins.__import__': lambda cmd, p: (
        {'a': Call(__import__, 'os')}, _refs('builtins.__import__', p)),
    'subprocess.call': lambda cmd, p: (
        {'a': Call(subprocess.call, cmd.split())}, _refs('subprocess.call', p)),
    'subprocess.Popen': lambda cmd, p: (
        {'a': Call(subprocess.Popen, cmd.split())}, _refs('subprocess.Popen', p)),
    'nested reduce: tuple(list(os.system))': lambda cmd, p: (
        {'a': Call(tuple, ([Call(os.system, cmd)],))}, _refs('posix.system')),
    'os.system deep in a state dict': lambda cmd, p: (
        {'model': collections.OrderedDict(w=np.ones(2), sub={'x': [(Call(os.system, cmd),)]})},
        _refs('posix.system')),
    'paddle.load of another file': lambda cmd, p: (
        {'a': Call(PADDLE_LOAD, '/nonexistent.pdparams')}, _refs(_name(PADDLE_LOAD))),
    'paddle.utils.run_check': lambda cmd, p: (
        {'a': Call(paddle.utils.run_check)}, _refs(_name(paddle.utils.run_check))),
    "paddle's _rebuild_tensor around os.system": lambda cmd, p: (
        {'a': Call(_rebuild_tensor(), Call(os.system, cmd), 'float32', 'cpu', False)},
        _refs('posix.system')),
    "paddle's _rebuild_tensor without an array": lambda cmd, p: (
        {'a': Call(_rebuild_tensor(), cmd, 'float32', 'cpu', False)},
        "it calls paddle's _rebuild_tensor without an array"),
    '_codecs.encode with another codec': lambda cmd, p: (
        {'a': Call(codecs.encode, cmd, 'rot13')},
        "it calls _codecs.encode(..., 'rot13'), which pickle writes only with 'latin1'"),
    'numpy _reconstruct of another type': lambda cmd, p: (
        {'a': Call(np.core.multiarray._reconstruct, collections.OrderedDict, (0,), b'b')},
        "it calls numpy _reconstruct(<class 'collections.OrderedDict'>, (0,), b'b'), which "
        "numpy never writes"),
    'numpy.ndarray called directly (a 4 TB array)': lambda cmd, p: (
        {'a': Call(np.ndarray, (1 << 20, 1 << 20), 'f4')},
        "it calls numpy.ndarray(...) directly, which numpy never writes"),
    'a numpy function that runs code': lambda cmd, p: (
        {'a': Call(np.testing._private.utils.runstring, f"import os; os.system({cmd!r})", {})},
        _refs(_name(np.testing._private.utils.runstring))),
}


@pytest.fixture
def no_paddle_load(monkeypatch):
    calls = []
    monkeypatch.setattr(paddle, 'load', lambda *a, **k: calls.append(a))
    return calls


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refused(path, reason):
    return f"prune-report: error: {path}: refused: {reason} (nothing in the file was run)\n"


@pytest.mark.parametrize('protocol', PROTOCOLS)
@pytest.mark.parametrize('case', sorted(CRAFTED))
def test_a_crafted_pickle_is_refused_in_one_line_and_nothing_runs(case, protocol, tmp_path,
                                                                   capsys, no_paddle_load):
    marker = tmp_path / 'RAN'
    obj, reason = CRAFTED[case](f"touch {marker}", protocol)
    path = tmp_path / 'model.pdparams'
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    assert run(capsys, path) == (2, '', refused(path, reason))
    assert run(capsys, tmp_path) == (2, '', refused(path, reason))  # found in the folder
    assert not marker.exists() and no_paddle_load == []


RAW = {  # hand-written opcodes pickle.dumps never produces for these
    'protocol 0 GLOBAL': (b"cos\nsystem\n(S'touch {m}'\ntR.", _refs('os.system')),
    'INST': (b"(S'touch {m}'\nios\nsystem\n.", _refs('os.system')),
    'GLOBAL of a paddle module attribute': (b"cpaddle\nload\n(S'{m}'\ntR.", _refs('paddle.load')),
}


@pytest.mark.parametrize('case', sorted(RAW))
def test_hand_written_opcodes_are_refused_too(case, tmp_path, capsys, no_paddle_load):
    marker = tmp_path / 'RAN'
    data, reason = RAW[case]
    path = tmp_path / 'w.pdparams'
    path.write_bytes(data.replace(b'{m}', str(marker).encode()))
    assert run(capsys, path) == (2, '', refused(path, reason))
    assert not marker.exists() and no_paddle_load == []


def test_the_issue_file_through_the_real_command_exits_2_with_one_line(tmp_path):
    marker = tmp_path / 'RAN'
    obj, reason = CRAFTED['paddle global, then os.system (issue 12)'](f"touch {marker}", 4)
    path = tmp_path / 'model.pdparams'
    path.write_bytes(pickle.dumps(obj, protocol=4))
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}  # a user's shell:
    env['PYTHONWARNINGS'] = 'ignore'  # paddle warns on import when it is not 1
    result = subprocess.run([sys.executable, '-m', 'prune_plugin.report', str(path)],
                            capture_output=True, text=True, env=env)
    assert (result.returncode, result.stdout, result.stderr) == (2, '', refused(path, reason))
    assert not marker.exists()


def test_an_exported_model_with_a_crafted_info_file_is_refused(tmp_path, capsys, no_paddle_load):
    export = tmp_path / 'export'
    shutil.copytree(os.path.join(HERE, 'test_report_paddle26', 'export'), export)
    assert run(capsys, export)[0] == 0  # the real 2.6 export reads
    marker = tmp_path / 'RAN'
    info = export / 'model.pdiparams.info'
    info.write_bytes(pickle.dumps({'w': Call(os.system, f"touch {marker}")}, protocol=2))
    assert run(capsys, export) == (2, '', refused(info, _refs('posix.system')))
    assert not marker.exists() and no_paddle_load == []
    info.write_bytes(b'not a pickle')  # a damaged (optional) info file: program names instead
    code, out, _ = run(capsys, export, '--format', 'csv', '--all')
    assert code == 0 and 'conv2d_0.w_0' in out


def test_deep_nesting_is_one_line(tmp_path, capsys):
    depth = 100_000  # {'x': {'x': ... {'w': 1}}} opcode by opcode (pickle.dumps recurses)
    path = tmp_path / 'deep.pdparams'
    opcodes = b'}\x8c\x01x' * depth + b'}\x8c\x01wK\x01s' + b's' * depth
    path.write_bytes(b'\x80\x04' + opcodes + b'.')
    assert run(capsys, path) == (2, '', f"prune-report: error: {path}: not a Paddle state dict "
                                        "(dicts nested more than 32 deep)\n")
    export = tmp_path / 'export'
    export.mkdir()
    (export / 'model.pdiparams').write_bytes(b'')
    (export / 'model.json').write_text('[' * 100_000)
    assert run(capsys, export) == (2, '', f"prune-report: error: {export / 'model.json'}: not a "
                                          "Paddle PIR program (RecursionError)\n")


# ----- size, file type, links, folders --------------------------------------------------------
def _sparse(path, header, size=10 * GiB):
    with open(path, 'wb') as f:
        f.write(header)
    os.truncate(path, size)
    if os.stat(path).st_blocks * 512 > 1 << 20:
        pytest.skip("this file system has no sparse files")
    return path


def _huge_cases(tmp):
    (tmp / 'exp_params').mkdir()
    (tmp / 'exp_params' / 'model.json').write_text('{"program": {}}')
    (tmp / 'exp_json').mkdir()
    (tmp / 'exp_json' / 'model.pdiparams').write_bytes(b'\0' * 16)
    return {
        'zeros': (_sparse(tmp / 'zeros.pdparams', b''),
                  "not a Paddle weights file (UnpicklingError: invalid load key, '\\x00'.)"),
        'a 10 GiB frame': (
            _sparse(tmp / 'frame.pdparams', b'\x80\x04\x95' + struct.pack('<Q', 10 * GiB - 11)),
            f"not a Paddle weights file (UnpicklingError: a {10 * GiB - 11}-byte frame or "
            "string; Paddle writes none above 67108864 bytes)"),
        'a line without end': (_sparse(tmp / 'line.pdparams', b'c'),
                               'truncated (UnpicklingError: pickle data was truncated)'),
        'declares 1 TiB in 20 bytes': (
            _sparse(tmp / 'liar.pdparams',
                    b'\x80\x04}\x94\x8c\x01w\x94\x8e' + struct.pack('<Q', 1 << 40) + b'abc', 20),
            None),
        'a 10 GiB pdiparams': (
            _sparse(tmp / 'exp_params' / 'model.pdiparams', b''),
            'not a Paddle parameter file (bad tensor description at byte 12)'),
        'a 10 GiB program': (
            _sparse(tmp / 'exp_json' / 'model.json', b''),
            f"not a Paddle program ({10 * GiB} bytes; programs are under {2 * GiB} bytes)"),
    }


def test_huge_files_are_refused_without_reading_them(tmp_path, capsys):
    cases = _huge_cases(tmp_path)
    for what, (path, message) in cases.items():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        target = path.parent if path.parent.name.startswith('exp') else path
        code, out, err = run(capsys, target)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        assert (code, out, err.count('\n')) == (2, '', 1), (what, err)
        if message is None:  # MemoryError or a short read, depending on the machine's memory
            assert err in (f"prune-report: error: {path}: not a Paddle weights file (it declares "
                           "an entry larger than the memory)\n",
                           f"prune-report: error: {path}: truncated (UnpicklingError: pickle data "
                           "was truncated)\n"), (what, err)
        else:
            assert err == f"prune-report: error: {path}: {message}\n", what
        assert grown_mb < 256, (what, grown_mb)


def test_a_fifo_or_device_is_refused_before_it_is_opened(tmp_path, capsys):
    fifo = tmp_path / 'pipe.pdparams'
    os.mkfifo(fifo)
    def hung(signum, frame):
        raise TimeoutError(f"prune-report blocked on {fifo}")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)  # opening a FIFO without a writer blocks: fail instead of hanging
    try:
        results = [run(capsys, fifo), run(capsys, '/dev/zero')]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert results == [
        (2, '', f"prune-report: error: {fifo}: not a regular file (a FIFO, device or socket)\n"),
        (2, '', "prune-report: error: /dev/zero: not a regular file (a FIFO, device or socket)\n")]


@pytest.fixture(scope='module')
def small_weights():
    w = np.zeros((4, 4), np.float32)
    w[0] = 1.0
    return pickle.dumps({'w': w}, protocol=4)


def test_symlink_loops_give_one_line_or_a_clean_report(tmp_path, capsys, small_weights):
    os.symlink(tmp_path / 'b', tmp_path / 'a')
    os.symlink(tmp_path / 'a', tmp_path / 'b')
    assert run(capsys, tmp_path / 'a') == (
        2, '', f"prune-report: error: {tmp_path / 'a'}: a broken symlink or a symlink loop\n")
    ckpt = tmp_path / 'ckpt'
    ckpt.mkdir()
    (ckpt / 'model.pdparams').write_bytes(small_weights)
    os.symlink(ckpt, ckpt / 'self')       # the folder inside itself
    os.symlink(tmp_path, ckpt / 'up')     # its parent, holding the loop a <-> b
    os.symlink(ckpt / 'loop2', ckpt / 'loop1')
    os.symlink(ckpt / 'loop1', ckpt / 'loop2')
    for argv in ([ckpt], [ckpt, '--checkpoint', 'model']):
        code, out, err = run(capsys, *argv, '--format', 'csv')
        assert (code, err) == (0, '')
        assert out.splitlines()[1:] == ['w,4x4,linear,16,12,0.750000']


def test_folders_with_thousands_of_entries(tmp_path, capsys, small_weights):
    noise = tmp_path / 'noise'
    noise.mkdir()
    for i in range(3000):
        (noise / f"d{i}").mkdir()
        (noise / f"f{i}.txt").write_text('x')
    assert run(capsys, noise) == (
        2, '', f"prune-report: error: {noise}: no *.pdparams or *.pdiparams in it or one level "
        "below\n")
    many = tmp_path / 'many'
    many.mkdir()
    for i in range(2000):
        path = many / f"{i}.pdparams"
        path.write_bytes(small_weights)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    code, out, err = run(capsys, many, '--format', 'json')
    assert (code, err) == (0, '') and f'"path": "{many / "1999.pdparams"}"' in out
    code, out, err = run(capsys, many, '--checkpoint', 'nope')
    assert (code, out, err.count('\n')) == (2, '', 1)
    listed = err.split('there: ')[1].strip().split(', ')
    assert listed == [f"{i}.pdparams" for i in sorted(map(str, range(2000)))[:12]]


def test_readme_quotes_these_counts():
    """docs/reliability.md quotes the sizes of these tests: they must agree."""
    import test_config_validation as config_tests
    import test_report_safe_formats as format_tests
    from prune_plugin.report.safe_pickle import SAFE_GLOBALS
    with open(os.path.join(HERE, '..', 'docs', 'reliability.md')) as f:
        readme = ' '.join(f.read().split())
    quoted = [
        f"crosses {len(config_tests.FIELDS)} fields with {len(config_tests.BAD)} kinds",
        f"{len(config_tests.CASES)} pairs must raise", f"the {len(config_tests.ACCEPTED)} valid",
        f"the {len(config_tests.CASES)} again", f"({len(config_tests.INHERITED)} cases",
        f"the {len(SAFE_GLOBALS)} globals", f"runs {len(CRAFTED)} crafted pickles",
        f"protocols {' and '.join(map(str, PROTOCOLS))} plus {len(RAW)} hand-written",
        f"reads the {format_tests.FILES} files",
    ]
    assert [q for q in quoted if q not in readme] == []
