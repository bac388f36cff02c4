"""The bad-config matrix through each suite's ``prune-train`` entry.

Every field of the prune block crossed with every kind of bad value (the matrix of
``test_config_validation``: 241 pairs for ppdet, which also reads its built-in
``UnstructuredPruner`` block, 172 for PaddleSeg and PaddleClas), each written twice in the suite's
own config style: the whole block in a config over the CPU demo config, and a child that changes
one field of a base holding the valid block. Each run must exit 2 with exactly one stderr line
naming the key, and write nothing (no output folder, no demo data, no log file).
The runs go through ``prune_plugin.cli.run`` in one process per suite
(``tests/entry_matrix_driver.py``); a few go through the installed ``prune-train`` command too,
where the whole stderr of the process is checked.
"""
import json
import os
import subprocess
import sys

import pytest

import entry_matrix_driver as driver
from test_config_validation import CASES

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED_RUNS = {'ppdet': 2 * 241, 'ppseg': 2 * 172, 'ppcls': 2 * 172}


def run_matrix(suite, tmp_path):
    out = tmp_path / 'results.json'
    proc = subprocess.run([sys.executable, os.path.join(HERE, 'entry_matrix_driver.py'), suite,
                           str(tmp_path / 'work'), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize('suite', sorted(driver.SUITES))
def test_every_bad_field_through_the_suite_entry_is_one_line_and_writes_nothing(suite, tmp_path):
    results = run_matrix(suite, tmp_path)
    assert len(results) == EXPECTED_RUNS[suite] == 2 * len(driver.cases_for(suite))
    assert {r['style'] for r in results} == {'direct', 'inherited'}
    failures = [r for r in results
                if r['code'] != 2 or len(r['stderr']) != 1 or r['written']
                or not r['stderr'][0].startswith('error: ') or r['key'] not in r['stderr'][0]]
    assert failures == [], failures[:5]
    # the message names the value too, except where the suite's own merge fails first
    unnamed = [r for r in results if r['value'] not in r['stderr'][0]
               and 'PaddleSeg cannot merge a mapping' not in r['stderr'][0]]
    assert unnamed == [], unnamed[:5]


def test_the_matrix_is_the_whole_config_matrix():
    assert len(driver.cases_for('ppdet')) == len(CASES) == 241
    assert len(driver.cases_for('ppseg')) == len(driver.cases_for('ppcls')) == 172


def test_strip_prune_blocks_keeps_everything_else():
    text = ("_BASE_: [a.yml]\nslim: UnstructuredPrune\nUnstructuredPrune:\n  ratio: 0.5\n"
            "  gmp:\n    pruning_steps: 4\n\nepoch: 3\nUnstructuredPruner: {ratio: 0.1}\n"
            "TrainReader:\n  batch_size: 2\n")
    assert driver.strip_prune_blocks(text) == "_BASE_: [a.yml]\nepoch: 3\nTrainReader:\n" \
                                              "  batch_size: 2\n"


PROCESS_CASES = [('ppdet', 'UnstructuredPrune', 'ratio', 'text', ['-o', 'save_dir=out']),
                 ('ppseg', 'UnstructuredPrune.gmp', 'pruning_steps', 'float where int',
                  ['--save_dir', 'out']),
                 ('ppcls', 'UnstructuredPrune', 'sparse_block', 'negative',
                  ['-o', 'Global.output_dir=out'])]


@pytest.mark.parametrize('suite,block,field,kind,flags', PROCESS_CASES)
def test_a_child_config_through_the_installed_command(suite, block, field, kind, flags,
                                                      tmp_path):
    """The whole process's stderr is the one line (no warning, no traceback), nothing written."""
    demo = driver.write_configs(suite, str(tmp_path))
    index = CASES.index((block, field, kind))
    child = driver.case_configs(suite, demo, block, field, kind, index)['inherited']
    before = driver.listing(str(tmp_path))
    command = os.path.join(os.path.dirname(sys.executable), 'prune-train')
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}  # as a user's shell:
    # with OMP_NUM_THREADS != 1 (the test session's 2), paddle's import warns on stderr itself
    proc = subprocess.run([command, '-c', child] + flags, cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=env)
    key = f"{block}.{field}"
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}=") and ' is not allowed: ' \
        in lines[0], proc.stderr
    assert driver.listing(str(tmp_path)) == before
