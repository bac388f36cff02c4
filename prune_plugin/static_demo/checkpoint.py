"""Saving and loading the demo's epoch folders: ``model.*`` (``paddle.static.save``: weights,
optimizer moments) and ``pruner.json`` (the pruner's state and the epoch it finished)."""
import json
import os

import paddle

from ..static.program import program_params
from .flags import model_prefix

PRUNER_FILE = 'pruner.json'


def save(folder, program, pruner, epoch):
    """Write ``folder/model.*`` and ``folder/pruner.json`` (weights already sparse)."""
    os.makedirs(folder, exist_ok=True)
    paddle.static.save(program, os.path.join(folder, 'model'))
    with open(os.path.join(folder, PRUNER_FILE), 'w') as out:
        json.dump({'epoch': epoch, 'pruner': pruner.state_dict()}, out)


def read_pruner_file(folder):
    """``{'epoch': e, 'pruner': state}`` saved in ``folder``."""
    with open(os.path.join(folder, PRUNER_FILE)) as saved:
        return json.load(saved)


def load_all(folder, program, exe):
    """Weights and optimizer state of ``folder`` into the scope (for a resume)."""
    paddle.static.load(program, model_prefix(folder), exe)


def load_params(path, program):
    """Only the parameters of ``program`` found in ``path`` (a pretrained or pruned model).

    Returns:
        The number of parameters loaded.
    """
    state = paddle.static.load_program_state(model_prefix(path))
    wanted = {p.name for p in program_params(program)}  # not a PIR scheduler's learning rate
    found = {k: v for k, v in state.items() if k in wanted}
    paddle.static.set_program_state(program, found)
    return len(found)
