"""The paired accuracy benchmark: its statistics on known numbers, its data, and a smoke run.

The smoke run (2 seeds, 64 images, batch 8) checks what the full run's claims rest on: every
fine-tune of a seed starts from that seed's parent and sees the same data order, zero counts
read back from the checkpoints are exact, and the report's intervals are the arithmetic of the
logged per-seed figures.
"""
import json
import math
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, 'benchmarks')
sys.path.insert(0, BENCH)

from accuracy_data import batch_plan, load_split, plan_digest  # noqa: E402
from accuracy_report import summarize_dataset, target_checks  # noqa: E402
from accuracy_stats import paired_differences, t_critical, t_interval  # noqa: E402

GMP_ROWS = {'ratio 0.75 conv1x1 GMP': 0.75, 'ratio 0.75 conv1x1 GMP 2x1 blocks': 0.75,
            'ratio 0.80 conv1x1 GMP': 0.80, 'ratio 0.90 conv1x1 GMP': 0.90}  # table order
SPARSE_ROWS = ['ratio 0.55', 'threshold 0.01', *GMP_ROWS, '2:4 pattern']


# ----- statistics on known numbers ----------------------------------------------------------
def test_t_interval_known_numbers():
    ci = t_interval([1, 2, 3, 4, 5])
    # sd = sqrt(2.5); t(0.975, 4) = 2.776445; half-width = 2.776445 * sqrt(2.5) / sqrt(5)
    assert ci['mean'] == 3.0 and ci['n'] == 5
    assert ci['sd'] == pytest.approx(math.sqrt(2.5), abs=1e-12)
    assert ci['half_width'] == pytest.approx(1.963243, abs=1e-6)
    assert (ci['low'], ci['high']) == pytest.approx((1.036757, 4.963243), abs=1e-6)
    assert t_critical(0.95, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_critical(0.90, 9) == pytest.approx(1.8331, abs=1e-4)
    assert t_interval([0.5, -0.5])['half_width'] == pytest.approx(12.7062 * 0.5, abs=1e-4)


def test_t_interval_edges():
    one = t_interval([0.25])
    assert one['mean'] == 0.25 and one['half_width'] is None and one['sd'] is None
    assert t_interval([2.0, 2.0, 2.0])['half_width'] == 0.0
    with pytest.raises(ValueError, match='at least one value'):
        t_interval([])
    with pytest.raises(ValueError, match=r'in \(0, 1\)'):
        t_interval([1, 2], confidence=95)


def test_paired_differences_only_shared_seeds():
    assert paired_differences({0: 0.9, 1: 0.8, 3: 0.5}, {1: 0.7, 0: 0.95, 2: 0.1}) == \
        pytest.approx({0: -0.05, 1: 0.1})
    assert list(paired_differences({2: 1, 1: 1}, {1: 0, 2: 0})) == [1, 2]


def _finetune(row, impl, seed, top1):
    return dict(kind='finetune', row=row, impl=impl, seed=seed, top1=top1, start_weights='p',
                data_order='o', prunable_zeros=None, prunable_count=None, conv1x1_zeros=0,
                conv1x1_count=1, zeros=0, count=1, prune_seconds=0.0, train_seconds=1.0,
                engine='e')


def _verdicts(dense, plugin, slim, row='ratio 0.75 conv1x1 GMP'):
    runs = [dict(kind='parent', seed=s, top1=0.9, weights='p') for s in range(len(dense))]
    runs += [_finetune('dense fine-tune', 'dense', s, v) for s, v in enumerate(dense)]
    runs += [_finetune(row, 'prune_plugin', s, v) for s, v in enumerate(plugin)]
    runs += [_finetune(row, 'PaddleSlim', s, v) for s, v in enumerate(slim)]
    summary = summarize_dataset(runs, ['dense fine-tune', row])
    return {t.split(':')[0]: (m, v) for t, m, v in target_checks(summary)}, summary


def test_targets_judge_known_numbers():
    dense = [0.950, 0.960, 0.955, 0.945, 0.950]
    # drops -0.2, -0.3, -0.4, -0.1, -0.3 pt: mean -0.26, sd 0.114, half-width 0.142 -> PASS
    plugin = [0.948, 0.957, 0.951, 0.944, 0.947]
    slim = [0.949, 0.950, 0.951, 0.944, 0.940]
    verdicts, summary = _verdicts(dense, plugin, slim)
    entry = next(e for e in summary['entries'] if e['impl'] == 'prune_plugin')
    assert entry['drop_ci']['mean'] * 100 == pytest.approx(-0.26, abs=1e-9)
    assert entry['drop_ci']['half_width'] * 100 == pytest.approx(
        2.776445 * statistics.stdev([-0.2, -0.3, -0.4, -0.1, -0.3]) / math.sqrt(5), abs=1e-5)
    assert verdicts['ratio 0.75 conv1x1 GMP (prune_plugin)'] == ('-0.26 ± 0.14', 'PASS')
    assert verdicts['ratio 0.75 conv1x1 GMP'][1] == 'PASS'  # plugin - slim: +0.26 ± 0.44
    # same mean drop, two seeds far off: half-width 0.71 pt > 0.5 -> FAIL
    verdicts, _ = _verdicts(dense, [0.948, 0.957, 0.951, 0.944 - 0.009, 0.947 + 0.009], slim)
    assert verdicts['ratio 0.75 conv1x1 GMP (prune_plugin)'][1] == 'FAIL'
    # plugin below PaddleSlim on every seed by 1 pt: the whole CI is below 0 -> FAIL
    verdicts, _ = _verdicts(dense, [v - 0.01 for v in slim], slim)
    assert verdicts['ratio 0.75 conv1x1 GMP'] == ('-1.00 ± 0.00 (CI -1.00 to -1.00)', 'FAIL')
    verdicts, _ = _verdicts(dense[:1], plugin[:1], slim[:1])
    assert verdicts['ratio 0.75 conv1x1 GMP (prune_plugin)'][1].startswith('NOT RESOLVED')


# ----- data ---------------------------------------------------------------------------------
def test_batch_plan_is_a_function_of_its_seed():
    plan = batch_plan(10, 2, 4, seed=3)
    assert [len(i) for i, _ in plan] == [4, 4, 2, 4, 4, 2]
    assert sorted(np.concatenate([i for i, _ in plan[:3]])) == list(range(10))
    assert all(s.shape == (len(i), 2) and s.min() >= 0 and s.max() <= 4 for i, s in plan)
    assert plan_digest(plan) == plan_digest(batch_plan(10, 2, 4, seed=3))
    assert plan_digest(plan) != plan_digest(batch_plan(10, 2, 4, seed=4))


@pytest.mark.parametrize('name, train, val', [('digits', 1437, 360), ('mnist5k', 4000, 1000)])
def test_offline_datasets(name, train, val):
    (train_x, train_y), (val_x, val_y) = load_split(name)
    assert train_x.shape == (train, 3, 32, 32) and val_x.shape == (val, 3, 32, 32)
    assert train_x.dtype == np.float32 and train_y.dtype == np.int64
    counts = np.bincount(np.concatenate([train_y, val_y]), minlength=10)
    assert len(counts) == 10 and counts.min() > 0.08 * (train + val)  # all ten digits, balanced
    assert abs(float(train_x.mean())) < 1e-3 and float(train_x.std()) == pytest.approx(1, abs=1e-3)


# ----- smoke run ----------------------------------------------------------------------------
def _run(*args):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, os.path.join(BENCH, 'accuracy.py'), '--smoke', *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _table_rows(markdown, header_start):
    lines = markdown.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith('| ' + header_start))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith('|'):
            break
        rows.append([cell.strip() for cell in line.strip('|').split('|')])
    return rows


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp('accuracy')
    first = _run('--out-dir', str(out))
    again = _run('--out-dir', str(out))  # resumable: nothing left to train
    runs = [json.loads(line) for line in (out / 'work' / 'runs.jsonl').read_text().splitlines()]
    return dict(out=out, first=first, again=again, runs=runs,
                report=(out / 'accuracy.md').read_text())


