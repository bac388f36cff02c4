"""What the report reads and what it returns: the file kinds, the one-line errors, the weights.

Shared by :mod:`.loading` (state dicts, checkpoint folders) and :mod:`.inference` (exported
models), so that neither imports the other's internals.
"""
import pickle
from dataclasses import dataclass, field

from . import safe_pickle

WEIGHTS_EXT = '.pdparams'
PARAMS_EXT = '.pdiparams'
PROGRAM_EXTS = ('.pdmodel', '.json')


class ReportInputError(ValueError):
    """The path is missing, holds no weights, or is not a readable Paddle file."""


class RefusedFileError(ReportInputError):
    """The file asks to run something no Paddle file does; it was not loaded."""


@dataclass
class LoadedWeights:
    """Weights read from one file.

    Attributes:
        path: The file (or inference-model prefix) actually read.
        source_format: ``'pdparams'``, ``'inference (pdmodel)'`` or ``'inference (pir json)'``.
        arrays: ``{name: numpy array}`` in file order.
        transposed: Names of transposed-conv weights, when the file says (exported programs do;
            state dicts do not).
    """
    path: str
    source_format: str
    arrays: dict = field(default_factory=dict)
    transposed: frozenset = frozenset()


def _one_line(err):
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(': ')


def read_pickle(path):
    """Unpickle a Paddle file without running code (see :mod:`.safe_pickle`).

    Args:
        path: ``.pdparams``, ``.pdema``, ``.pdopt``, ``.pdiparams.info``...

    Returns:
        The object (numpy arrays where Paddle had tensors).

    Raises:
        RefusedFileError: it references a global Paddle never writes (named in the message).
        ReportInputError: one line: truncated, not a pickle, not a regular file, unreadable.
    """
    try:
        return safe_pickle.load(path)
    except safe_pickle.RefusedPickle as err:
        raise RefusedFileError(f"{path}: refused: {err.reason} (nothing in the file was run)") \
            from None
    except safe_pickle.NotARegularFile as err:
        raise ReportInputError(f"{path}: {err}") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError, OverflowError, RecursionError) as err:
        truncated = isinstance(err, EOFError) or 'truncated' in str(err)
        kind = 'truncated' if truncated else 'not a Paddle weights file'
        raise ReportInputError(f"{path}: {kind} ({_one_line(err)})") from None
    except MemoryError:
        raise ReportInputError(f"{path}: not a Paddle weights file (it declares an entry larger "
                               "than the memory)") from None
    except OSError as err:
        raise ReportInputError(f"{path}: cannot read ({err.strerror or err})") from None
