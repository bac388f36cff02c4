"""One training run per checkpoint folder: ``<save_dir>/.prune_plugin.lock``.

Two processes writing the same folder (the same command started twice) would overwrite each
other's checkpoints, and a ``.pdprune`` state of one could end up beside the weights of the
other. So each train command takes a lock file in the folder it saves to before any work:

* created with ``O_CREAT | O_EXCL`` (atomic), holding ``{"pid", "host", "started",
  "proc_start"}`` (``proc_start``: the process start time from ``/proc``, so a reused pid is
  not mistaken for the owner);
* removed when the process exits (``atexit``); a process killed with SIGKILL leaves it behind;
* a lock of a process that no longer runs on this host is stale: it is taken over with a
  warning naming the dead pid;
* a lock of a live process (or of another host: it cannot be checked from here) stops the new
  run before it starts: one line naming the folder and the other pid, exit code 2
  (:class:`RunLockError`, a :class:`PruneConfigError`).

The same process may take the lock of a folder again (``prune-train`` and the suite hook both
call :func:`acquire`).
"""
import atexit
import json
import logging
import os
import socket
import time

from .core.errors import PruneConfigError

LOCK_NAME = '.prune_plugin.lock'
logger = logging.getLogger('prune_plugin')
_held = {}


class RunLockError(PruneConfigError):
    """Another run holds the folder's lock (the message names the folder, pid and host)."""

    def __init__(self, folder, owner):
        self.key, self.value, self.allowed = folder, owner, 'a folder no other run writes'
        ValueError.__init__(
            self, f"{folder} is in use by another training run (pid {owner.get('pid')} on "
                  f"{owner.get('host')}, started {owner.get('started')}; lock file "
                  f"{os.path.join(folder, LOCK_NAME)}): wait for it to end or use another "
                  f"save folder")


def _proc_start(pid):
    """Start time of ``pid`` in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(owner):
    """True unless ``owner`` (a lock's content) is a process of this host that has ended."""
    if owner.get('host') != socket.gethostname():
        return True
    pid = owner.get('pid')
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    recorded, now = owner.get('proc_start'), _proc_start(pid)
    return recorded is None or now is None or recorded == now


def _me():
    return {'pid': os.getpid(), 'host': socket.gethostname(),
            'started': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
            'proc_start': _proc_start(os.getpid())}


def _read(path):
    try:
        with open(path) as f:
            owner = json.load(f)
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}   # half-written or damaged: treated as the lock of an unknown, dead process


def _is_mine(owner):
    return owner.get('pid') == os.getpid() and owner.get('host') == socket.gethostname()


def acquire(folder):
    """Take ``<folder>/.prune_plugin.lock`` for this process (until it exits).

    Args:
        folder: The folder the run saves checkpoints in (created if missing).

    Returns:
        The lock file's path (None on ranks other than 0 of a distributed run: rank 0 saves).

    Raises:
        RunLockError: a live process holds it.
    """
    if os.environ.get('PADDLE_TRAINER_ID', '0') not in ('', '0'):
        return None
    folder = os.path.abspath(folder)
    path = os.path.join(folder, LOCK_NAME)
    if path in _held:
        return path
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    for _ in range(3):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read(path)
            if not owner:       # another process may be between creating and writing it
                time.sleep(0.5)
                owner = _read(path)
            if _is_mine(owner):
                break
            if owner and _alive(owner):
                raise RunLockError(folder, owner) from None
            logger.warning("%s: taking over the lock of pid %s on %s, which no longer runs "
                           "(a run that was killed); its checkpoints are kept", folder,
                           owner.get('pid', '?'), owner.get('host', '?'))
            stale = f"{path}.stale-{os.getpid()}"
            try:
                os.replace(path, stale)   # one process wins the stale file; the others retry
                os.remove(stale)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(handle, 'w') as f:
            json.dump(_me(), f)
            f.flush()
            os.fsync(f.fileno())
        break
    else:
        raise RunLockError(folder, _read(path))
    _held[path] = {'created': created}
    atexit.register(release, path)
    return path


def release(path):
    """Remove the lock file at ``path`` if this process holds it (and the folder, if the lock
    created it and nothing else was written there: a run stopped by bad input leaves nothing)."""
    held = _held.pop(path, None)
    if not held:
        return
    if _is_mine(_read(path)):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    folder = os.path.dirname(path)
    if held.get('created') and os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)


def release_all():
    """Release every lock this process holds (a command that stopped on an error)."""
    for path in list(_held):
        release(path)
