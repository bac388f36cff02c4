"""The report's unpickler reads every pickle Paddle writes, and allows nothing more.

Each format is written here by paddle 3.3.1 (state dicts under protocols 2-4, optimizer states with
LR schedulers and master weights, LR scheduler / GradScaler states, EMA weights, .pdstates with
numpy scalars, Tensors and DenseTensors outside a state dict, a plain ``pickle.dump`` of Tensors)
or was written by paddle 2.6.2 (tests/test_report_paddle26/, make_files.py / make_formats.py).
Each is read with :func:`safe_pickle.load` and compared with ``paddle.load``; the globals they
reference, plus numpy 2's two module names, are exactly :data:`safe_pickle.SAFE_GLOBALS`.
"""
import glob
import json
import os
import pickle

import numpy as np
import paddle
import pytest

from prune_plugin.report import main, safe_pickle

HERE = os.path.join(os.path.dirname(__file__), 'test_report_paddle26')
# numpy >= 2 writes these names (numpy 1.x, installed here, writes numpy.core.*)
NUMPY2_NAMES = {('numpy._core.multiarray', '_reconstruct'), ('numpy._core.multiarray', 'scalar')}
FILES = 25  # 18 written here by paddle 3.3.1, 7 by paddle 2.6.2 (quoted in docs/reliability.md)


class Net(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 4, 3)
        self.bn = paddle.nn.BatchNorm2D(4)
        self.fc = paddle.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(axis=[2, 3]))


def write_paddle33_formats(out):
    """Every pickle paddle 3.3 writes for a checkpoint; returns their paths."""
    paddle.seed(0)
    net = Net()
    paths = []

    def save(name, obj, **kwargs):
        paths.append(os.path.join(out, name))
        paddle.save(obj, paths[-1], **kwargs)

    for protocol in (2, 3, 4):
        save(f'model_p{protocol}.pdparams', net.state_dict(), protocol=protocol)
    x = paddle.randn([2, 3, 8, 8])
    lr = paddle.optimizer.lr
    optimizers = {
        'momentum': paddle.optimizer.Momentum(lr.PiecewiseDecay([2], [0.1, 0.01]),
                                              parameters=net.parameters()),
        'adam': paddle.optimizer.Adam(lr.CosineAnnealingDecay(0.1, 10),
                                      parameters=net.parameters()),
        'adamw_master': paddle.optimizer.AdamW(lr.LinearWarmup(0.1, 5, 0.0, 0.1),
                                               parameters=net.parameters(),
                                               multi_precision=True),
    }
    for name, opt in optimizers.items():
        net(x).mean().backward()
        opt.step()
        opt.clear_grad()
        opt._learning_rate.step()
        save(f'{name}.pdopt', opt.state_dict())
        save(f'{name}_lr.pdopt', opt._learning_rate.state_dict())
    plateau = lr.ReduceOnPlateau(0.1)
    plateau.step(paddle.to_tensor(1.0))
    save('plateau.pdopt', plateau.state_dict())
    save('scaler.pdopt', paddle.amp.GradScaler(init_loss_scaling=1024).state_dict())
    save('model.pdema', {k: v * 0.5 for k, v in net.state_dict().items()})
    save('metric.pdstates', {'epoch': 3, 'metric': np.float64(0.5), 'top1': np.float32(0.7)})
    save('bf16.pdparams', {'w': paddle.to_tensor([1.5, 0.0]).astype('bfloat16'),
                           'h': paddle.ones([2]).astype('float16')})
    dense = net.conv.weight.value().get_tensor()
    for protocol in (2, 4):
        save(f'nested_p{protocol}.pdparams', {'model': net.state_dict(), 'epoch': 1,
                                              'tensor': paddle.to_tensor([0.0, 2.0]),
                                              'dense': [dense]}, protocol=protocol)
    save('tensor.pdparams', paddle.to_tensor([1.0, 0.0]))
    paths.append(os.path.join(out, 'plain_pickle.pdparams'))
    with open(paths[-1], 'wb') as f:  # Tensor.__reduce_ex__ (paddle 3.x): _rebuild_tensor
        pickle.dump({'w': paddle.to_tensor([[1.0, 0.0, 0.0]]), 'b': net.fc.bias}, f)
    return paths


