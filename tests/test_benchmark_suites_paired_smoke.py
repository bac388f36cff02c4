"""Smoke run of ``-m benchmarks.suites.paired`` (PP-HumanSeg-Lite demo, 4 iterations, 2 seeds).

What the full run's claims rest on: every fine-tune loaded the parent's saved file (by SHA-256),
the rows of a seed saw one batch order and the seeds different ones, the sparse checkpoints hold
exactly 75% zeros of the 1x1-conv weights, and the summary's paired drops and intervals are the
arithmetic of the per-seed metrics.
"""
import json
import math
import os
import statistics
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'benchmarks'))

from accuracy_stats import t_critical  # noqa: E402
from suites.provenance import file_sha256  # noqa: E402

PPSEG_CONV1X1 = 195384   # 1x1-conv weights of PP-HumanSeg-Lite (2 classes)
SEEDS = (0, 1)


@pytest.fixture(scope='module')
def paired_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('paired')
    out_md, out_json = tmp / 'paired.md', tmp / 'paired.json'
    proc = subprocess.run(
        [sys.executable, '-m', 'benchmarks.suites.paired', '--smoke', '--suites', 'ppseg',
         '--seeds', *map(str, SEEDS), '--threads', '1', '--work-dir', str(tmp / 'runs'),
         '--out', str(out_md), '--json', str(out_json)],
        cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out_json.read_text()), out_md.read_text()


def test_every_fine_tune_starts_from_the_parent_and_seeds_order_the_data(paired_run):
    saved, _ = paired_run
    rows = saved['rows']
    parent = rows[0]
    assert parent['kind'] == 'parent' and parent['loaded'] == []    # from scratch
    assert parent['weights'] == file_sha256(parent['checkpoint']['path'])
    fine_tunes = rows[1:]
    assert [(r['seed'], r['run']) for r in fine_tunes] == [
        (s, run) for s in SEEDS for run in ('dense', 'prune_plugin')]
    for r in fine_tunes:
        assert 'error' not in r, r['error']
        assert [load['sha256'] for load in r['loaded']] == [parent['weights']]
        assert r['start_weights'] == parent['weights'] != r['weights']
    orders = {s: {r['order_digest'] for r in fine_tunes if r['seed'] == s} for s in SEEDS}
    assert all(len(o) == 1 for o in orders.values())
    assert orders[0] != orders[1]
    assert orders[0] == {parent['order_digest']}   # seed 0: the suite's own order
    checks = saved['summary'][0]['checks']
    assert checks == dict(same_start=True, same_order_within_seed=True,
                          orders_differ_across_seeds=True)


def test_sparse_checkpoints_are_exactly_75_percent_of_the_1x1_weights(paired_run):
    saved, table = paired_run
    for r in saved['rows']:
        ckpt = r['checkpoint']
        assert ckpt['conv1x1_weights'] == PPSEG_CONV1X1
        if r['run'] == 'prune_plugin':
            assert ckpt['conv1x1_zeros'] == round(0.75 * PPSEG_CONV1X1) == 146538
            assert ckpt['expected_zeros'] == ckpt['conv1x1_zeros']
            assert r['pruner']['final_ratio'] == 0.75 and not r['pruner']['local_sparsity']
        else:
            assert ckpt['conv1x1_zeros'] < 0.001 * PPSEG_CONV1X1 and r.get('pruner') is None
    assert '146,538 / 195,384 (75.00 %), exact' in table


def test_paired_drop_is_sparse_minus_dense_per_seed(paired_run):
    saved, table = paired_run
    metric = {(r['seed'], r['run']): r['metric'] for r in saved['rows'] if r['kind'] == 'finetune'}
    assert all(0.0 < m <= 100.0 for m in metric.values())
    entries = {e['run']: e for e in saved['summary'][0]['entries']}
    sparse = entries['prune_plugin']
    drops = {s: metric[(s, 'prune_plugin')] - metric[(s, 'dense')] for s in SEEDS}
    assert {int(k): v for k, v in sparse['drop'].items()} == pytest.approx(drops, abs=1e-12)
    ci = sparse['drop_ci']
    assert ci['n'] == 2 and ci['mean'] == pytest.approx(statistics.mean(drops.values()))
    assert ci['half_width'] == pytest.approx(
        t_critical(0.95, 1) * statistics.stdev(drops.values()) / math.sqrt(2))
    assert entries['dense']['drop'] == {}
    assert f"{ci['mean']:+.2f} ± {ci['half_width']:.2f}" in table
    for s in SEEDS:
        assert f"| {s} | prune_plugin | {metric[(s, 'prune_plugin')]:.2f} | {drops[s]:+.2f} |" \
            in table