def test_smoke_runs_every_row_once_and_resumes(smoke):
    assert '2 parents to train' in smoke['first'] and '28 fine-tunes to run' in smoke['first']
    assert '0 parents to train' in smoke['again'] and '0 fine-tunes to run' in smoke['again']
    fine = [(r['row'], r['impl'], r['seed']) for r in smoke['runs'] if r['kind'] == 'finetune']
    expected = {('dense fine-tune', 'dense'), ('2:4 pattern', 'prune_plugin')}
    expected |= {(row, impl) for row in SPARSE_ROWS[:-1] for impl in ('prune_plugin', 'PaddleSlim')}
    assert sorted(fine) == sorted((row, impl, seed) for row, impl in expected for seed in (0, 1))


def test_smoke_is_paired(smoke):
    """Same parent weights for every row of a seed (checked against the file), same data order."""
    import paddle
    from accuracy_train import FINETUNE_PLAN_OFFSET, weights_digest
    parents = {r['seed']: r for r in smoke['runs'] if r['kind'] == 'parent'}
    assert sorted(parents) == [0, 1]
    assert parents[0]['weights'] != parents[1]['weights']
    for seed, parent in parents.items():
        saved = paddle.load(str(smoke['out'] / 'work' / 'parents' / f"digits_seed{seed}.pdparams"))
        assert weights_digest(saved) == parent['weights']
        # the smoke's fine-tune plan: 64 images, 3 epochs, batch 8
        order = plan_digest(batch_plan(64, 3, 8, seed + FINETUNE_PLAN_OFFSET))
        mine = [r for r in smoke['runs'] if r['kind'] == 'finetune' and r['seed'] == seed]
        assert len(mine) == 14
        assert {r['start_weights'] for r in mine} == {parent['weights']}
        assert {r['data_order'] for r in mine} == {order}
        assert {r['steps'] for r in mine} == {24}
        assert parent['data_order'] == plan_digest(batch_plan(64, 1, 8, seed))
    assert 'every fine-tune started from its seed\'s parent weights (digest): yes' in smoke['report']
    assert 'seed saw the same data order (digest): yes' in smoke['report']


