"""Torn checkpoints: the pruner state file names the weights it was written with.

A suite writes a checkpoint's files one after the other (``.pdparams``, ``.pdopt``, ...), and
the plugin writes the ``.pdprune`` state last. A process killed in between leaves weights
without a state, a state beside weights it was not written with (a checkpoint name saved again,
e.g. PaddleClas's ``latest``), or a truncated file. So:

* :func:`write_state_file` writes the state atomically (a temporary file renamed over it), with
  the size and SHA-256 of each weights file already on disk (``"files"``);
* :func:`check_checkpoint`, before a resume, refuses with one line naming the file
  (:class:`TornCheckpointError`, exit 2 in the CLI) when a file the suite resumes from is
  missing, differs from what the state recorded, or (when no state recorded it) is not a
  complete file (a pickle, or JSON for ``.pdstates``). A state file without ``"files"`` (older
  plugin versions) is accepted.
"""
import hashlib
import json
import os
import tempfile

from .core.errors import PruneConfigError
from .fault_hook import pause_point

FILES_KEY = 'files'
ADVICE = "resume from the checkpoint before it"


class TornCheckpointError(PruneConfigError):
    """A checkpoint a run resumes from is incomplete or mixed; the message names the file."""

    def __init__(self, path, problem):
        self.key, self.value, self.allowed = path, None, problem
        ValueError.__init__(self, f"{path}: {problem}")


def fingerprint(path):
    """``{'size': bytes, 'sha256': hex}`` of ``path``."""
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
            size += len(block)
    return {'size': size, 'sha256': digest.hexdigest()}


def write_state_file(path, state, weights_paths=()):
    """Write ``state`` as JSON to ``path`` atomically, with the fingerprints of ``weights_paths``.

    Args:
        path: The ``.pdprune`` file.
        state: A JSON-able dict (the pruner's ``state_dict()`` and extras).
        weights_paths: The checkpoint's files already written (those missing are skipped).

    Returns:
        ``path``.
    """
    pause_point('after_weights')
    files = {_key(path, p): fingerprint(p) for p in weights_paths if os.path.isfile(p)}
    content = dict(state)
    if files:
        content[FILES_KEY] = files
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix='.pdprune-', dir=folder)
    try:
        with os.fdopen(handle, 'w') as f:
            json.dump(content, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def _key(state_path, path):
    """How the state names ``path``: its suffix after the state's own stem (``.pdparams``), so
    a checkpoint renamed as a whole (``model_final.*`` -> ``0.*``) still matches; else its name."""
    stem = os.path.splitext(os.path.basename(state_path))[0]
    name = os.path.basename(path)
    return name[len(stem):] if name.startswith(stem + '.') else name


def _recorded_path(state_path, key):
    if key.startswith('.'):
        return os.path.splitext(state_path)[0] + key
    return os.path.join(os.path.dirname(state_path), key)


def without_files(state):
    """``state`` without the fingerprints (what the pruner and callers see)."""
    if isinstance(state, dict) and FILES_KEY in state:
        state = {k: v for k, v in state.items() if k != FILES_KEY}
    return state


def _complete(path):
    """Read ``path`` (JSON such as PaddleClas's ``.pdstates``, else a pickle with the safe
    unpickler): a truncated or foreign file raises."""
    from .report.safe_pickle import load
    try:
        with open(path, 'rb') as f:
            is_json = f.read(1) == b'{'
        if is_json:
            with open(path, encoding='utf-8') as f:
                json.load(f)
        else:
            load(path)
    except Exception as err:  # noqa: BLE001 - any failure means the file cannot be resumed from
        detail = ' '.join(str(err).split())[:120] or type(err).__name__
        raise TornCheckpointError(path, f"not a complete file ({type(err).__name__}: "
                                  f"{detail}); the save that wrote it was cut short? "
                                  f"{ADVICE}") from None


def check_checkpoint(state_path, required, optional=(), need_state=False):
    """Refuse a checkpoint that cannot be resumed exactly; return its state (or None).

    Args:
        state_path: The checkpoint's ``.pdprune`` file (it may not exist).
        required: Files the suite reads when it resumes: each must exist and be complete.
        optional: Files the suite reads when they exist.
        need_state: The resume needs the state file (no other source for the iteration).

    Returns:
        The state as written (with ``"files"``), or None when there is no state file.

    Raises:
        TornCheckpointError: a missing / mismatched / truncated file.
    """
    state = None
    if os.path.isfile(state_path):
        try:
            with open(state_path, encoding='utf-8') as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = None  # the suite's own reader names a bad state file
    for path in required:
        if not os.path.isfile(path):
            others = [os.path.basename(p) for p in list(required) + [state_path]
                      if p != path and os.path.isfile(p)]
            raise TornCheckpointError(path, f"missing beside {', '.join(others) or 'nothing'}: "
                                      f"the checkpoint is incomplete (its save was cut short?); "
                                      f"{ADVICE}")
    recorded = state.get(FILES_KEY) if isinstance(state, dict) else None
    recorded = recorded if isinstance(recorded, dict) else {}
    checked = set()
    for key, expected in recorded.items():
        path = _recorded_path(state_path, key)
        checked.add(os.path.abspath(path))
        if not os.path.isfile(path):
            raise TornCheckpointError(path, f"missing, but {os.path.basename(state_path)} was "
                                      f"written with it; {ADVICE}")
        if fingerprint(path) != expected:
            raise TornCheckpointError(path, f"is not the file {os.path.basename(state_path)} "
                                      "was written with (a later save of this checkpoint was "
                                      f"cut short?); {ADVICE}")
    for path in list(required) + [p for p in optional if os.path.isfile(p)]:
        if os.path.abspath(path) not in checked:
            _complete(path)
    if need_state and state is None and not os.path.isfile(state_path):
        raise TornCheckpointError(state_path, "missing: the pruner state (iteration) of this "
                                  "checkpoint is needed to continue the prune schedule (its save "
                                  f"was cut short, or it was trained without the pruner); {ADVICE}")
    return state
