"""Read Paddle's pickles (``.pdparams``, ``.pdopt``, ``.pdema``, ``.pdstates``, ``.pdiparams.info``)
without running anything the file asks for.

A pickle names the functions it calls (its *globals*); an ordinary unpickler imports and calls
them, so a crafted file runs any code. This unpickler resolves only the globals Paddle's own
writers put in a file, each to a type or to a small function of this module that checks its
arguments, and refuses every other global by name. paddle itself is never imported or called.

The globals, as found by writing every format with paddle 2.6.2 and 3.3.1 (numpy 1.23 and 2.2)
and listing them with ``pickletools``:

=============================================  ===============================================
global in the file                             who writes it
=============================================  ===============================================
``numpy.ndarray``, ``numpy.dtype``             every array (``ndarray.__reduce__``)
``numpy.core.multiarray._reconstruct``         every array (numpy 1.x); ``numpy._core...`` (2.x)
``numpy.core.multiarray.scalar``               numpy scalars: LR scheduler and metric values
                                               (``.pdstates``); ``numpy._core...`` under numpy 2
``_codecs.encode``                             array bytes under ``paddle.save(protocol=2)``
``collections.OrderedDict``                    a ``Layer.state_dict()`` nested in a saved dict
``builtins.tuple``                             ``paddle.save`` of a Tensor outside a state dict:
                                               ``tuple(((name, array),))`` (2.1 .. 3.3)
``builtins.eval``                              ``paddle.save`` of a ``DenseTensor``:
                                               ``eval('data', {'data': array})`` (2.1 .. 3.3)
``__builtin__.tuple`` / ``__builtin__.eval``   the same two under ``protocol=2`` (Python 2 names)
``paddle.base.dygraph.math_op_patch``          ``pickle.dump`` of a paddle 3.x Tensor
``._rebuild_tensor``                           (``Tensor.__reduce_ex__``)
=============================================  ===============================================

State dicts, optimizer states (``.pdopt``: moments, master weights, ``LR_Scheduler``), EMA
weights and GradScaler / LR scheduler states need nothing else (paddle 2.6.2 and 3.3.1 write
them with the first four rows only; the ``.pdiparams.info`` of a 2.x export needs none).
``builtins.eval`` resolves to a function that accepts only Paddle's exact form and returns the
array; ``_codecs.encode`` to latin-1 only; ``_rebuild_tensor`` returns the array; ``numpy.ndarray``
to a marker that ``_reconstruct`` accepts and nothing can call.

:func:`load` returns the pickle's object; :func:`load_numpy` returns what
``paddle.load(path, return_numpy=True)`` returns, for code that hands a user's file to
``set_state_dict``.
"""
import collections
import importlib
import math
import os
import pickle
import stat

import numpy as np

STRUCTURED_NAME_KEY = 'StructuredToParameterName@@'
UNPACKED_KEY = 'UnpackBigParamInfor@@'  # sic: paddle's key for a parameter saved in slices
MAX_LINE = 1 << 16     # text opcodes (GLOBAL, INT...) hold short lines
MAX_READ = 1 << 26     # frames are <= 64 KiB + one opcode; arrays are read with readinto


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asks for something a Paddle file never does; nothing of it was run.

    Attributes:
        reason: One line, e.g. ``it references posix.system, which no Paddle file needs``.
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class NotARegularFile(ValueError):
    """A FIFO, device or socket: opening or reading it could block or never end."""


class _NdarrayMarker:
    """Stands for ``numpy.ndarray`` as the argument of ``_reconstruct``; refuses to be called."""

    def __call__(self, *args, **kwargs):
        raise RefusedPickle("it calls numpy.ndarray(...) directly, which numpy never writes")

    def __repr__(self):
        return 'numpy.ndarray'


NDARRAY = _NdarrayMarker()


def _numpy_multiarray():
    for name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError('numpy has no core.multiarray')  # pragma: no cover


_MULTIARRAY = _numpy_multiarray()


