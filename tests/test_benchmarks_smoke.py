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


def test_accuracy_smoke(tmp_path):
    _run('accuracy.py', '--out-dir', str(tmp_path))
    runs = {(r['row'], r['impl']): r for r in map(
        json.loads, (tmp_path / 'work' / 'runs.jsonl').read_text().splitlines())}
    rows = ['ratio 0.55', 'threshold 0.01', 'ratio 0.75 conv1x1 GMP',
            'ratio 0.75 conv1x1 GMP 2x1 blocks', 'ratio 0.80 conv1x1 GMP',
            'ratio 0.90 conv1x1 GMP']
    expected = {('dense', 'dense'), ('2:4 pattern', 'prune_plugin')}
    expected |= {(row, impl) for row in rows for impl in ('prune_plugin', 'PaddleSlim')}
    assert set(runs) == expected
    dense = runs[('dense', 'dense')]
    assert dense['total_sparsity'] == 0.0 and 0.0 <= dense['top1'] <= 1.0
    # Exact counts read back from the saved checkpoint.
    for row, ratio in (('ratio 0.55', 0.55), ('ratio 0.75 conv1x1 GMP', 0.75),
                       ('ratio 0.80 conv1x1 GMP', 0.80), ('ratio 0.90 conv1x1 GMP', 0.90)):
        ours = runs[(row, 'prune_plugin')]
        count = ours['prunable_count']
        assert ours['prunable_sparsity'] == pytest.approx(round(ratio * count) / count, abs=1e-12)
        assert abs(ours['prunable_sparsity'] - ratio) <= 0.5 / count + 1e-12
        # PaddleSlim keeps the weight at its threshold: one fewer (or a tie's worth)
        assert runs[(row, 'PaddleSlim')]['prunable_sparsity'] == pytest.approx(ratio, abs=1e-4)
    for row in rows[2:]:
        ours = runs[(row, 'prune_plugin')]
        assert ours['conv1x1_sparsity'] == pytest.approx(ours['prunable_sparsity'], abs=1e-12)
    blocks = runs[('ratio 0.75 conv1x1 GMP 2x1 blocks', 'prune_plugin')]
    assert abs(blocks['prunable_sparsity'] - 0.75) <= 2 / blocks['prunable_count']
    assert runs[('2:4 pattern', 'prune_plugin')]['prunable_sparsity'] == 0.5
    assert runs[('threshold 0.01', 'prune_plugin')]['prunable_sparsity'] > 0
    report = (tmp_path / 'accuracy.md').read_text()
    table = _table_rows(report, 'row | pruner')
    assert [(r[0], r[1]) for r in table] == (
        [('dense', 'dense')] + [(row, impl) for row in rows for impl in ('prune_plugin', 'PaddleSlim')]
        + [('2:4 pattern', 'prune_plugin'), ('2:4 pattern', 'PaddleSlim')])
    assert table[-1][2:7] == [''] * 5  # PaddleSlim has no n:m pattern: empty cells
    assert table[1][4] == f"{runs[('ratio 0.55', 'prune_plugin')]['prunable_sparsity']:.4f}"
    verdicts = _table_rows(report, 'target | measured')
    assert len(verdicts) == 2 + len(rows) and all(r[2] in ('PASS', 'FAIL') for r in verdicts)
    assert (tmp_path / 'accuracy.png').stat().st_size > 10_000
