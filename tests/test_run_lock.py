"""Two runs writing one save folder: the second stops before any work (one line naming the
folder and the other pid, exit 2); the first's checkpoints are untouched; a lock left by a
killed run is taken over with a warning (prune_plugin/run_lock.py)."""
import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.fault_injection import SegDemo, final_result, load_weights, masks
from prune_plugin import run_lock
from prune_plugin.demo_data import data_root
from prune_plugin.run_lock import LOCK_NAME, RunLockError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dead_pid():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def write_lock(folder, **owner):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LOCK_NAME), 'w') as f:
        json.dump(owner, f)


def test_a_live_owner_stops_the_second_run_with_one_line_naming_folder_and_pid(tmp_path):
    folder = str(tmp_path / 'out')
    write_lock(folder, pid=os.getppid(), host=socket.gethostname(), started='then')
    with pytest.raises(RunLockError) as err:
        run_lock.acquire(folder)
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith(f"{folder} is in use by another training run (pid {os.getppid()}")
    assert json.load(open(os.path.join(folder, LOCK_NAME)))['pid'] == os.getppid()  # kept


def test_a_lock_of_another_host_is_not_taken(tmp_path):
    folder = str(tmp_path / 'out')
    write_lock(folder, pid=dead_pid(), host='not-' + socket.gethostname(), started='then')
    with pytest.raises(RunLockError, match='on not-'):
        run_lock.acquire(folder)


def test_a_stale_lock_of_a_dead_pid_is_taken_over_with_a_warning(tmp_path, caplog):
    folder = str(tmp_path / 'out')
    pid = dead_pid()
    write_lock(folder, pid=pid, host=socket.gethostname(), started='then')
    with caplog.at_level(logging.WARNING, logger='prune_plugin'):
        path = run_lock.acquire(folder)
    assert [r.getMessage() for r in caplog.records] == [
        f"{folder}: taking over the lock of pid {pid} on {socket.gethostname()}, which no "
        "longer runs (a run that was killed); its checkpoints are kept"]
    assert json.load(open(path))['pid'] == os.getpid()
    assert run_lock.acquire(folder) == path            # the same process again: no error
    run_lock.release(path)
    assert not os.path.exists(path)
    assert os.listdir(folder) == []


def test_a_reused_pid_is_not_the_owner(tmp_path):
    """A lock whose pid now belongs to another process (other start time) is stale."""
    folder = str(tmp_path / 'out')
    write_lock(folder, pid=os.getppid(), host=socket.gethostname(), started='then',
               proc_start=-1)
    path = run_lock.acquire(folder)
    assert json.load(open(path))['pid'] == os.getpid()
    run_lock.release(path)


def test_the_same_command_twice_the_second_stops_and_the_first_finishes_intact(tmp_path):
    """prune-train (paddleseg demo) held at its 3rd step by the test hook; the same command
    again exits 2 with one line; released, the first run ends with its exact checkpoints."""
    demo = SegDemo(data_root())
    demo.prepare(str(tmp_path))
    out = str(tmp_path / 'out')
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': REPO,
           'PRUNE_PLUGIN_DATA': data_root(),
           'PRUNE_PLUGIN_FAULT_PAUSE': 'step:3', 'PRUNE_PLUGIN_FAULT_MARK': str(tmp_path / 'mark'),
           'PRUNE_PLUGIN_FAULT_CONTINUE': str(tmp_path / 'go_on')}
    first = subprocess.Popen(demo.command(out), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 300
        while not (tmp_path / 'mark').exists() and first.poll() is None \
                and time.time() < deadline:
            time.sleep(0.05)
        assert (tmp_path / 'mark').exists(), first.communicate()[0][-3000:]
        before = sorted(os.listdir(out))
        second_env = {k: v for k, v in env.items() if not k.startswith('PRUNE_PLUGIN_FAULT')}
        second = subprocess.run(demo.command(out), cwd=tmp_path, env=second_env,
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        errors = [line for line in second.stderr.splitlines() if line.startswith('error:')]
        assert len(errors) == 1 and 'Traceback' not in second.stderr, second.stderr[-3000:]
        assert errors[0].startswith(f"error: {out} is in use by another training run (pid "
                                    f"{first.pid} on {socket.gethostname()}, started ")
        assert errors[0].endswith(f"lock file {os.path.join(out, LOCK_NAME)}): wait for it to "
                                  "end or use another save folder")
        assert '[TRAIN]' not in second.stdout                      # stopped before any work
        assert sorted(os.listdir(out)) == before                 # the second wrote nothing
        (tmp_path / 'go_on').write_text('')
        log = first.communicate(timeout=300)[0]
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, log[-3000:]
    assert not os.path.exists(os.path.join(out, LOCK_NAME))    # removed at exit
    result = final_result(demo, out)
    assert result['state']['iteration'] == demo.ITERS
    assert result['zeros'] == round(0.75 * result['size'])     # global 75% of the 1x1 weights
    for iteration in range(2, demo.ITERS + 1, 2):               # every checkpoint of the first run
        state = json.load(open(os.path.join(out, f'iter_{iteration}', 'model.pdprune')))
        assert state['iteration'] == iteration
        zeros = masks(load_weights(os.path.join(out, f'iter_{iteration}', 'model.pdparams')))
        assert sum(int(m.sum()) for m in zeros.values()) > 0
