"""Where ppdet saves a checkpoint, and the pruner state file written beside it.

ppdet's ``Checkpointer`` saves ``<save_name>.pdparams`` (``.pdopt``, ``.pdema``) in a folder
that depends on the version:

- release/2.6: ``save_dir/<config name>/`` (``Checkpointer.save_dir`` holds that folder);
- develop: ``save_dir/``, or ``save_dir/<save_name>/`` with ``uniform_output_enabled: true``
  (``Checkpointer.save_dir`` is ``save_dir``; the subfolder is added per save).

:func:`checkpoint_folder` reads the folder from the Checkpointer instance that runs, so the
state lands beside the weights in every layout, and ``-r <weights>`` finds it there.

The state file ``<save_name>.pdprune`` is JSON (``iteration``, ``epoch``, ``sparsity``); it is
written atomically (a temporary file renamed over it) and only after the weights it describes.
"""
import json
import os
import tempfile

STATE_SUFFIX = '.pdprune'
WEIGHT_SUFFIXES = ('.pdparams', '.pdopt', '.pdema', '.pdstates')


def checkpoint_folder(checkpointer, save_name):
    """The folder ``checkpointer`` (a ``ppdet.engine.callbacks.Checkpointer``) saves ``save_name`` in.

    Args:
        checkpointer: The Checkpointer of the running Trainer.
        save_name: ``'model_final'``, ``'best_model'`` or the epoch number as a string.
    """
    folder = checkpointer.save_dir
    if getattr(checkpointer, 'uniform_output_enabled', False):
        folder = os.path.join(folder, save_name)
    return folder


def state_path(weights_path):
    """The ``.pdprune`` file of a checkpoint path given with or without its suffix."""
    root, ext = os.path.splitext(weights_path)
    if ext not in WEIGHT_SUFFIXES:
        root = weights_path
    return root + STATE_SUFFIX


def weights_file(weights_path):
    """The ``.pdparams`` file of a checkpoint path given with or without its suffix."""
    root, ext = os.path.splitext(weights_path)
    return (root if ext in WEIGHT_SUFFIXES else weights_path) + '.pdparams'


def file_stamp(path):
    """``(mtime_ns, size)`` of ``path``, or None when it does not exist (to see a new save)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def write_state(weights_path, state):
    """Write ``state`` as ``<weights>.pdprune`` atomically: a temporary file renamed over it.

    A crash leaves either the previous state file or the new one, never half a file.
    """
    path = state_path(weights_path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix='.pdprune-', dir=folder)
    try:
        with os.fdopen(handle, 'w') as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def read_state(weights_path):
    """The state saved beside ``weights_path``, or None when there is no ``.pdprune``.

    Raises:
        ValueError: the file exists but is not a JSON object with an int ``iteration``.
    """
    path = state_path(weights_path)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            state = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a prune_plugin state file ({err})") from None
    iteration = state.get('iteration') if isinstance(state, dict) else None
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise ValueError(f"{path}: expected {{'iteration': int >= 0, ...}}, got {state!r}")
    return state