def _reconstruct(subtype, shape, dtype_code):
    """numpy's ``_reconstruct(ndarray, (0,), b'b')``: the empty array ``BUILD`` then fills."""
    if subtype is not NDARRAY or shape != (0,) or dtype_code not in (b'b', 'b'):
        raise RefusedPickle(f"it calls numpy _reconstruct({subtype!r}, {shape!r}, "
                            f"{dtype_code!r}), which numpy never writes")
    return _MULTIARRAY._reconstruct(np.ndarray, (0,), b'b')


def _scalar(dtype, data=None):
    """numpy's ``scalar(dtype, bytes)`` for numpy scalars (``np.float64(0.5)``)."""
    if not isinstance(dtype, np.dtype):
        raise RefusedPickle(f"it calls numpy scalar({type(dtype).__name__}, ...), which numpy "
                            "never writes")
    return _MULTIARRAY.scalar(dtype, data) if data is not None else _MULTIARRAY.scalar(dtype)


def _latin1_encode(text, encoding='latin1'):
    """``_codecs.encode(text, 'latin1')``: how protocol 2 stores bytes."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise RefusedPickle(f"it calls _codecs.encode(..., {encoding!r}), which pickle writes "
                            "only with 'latin1'")
    return text.encode('latin-1')


def _dense_tensor(expression, namespace=None, *rest):
    """``eval('data', {'data': array})``, paddle.save's form of a DenseTensor, and nothing else."""
    if (expression != 'data' or rest or not isinstance(namespace, dict)
            or set(namespace) != {'data'} or not isinstance(namespace['data'], np.ndarray)):
        shown = repr(expression) if len(repr(expression)) <= 40 else repr(expression)[:36] + '...'
        raise RefusedPickle(f"it calls builtins.eval({shown}, ...), which Paddle writes only as "
                            "eval('data', {'data': array}) for a DenseTensor")
    return namespace['data']


def _rebuild_tensor(data, dtype=None, device=None, requires_grad=None, *rest):
    """Paddle 3.x ``Tensor.__reduce_ex__``: ``_rebuild_tensor(array, dtype, place, grad)``."""
    if not isinstance(data, np.ndarray) or rest:
        raise RefusedPickle("it calls paddle's _rebuild_tensor without an array")
    if dtype == 'bfloat16' and data.dtype == np.uint16:  # bf16 travels as its raw bits
        return (data.astype(np.uint32) << 16).view(np.float32)
    return data