def paddle26_files():
    files = glob.glob(os.path.join(HERE, 'formats', '*')) + [
        os.path.join(HERE, 'tiny.pdparams'), os.path.join(HERE, 'export', 'model.pdiparams.info')]
    assert len(files) == 7
    return sorted(files)


@pytest.fixture(scope='module')
def all_formats(tmp_path_factory):
    return write_paddle33_formats(str(tmp_path_factory.mktemp('formats33'))) + paddle26_files()


def flatten(obj, prefix=''):
    """``{path: leaf}`` with Tensors as numpy arrays and paddle.save's (name, array) as arrays."""
    if isinstance(obj, paddle.Tensor):
        obj = obj.numpy()
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) \
            and isinstance(obj[1], np.ndarray):
        obj = obj[1]
    if isinstance(obj, dict):
        return {k: v for key, value in obj.items()
                for k, v in flatten(value, f"{prefix}{key}.").items()}
    if isinstance(obj, (list, tuple)):
        return {k: v for i, value in enumerate(obj)
                for k, v in flatten(value, f"{prefix}{i}.").items()}
    return {prefix: obj}


def assert_same(got, want, where):
    got, want = flatten(got), flatten(want)
    assert got.keys() == want.keys(), where
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[key], value, err_msg=f"{where} {key}")
            assert got[key].dtype == value.dtype, (where, key)
        else:
            assert got[key] == value and type(got[key]) is type(value), (where, key)


def test_every_paddle_format_reads_as_paddle_load_reads_it(all_formats):
    assert len(all_formats) == FILES
    for path in all_formats:
        if path.endswith('.info'):  # no paddle.load for it: plain pickle.load, trusted here
            with open(path, 'rb') as f:
                want = pickle.load(f)
        else:
            want = paddle.load(path, return_numpy=True)
        got = safe_pickle.load(path)
        if isinstance(got, dict):  # paddle.load drops its name table; the report skips it
            got.pop('StructuredToParameterName@@', None)
        assert_same(got, want, path)


def assert_identical(got, want, where):
    """Same types all the way down (dict / OrderedDict, tuple / list, numpy scalars) and values."""
    assert type(got) is type(want), (where, type(got), type(want))
    if isinstance(want, dict):
        assert list(got) == list(want), where
        for key in want:
            assert_identical(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            assert_identical(a, b, f"{where}[{i}]")
    elif isinstance(want, np.ndarray):
        assert got.dtype == want.dtype, where
        np.testing.assert_array_equal(got, want, err_msg=where)
    else:
        assert got == want, where


def test_load_numpy_returns_what_paddle_load_returns(all_formats):
    """The drop-in for code that hands a user's file to set_state_dict."""
    checked = 0
    for path in all_formats:
        if path.endswith('.info') or path.endswith('plain_pickle.pdparams'):
            continue  # no paddle.load form / paddle.load returns paddle Tensors for these
        assert_identical(safe_pickle.load_numpy(path), paddle.load(path, return_numpy=True), path)
        checked += 1
    assert checked == FILES - 2


def _train(net, steps, x):
    opt = paddle.optimizer.Adam(paddle.optimizer.lr.StepDecay(0.1, 2), parameters=net.parameters())
    for _ in range(steps):
        net(x).mean().backward()
        opt.step()
        opt.clear_grad()
        opt._learning_rate.step()
    return opt


def test_an_optimizer_restored_from_load_numpy_continues_as_from_paddle_load(tmp_path):
    paddle.seed(0)
    x = paddle.randn([2, 3, 8, 8])
    with paddle.utils.unique_name.guard():  # parameter and moment names as in the runs below
        net = Net()
        opt = _train(net, 3, x)
    paddle.save(net.state_dict(), str(tmp_path / 'm.pdparams'))
    paddle.save(opt.state_dict(), str(tmp_path / 'm.pdopt'))
    results = []
    for load in (paddle.load, safe_pickle.load_numpy):
        paddle.seed(1)
        with paddle.utils.unique_name.guard():  # moments are named at the first step
            net2 = Net()
            opt2 = _train(net2, 0, x)
            net2.set_state_dict(load(str(tmp_path / 'm.pdparams')))
            opt2.set_state_dict(load(str(tmp_path / 'm.pdopt')))
            net2(x).mean().backward()
            opt2.step()
        results.append(({k: v.numpy() for k, v in net2.state_dict().items()}, opt2.get_lr()))
    assert results[0][1] == results[1][1] == pytest.approx(0.01)  # 0.1 * 0.1**(3 // 2): restored
    for key, value in results[0][0].items():
        np.testing.assert_array_equal(results[1][0][key], value, err_msg=key)


class RecordingUnpickler(safe_pickle.SafeUnpickler):
    seen = set()

    def find_class(self, module, name):
        RecordingUnpickler.seen.add((module, name))
        return super().find_class(module, name)


def test_the_allow_list_is_exactly_the_globals_paddle_writes(all_formats):
    RecordingUnpickler.seen = set()
    for path in all_formats:
        with open(path, 'rb') as f:
            RecordingUnpickler(f, encoding='latin1').load()
    assert RecordingUnpickler.seen | NUMPY2_NAMES == set(safe_pickle.SAFE_GLOBALS)
    assert not RecordingUnpickler.seen & NUMPY2_NAMES  # numpy 1.23 here


def test_a_numpy2_pickle_reads_under_numpy1(tmp_path, capsys):
    data = pickle.dumps({'w': np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)}, protocol=2)
    assert data.count(b'cnumpy.core.multiarray\n') == 1
    path = tmp_path / 'numpy2.pdparams'
    path.write_bytes(data.replace(b'cnumpy.core.multiarray\n', b'cnumpy._core.multiarray\n'))
    assert main([str(path), '--format', 'json']) == 0
    row = json.loads(capsys.readouterr().out)['params'][0]
    assert (row['name'], row['shape'], row['zeros']) == ('w', [2, 2], 3)