def test_smoke_exact_zero_counts(smoke):
    runs = {(r['row'], r['impl'], r['seed']): r for r in smoke['runs'] if r['kind'] == 'finetune'}
    for seed in (0, 1):
        assert runs[('dense fine-tune', 'dense', seed)]['conv1x1_zeros'] == 0
        ours = runs[('ratio 0.55', 'prune_plugin', seed)]
        assert ours['prunable_zeros'] == round(0.55 * ours['prunable_count'])
        for row, ratio in GMP_ROWS.items():
            ours, slim = runs[(row, 'prune_plugin', seed)], runs[(row, 'PaddleSlim', seed)]
            count = ours['prunable_count']
            assert ours['conv1x1_zeros'] == ours['prunable_zeros']  # conv1x1_only
            if '2x1' in row:  # whole 2x1 blocks: within one block of the target
                assert abs(ours['prunable_zeros'] - ratio * count) <= 2
            else:
                assert ours['prunable_zeros'] == round(ratio * count)
            # PaddleSlim keeps the weights at its threshold: a few fewer zeros
            assert 0 <= round(ratio * count) - slim['prunable_zeros'] <= 4
        pattern = runs[('2:4 pattern', 'prune_plugin', seed)]
        assert pattern['prunable_zeros'] * 2 == pattern['prunable_count']
        assert runs[('threshold 0.01', 'prune_plugin', seed)]['prunable_zeros'] > 0
    table = _table_rows(smoke['report'], 'row | pruner')
    cell = {(r[0], r[1]): r for r in table}
    ours = [runs[('ratio 0.90 conv1x1 GMP', 'prune_plugin', s)] for s in (0, 1)]
    zeros, count = ours[0]['prunable_zeros'], ours[0]['prunable_count']
    assert cell[('ratio 0.90 conv1x1 GMP', 'prune_plugin')][2] == \
        f"{zeros:,} / {count:,} ({zeros / count * 100:.2f} %)"
    assert cell[('2:4 pattern', 'PaddleSlim')][2] == '(no n:m pattern)'


def test_smoke_report_intervals_are_the_logged_arithmetic(smoke):
    runs = {(r['row'], r['impl'], r['seed']): r['top1'] for r in smoke['runs']
            if r['kind'] == 'finetune'}
    cell = {(r[0], r[1]): r for r in _table_rows(smoke['report'], 'row | pruner')}
    t_975_1 = 12.706205  # two seeds: 1 degree of freedom
    for row in SPARSE_ROWS:
        drops = [(runs[(row, 'prune_plugin', s)] - runs[('dense fine-tune', 'dense', s)]) * 100
                 for s in (0, 1)]
        half = t_975_1 * statistics.stdev(drops) / math.sqrt(2)
        assert cell[(row, 'prune_plugin')][6] == f"{statistics.mean(drops):+.2f} ± {half:.2f}"
        if row == '2:4 pattern':
            continue
        gaps = [(runs[(row, 'prune_plugin', s)] - runs[(row, 'PaddleSlim', s)]) * 100 for s in (0, 1)]
        half = t_975_1 * statistics.stdev(gaps) / math.sqrt(2)
        assert cell[(row, 'prune_plugin')][7] == f"{statistics.mean(gaps):+.2f} ± {half:.2f}"
    verdicts = _table_rows(smoke['report'], 'target | measured')
    assert [v[0].split(':')[0] for v in verdicts] == [
        'ratio 0.75 conv1x1 GMP (prune_plugin)', 'ratio 0.90 conv1x1 GMP (prune_plugin)',
        *[row for row in SPARSE_ROWS[:-1]]]
    assert (smoke['out'] / 'accuracy.png').stat().st_size > 10_000