SAFE_GLOBALS = {
    ('numpy', 'ndarray'): NDARRAY,
    ('numpy', 'dtype'): np.dtype,
    ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): _reconstruct,
    ('numpy.core.multiarray', 'scalar'): _scalar,
    ('numpy._core.multiarray', 'scalar'): _scalar,
    ('_codecs', 'encode'): _latin1_encode,
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('builtins', 'tuple'): tuple,
    ('__builtin__', 'tuple'): tuple,  # protocol 2 writes Python 2 names
    ('builtins', 'eval'): _dense_tensor,
    ('__builtin__', 'eval'): _dense_tensor,
    ('paddle.base.dygraph.math_op_patch', '_rebuild_tensor'): _rebuild_tensor,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`SAFE_GLOBALS` and refuses every other global.

    ``find_class`` is the only way a pickle reaches a callable (``GLOBAL``, ``STACK_GLOBAL``,
    ``INST`` and the ``EXT`` codes all go through it); persistent ids are refused by
    ``pickle.Unpickler`` itself.
    """

    def find_class(self, module, name):
        try:
            return SAFE_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise RefusedPickle(f"it references {module}.{name}, which no Paddle file needs") \
                from None


class BoundedReader:
    """The file as the unpickler sees it: no read past the end, no huge line or frame.

    A crafted header can declare a 10 GB frame or a line without end; the reads it asks for
    are refused before any memory is taken (large arrays come through ``readinto``).
    """

    def __init__(self, f, size):
        self._f = f
        self._left = size

    def read(self, n=-1):
        if n is None or n < 0 or n > self._left:
            raise pickle.UnpicklingError(f"pickle data was truncated (an entry needs {n} bytes, "
                                         f"{self._left} are left)")
        if n > MAX_READ:
            raise pickle.UnpicklingError(f"a {n}-byte frame or string; Paddle writes none "
                                         f"above {MAX_READ} bytes")
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def readinto(self, buffer):
        count = self._f.readinto(buffer)
        self._left -= count
        return count

    def readline(self):
        line = self._f.readline(MAX_LINE)
        self._left -= len(line)
        return line


def open_regular(path):
    """``(file, size)`` for a regular file; FIFOs, devices and sockets are refused before open.

    Raises:
        OSError: missing, unreadable, a directory, a symlink loop (``ELOOP``).
        NotARegularFile: a FIFO, device or socket.
    """
    info = os.stat(path)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, 'Is a directory', path)
    if not stat.S_ISREG(info.st_mode):
        raise NotARegularFile("not a regular file (a FIFO, device or socket)")
    return open(path, 'rb'), info.st_size


def load(path):
    """Unpickle ``path`` with :class:`SafeUnpickler`.

    Args:
        path: A regular file written by ``paddle.save`` / ``pickle.dump``.

    Returns:
        The object; arrays are numpy arrays (never paddle Tensors).

    Raises:
        RefusedPickle: a global or a call Paddle never writes (nothing was run).
        NotARegularFile: a FIFO, device or socket (not opened).
        pickle.UnpicklingError, EOFError, ValueError, ...: not a (complete) pickle.
        OSError: the file cannot be read.

    Example:
        >>> load('output/model_final.pdparams')['conv1.weight'].shape
        (32, 3, 3, 3)
    """
    f, size = open_regular(path)
    with f:
        return SafeUnpickler(BoundedReader(f, size), encoding='latin1').load()


def join_big_params(obj):
    """Join the 1 GB slices ``paddle.save(protocol=2 or 3)`` writes, as paddle.load does.

    Raises:
        ValueError: the slice table does not match the slices in the file.
    """
    info = obj.get(UNPACKED_KEY)
    if not isinstance(info, dict):
        return obj
    obj = dict(obj)
    del obj[UNPACKED_KEY]
    for key, entry in info.items():
        slices = entry.get('slices') if isinstance(entry, dict) else None
        shape = entry.get('OriginShape') if isinstance(entry, dict) else None
        if not isinstance(slices, list) or not all(
                isinstance(obj.get(part), np.ndarray) for part in slices):
            raise ValueError(f"{UNPACKED_KEY} lists slices of {key} that are not in the file")
        joined = np.concatenate([obj.pop(part).reshape(-1) for part in slices])
        if (not isinstance(shape, (tuple, list))
                or not all(isinstance(d, int) and d >= 0 for d in shape)
                or math.prod(shape) != joined.size):
            raise ValueError(f"{UNPACKED_KEY} gives {key} the shape {shape!r}, its slices hold "
                             f"{joined.size} values")
        obj[key] = joined.reshape(shape)
    return obj


def _tensor_tuples_to_arrays(obj):
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) \
            and isinstance(obj[1], np.ndarray):
        return obj[1]
    if isinstance(obj, dict):
        return type(obj)((k, _tensor_tuples_to_arrays(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensor_tuples_to_arrays(v) for v in obj)
    return obj


def load_numpy(path):
    """What ``paddle.load(path, return_numpy=True)`` returns for a pickle, without running it.

    For a code path that hands a user's file to ``set_state_dict`` (a model's ``.pdparams``, an
    optimizer's ``.pdopt``, ``.pdema``, ``.pdstates``): the parameter-name table is dropped,
    sliced parameters are joined and paddle.save's ``(name, array)`` pairs become arrays.

    Raises:
        As :func:`load`, and ValueError for a slice table that does not match.

    Example:
        >>> model.set_state_dict(load_numpy('output/model_final.pdparams'))
    """
    obj = load(path)
    if isinstance(obj, dict):
        obj = join_big_params(obj)
        if STRUCTURED_NAME_KEY in obj:  # paddle.load converts nothing else in this case
            del obj[STRUCTURED_NAME_KEY]
            return obj
    return _tensor_tuples_to_arrays(obj)
