"""Smoke runs of the two benchmarks (tiny settings) and the figures they must produce."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, 'benchmarks')


def _run(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, os.path.join(BENCH, script), '--smoke', *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _table_rows(markdown, header_start):
    """Cells of the markdown table whose header begins with ``header_start``."""
    lines = markdown.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith('| ' + header_start))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith('|'):
            break
        rows.append([cell.strip() for cell in line.strip('|').split('|')])
    return rows


def test_engine_overhead_smoke(tmp_path):
    out = tmp_path / 'engine_overhead.md'
    _run('engine_overhead.py', '--out', str(out))
    report = out.read_text()
    updates = _table_rows(report, 'model | case')
    assert [r[1] for r in updates] == ['global ratio 0.55', 'local ratio 0.55',
                                       '2x1 blocks, ratio 0.55']
    for row in updates:
        ours, slim = float(row[2].replace(',', '')), float(row[3].replace(',', ''))
        speedup = float(row[4].rstrip('x').replace(',', ''))
        assert ours > 0 and slim > 0 and speedup > 0
        assert speedup == pytest.approx(slim / ours, rel=0.05, abs=0.1)
    assert 'scaled x' in updates[2][5]  # PaddleSlim's blocks timed on a subset, said so
    memory = _table_rows(report, 'model | prunable weights')[0]
    assert memory[2] == '1.00 (paddle.bool)'  # one byte per prunable weight
    assert float(memory[3].split()[0]) >= 4.0  # PaddleSlim: a float32 buffer per parameter
    assert memory[4] == '0.00'  # our masks never reach the checkpoint
    overhead = _table_rows(report, 'pruner | dense step')
    assert [r[0] for r in overhead] == ['prune_plugin', 'PaddleSlim 2.6']
    for row in overhead:
        assert float(row[1].replace(',', '')) > 0  # a measured dense step, not a placeholder
        assert row[6].endswith('%')
    verdicts = {r[0]: r for r in _table_rows(report, 'target | measured')}
    memory_verdict = next(r for t, r in verdicts.items() if '1 byte' in t)
    assert memory_verdict[2] == 'PASS'  # 1.00 B <= 1 byte per prunable weight

