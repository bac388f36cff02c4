"""prune-report on files that Paddle 2.6.2 itself wrote (tests/test_report_paddle26/make_files.py).

Only paddlepaddle 3.3.1 is installed in CI; these small files (a conv / BN / depthwise / 1x1 /
transposed conv / Linear net with a third of every weight zeroed) pin the 2.6 formats: the
``paddle.save`` pickle and the ``jit.save`` export (.pdmodel + .pdiparams + .pdiparams.info).
"""
import json
import os

import numpy as np

from prune_plugin.report import main

HERE = os.path.join(os.path.dirname(__file__), 'test_report_paddle26')


def expected():
    with open(os.path.join(HERE, 'expected.json')) as f:
        data = json.load(f)
    assert data['paddle'] == '2.6.2'
    return data['params']


def report(capsys, path):
    code = main([path, '--all', '--format', 'json', '--block', '2x1'])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_paddle26_checkpoint_and_export_give_the_zeros_paddle_26_counted(capsys):
    want = expected()
    numel = sum(int(np.prod(p['shape'])) for p in want.values())
    zeros = sum(p['zeros'] for p in want.values())
    for path, fmt in ((os.path.join(HERE, 'tiny.pdparams'), 'pdparams'),
                      (os.path.join(HERE, 'export'), 'inference (pdmodel)'),
                      (os.path.join(HERE, 'export', 'model.pdmodel'), 'inference (pdmodel)')):
        got = report(capsys, path)
        assert got['format'] == fmt
        rows = {r['name']: r for r in got['params']}
        assert {n: {'shape': r['shape'], 'zeros': r['zeros']} for n, r in rows.items()} == want
        assert (got['totals']['all']['numel'], got['totals']['all']['zeros']) == (numel, zeros)
        assert rows['up.weight']['transposed'] == (fmt != 'pdparams')  # the program says so
        assert [rows[n]['kind'] for n in ('stem.weight', 'dw.weight', 'pw.weight', 'fc.weight')] \
            == ['conv kxk', 'depthwise', 'conv1x1', 'linear']