def test_bf16_tensor_pickled_by_paddle_reads_as_its_float_values(tmp_path):
    path = tmp_path / 'bf16.pkl'
    with open(path, 'wb') as f:
        pickle.dump({'w': paddle.to_tensor([1.5, 0.0, -2.0]).astype('bfloat16')}, f)
    got = safe_pickle.load(str(path))['w']
    assert got.dtype == np.float32 and got.tolist() == [1.5, 0.0, -2.0]


def test_a_parameter_saved_in_slices_is_joined_as_paddle_load_joins_it(tmp_path, capsys):
    # paddle.save(protocol=2 or 3) splits arrays over 1 GB into 'name@@.i' slices listed under
    # 'UnpackBigParamInfor@@' (paddle/framework/io_utils.py); the same layout, small
    weight = np.zeros((4, 6), np.float32)
    weight[0, :5] = 1.0
    flat = weight.reshape(-1)
    state = {'fc.bias': np.ones(6, np.float32), 'fc.weight@@.0': flat[:10],
             'fc.weight@@.1': flat[10:20], 'fc.weight@@.2': flat[20:],
             'UnpackBigParamInfor@@': {'fc.weight': {'OriginShape': (4, 6),
                                                     'slices': ['fc.weight@@.0', 'fc.weight@@.1',
                                                                'fc.weight@@.2']}}}
    path = tmp_path / 'sliced.pdparams'
    path.write_bytes(pickle.dumps(state, protocol=2))
    assert paddle.load(str(path), return_numpy=True)['fc.weight'].shape == (4, 6)
    assert main([str(path), '--format', 'json', '--all']) == 0
    rows = {r['name']: r for r in json.loads(capsys.readouterr().out)['params']}
    assert sorted(rows) == ['fc.bias', 'fc.weight']
    assert (rows['fc.weight']['shape'], rows['fc.weight']['zeros']) == ([4, 6], 19)
    state['UnpackBigParamInfor@@']['fc.weight']['OriginShape'] = (5, 6)
    path.write_bytes(pickle.dumps(state, protocol=2))
    assert main([str(path)]) == 2
    assert capsys.readouterr().err == (
        f"prune-report: error: {path}: not a Paddle state dict (UnpackBigParamInfor@@ gives "
        "fc.weight the shape (5, 6), its slices hold 24 values)\n")
