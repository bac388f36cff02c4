"""Find and read Paddle weights: a path in, ``{name: numpy array}`` out.

Accepted paths:

- a ``.pdparams`` file (``paddle.save`` of a state dict: ppdet, paddleseg, ppcls, hapi);
- a checkpoint directory: the newest ``*.pdparams`` in it or one level below
  (``model_final.pdparams``, ``iter_500/model.pdparams``, ``best_model/model.pdparams``), or the
  one named with ``checkpoint=``;
- an exported inference model: ``<prefix>.pdiparams`` with ``<prefix>.pdmodel`` (Paddle 2.x and
  3.x with PIR off) or ``<prefix>.json`` (Paddle 3.x PIR), given as the prefix, any of its files,
  or the directory holding it (read by :mod:`prune_plugin.report.inference`);
- an ``.onnx`` file (``prune-export --format onnx``; read by :mod:`prune_plugin.report.onnx_file`,
  needs the ``onnx`` package).

Every failure is a :class:`ReportInputError` whose message is one line for the user.
"""
import os

import numpy as np

from . import safe_pickle
from .inference import load_inference_model
from .paddle_files import (PARAMS_EXT, PROGRAM_EXTS, WEIGHTS_EXT, LoadedWeights,  # noqa: F401
                           RefusedFileError, ReportInputError, read_pickle)

STRUCTURED_NAME_KEY = safe_pickle.STRUCTURED_NAME_KEY
MAX_NESTING = 32


def _as_array(value):
    """The numeric array a state-dict value holds, or None."""
    if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], np.ndarray)):  # paddle.save's (tensor name, array)
        value = value[1]
    if isinstance(value, np.ndarray) and value.dtype.kind in 'biufc':
        return value
    return None


def _flatten_arrays(obj, prefix='', depth=0):
    """``{name: array}`` in file order from a (possibly nested) dict; other leaves are dropped.

    Raises:
        ValueError: dicts nested deeper than :data:`MAX_NESTING` (no Paddle file is).
    """
    if depth > MAX_NESTING:
        raise ValueError(f"dicts nested more than {MAX_NESTING} deep")
    found = {}
    for key, value in obj.items():
        if key == STRUCTURED_NAME_KEY:
            continue
        if isinstance(value, dict):
            found.update(_flatten_arrays(value, f"{prefix}{key}.", depth + 1))
            continue
        array = _as_array(value)
        if array is not None:
            found[f"{prefix}{key}"] = array
    return found


def load_pdparams(path):
    """Read a ``.pdparams`` file into ``{name: array}``.

    Every pickle ``paddle.save`` writes (2.x and 3.x, protocols 2 to 4, tensors nested in dicts,
    parameters split in slices) is read without paddle and without running code; a file that
    asks for anything else is refused.

    Args:
        path: The file.

    Returns:
        :class:`LoadedWeights`.

    Raises:
        ReportInputError: refused, truncated, not a pickle, or holds no arrays.
    """
    obj = read_pickle(path)
    if not isinstance(obj, dict):
        raise ReportInputError(f"{path}: not a Paddle state dict (holds a {type(obj).__name__})")
    try:
        arrays = _flatten_arrays(safe_pickle.join_big_params(obj))
    except ValueError as err:
        raise ReportInputError(f"{path}: not a Paddle state dict ({err})") from None
    if not arrays:
        raise ReportInputError(f"{path}: holds no weight arrays")
    return LoadedWeights(path, 'pdparams', arrays)


def inference_prefix(path):
    """The ``<prefix>`` of an exported model if ``path`` names one of its files or the prefix.

    Returns:
        The prefix, or None when ``path`` is not part of an inference model.
    """
    for ext in (PARAMS_EXT + '.info', PARAMS_EXT) + PROGRAM_EXTS:
        if path.endswith(ext):
            return path[:-len(ext)]
    if any(os.path.isfile(path + ext) for ext in (PARAMS_EXT,) + PROGRAM_EXTS):
        return path
    return None


def _candidates(directory):
    """Weights in ``directory`` and one level below: ``[(path or prefix, is_inference)]``.

    A folder reached twice (a symlink such as ``self -> .``) is read once.
    """
    found, seen = [], set()
    subdirs = [directory] + sorted(
        os.path.join(directory, d) for d in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, d)))
    for folder in subdirs:
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for fname in names:
            full = os.path.join(folder, fname)
            if fname.endswith(WEIGHTS_EXT) and os.path.isfile(full):
                found.append((full, False))
            elif fname.endswith(PARAMS_EXT) and os.path.isfile(full):
                found.append((full[:-len(PARAMS_EXT)], True))
    return found


