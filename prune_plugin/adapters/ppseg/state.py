"""The pruner's state beside each checkpoint ``paddleseg.core.train`` writes.

paddleseg 2.8 and 2.9 save, every ``save_interval`` iterations and at the last one::

    <save_dir>/iter_<N>/model.pdparams     weights (sparse: the pruned positions are zeros)
    <save_dir>/iter_<N>/model.pdopt        optimizer state
    <save_dir>/iter_<N>/ema_model.pdparams (--use_ema)

and ``--resume_model <save_dir>/iter_<N>`` reads the first two and resumes at iteration N (the
number after the last ``_``). The plugin writes ``<save_dir>/iter_<N>/model.pdprune`` beside them:
JSON ``{"iteration": <pruner iteration>}``; the masks come back from the zeros of the weights.
The checkpoint folder is deleted with its state when paddleseg drops old checkpoints
(``keep_checkpoint_max``).
"""
import json
import os

from ...core.errors import PruneConfigError

STATE_NAME = 'model.pdprune'
# Where plugin versions before the state file kept it: a key inside model.pdopt.
LEGACY_OPT_KEY = 'prune_plugin.pruner'


def checkpoint_dir(save_dir, iteration):
    """The folder paddleseg saves iteration ``iteration`` in."""
    return os.path.join(save_dir, f"iter_{int(iteration)}")


def state_path(checkpoint_folder):
    """``<checkpoint_folder>/model.pdprune``."""
    return os.path.join(checkpoint_folder, STATE_NAME)


def write_state(checkpoint_folder, state):
    """Write ``state`` (the pruner's ``state_dict()``) beside the checkpoint's weights.

    Returns:
        The path written.
    """
    path = state_path(checkpoint_folder)
    with open(path, 'w') as f:
        json.dump(state, f)
    return path


def read_state(checkpoint_folder):
    """The pruner state saved in ``checkpoint_folder``, or None when there is none.

    Raises:
        PruneConfigError: the file is there but is not the JSON the plugin writes.
    """
    path = state_path(checkpoint_folder)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError) as err:
        raise PruneConfigError(path, ' '.join(str(err).split()),
                               "the JSON pruner state prune_plugin writes") from None
    if not isinstance(state, dict) or not isinstance(state.get('iteration'), int):
        raise PruneConfigError(path, state, "a JSON object {\"iteration\": int}")
    return state


def resumed_iteration(resume_model):
    """The iteration paddleseg resumes ``resume_model`` at (the number after the last ``_``)."""
    if not resume_model:
        return None
    tail = os.path.normpath(resume_model).split('_')[-1]
    return int(tail) if tail.isdigit() else None