def _matches(path, is_inference, directory, name):
    rel = os.path.relpath(path, directory)
    stem = rel if is_inference else rel[:-len(WEIGHTS_EXT)]
    parts = stem.split(os.sep)
    return name in (stem, parts[-1]) or (len(parts) > 1 and name == parts[0])


def _mtime(path, is_inference):
    return os.path.getmtime(path + PARAMS_EXT if is_inference else path)


def pick_checkpoint(directory, checkpoint=None):
    """Choose the weights to read in a checkpoint directory.

    Args:
        directory: ppdet ``output/<config>``, paddleseg ``save_dir``, ppcls/hapi save dir, or a
            folder holding an exported model.
        checkpoint: A name to pick instead of the newest: a file stem (``model_final``, ``11``,
            ``latest``), a sub-folder (``iter_500``, ``best_model``) or ``folder/stem``.
            (Where the newest is paddleseg's ``ema_model.pdparams``, the ``model.pdparams``
            next to it is taken.)

    Returns:
        ``(path, is_inference)``.

    Raises:
        ReportInputError: no weights there, or ``checkpoint`` matches none / several.
    """
    found = _candidates(directory)
    if not found:
        raise ReportInputError(f"{directory}: no *.pdparams or *.pdiparams in it or one level "
                               "below")
    if checkpoint is not None:
        chosen = [c for c in found if _matches(c[0], c[1], directory, checkpoint)]
        if len(chosen) > 1:  # a folder name: prefer the model weights over EMA copies
            plain = [c for c in chosen if os.path.basename(c[0]) in ('model.pdparams', 'model')]
            chosen = plain or chosen
        if len(chosen) != 1:
            names = ', '.join(os.path.relpath(p, directory) for p, _ in found[:12])
            what = 'matches several' if chosen else 'matches nothing'
            raise ReportInputError(f"--checkpoint {checkpoint} {what} in {directory}; "
                                   f"there: {names}")
        return chosen[0]
    newest_path, newest_is_inference = max(found, key=lambda c: _mtime(*c))
    # a paddleseg iter_N/ holds model.pdparams and ema_model.pdparams: the model is the checkpoint
    sibling = os.path.join(os.path.dirname(newest_path), 'model' + WEIGHTS_EXT)
    if not newest_is_inference and os.path.basename(newest_path).startswith('ema_') \
            and os.path.isfile(sibling):
        return sibling, False
    return newest_path, newest_is_inference


def load_weights(path, checkpoint=None):
    """Read the weights ``path`` points at (file, checkpoint directory or inference model).

    Args:
        path: See the module docstring.
        checkpoint: Name of the checkpoint to pick in a directory (default: the newest).

    Returns:
        :class:`LoadedWeights`.

    Raises:
        ReportInputError: anything wrong with the path or the files; the message is one line.

    Example:
        >>> load_weights('output/ppyoloe', checkpoint='model_final').path
        'output/ppyoloe/model_final.pdparams'
    """
    if os.path.isdir(path):
        found, is_inference = pick_checkpoint(path, checkpoint)
        return load_inference_model(found) if is_inference else load_pdparams(found)
    if checkpoint is not None:
        raise ReportInputError(f"--checkpoint {checkpoint} needs a directory, {path} is not one")
    if os.path.isfile(path) and path.endswith(WEIGHTS_EXT):
        return load_pdparams(path)
    if path.endswith('.onnx') and os.path.exists(path):
        from .onnx_file import load_onnx_model
        return load_onnx_model(path)
    prefix = inference_prefix(path)
    if prefix is not None:
        return load_inference_model(prefix)
    if not os.path.exists(path):
        if os.path.islink(path):
            raise ReportInputError(f"{path}: a broken symlink or a symlink loop")
        raise ReportInputError(f"{path}: no such file or directory")
    if path.endswith('.pdopt'):
        raise ReportInputError(f"{path}: an optimizer state, not model weights; give the "
                               ".pdparams next to it")
    return load_pdparams(path)  # .pdema (ppdet's non-EMA weights) or any other name
