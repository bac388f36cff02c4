"""Read the parameters of an exported inference model without running it.

``<prefix>.pdiparams`` is Paddle's ``save_combine`` stream: the persistable tensors of the program,
sorted by name, each as ``uint32 version, uint64 lod_level, [lod], uint32 version, int32 size,
TensorDesc (protobuf), raw data``. The names come from the program: ``<prefix>.pdmodel`` (a
``ProgramDesc`` protobuf, Paddle 2.x and 3.x with PIR off) or ``<prefix>.json`` (Paddle 3.x PIR,
its ``builtin.parameter`` ops). ``<prefix>.pdiparams.info`` (2.x) maps them to structured names.
"""
import json
import math
import mmap
import os
import struct

import numpy as np

from . import safe_pickle
from .paddle_files import (PARAMS_EXT, LoadedWeights, RefusedFileError, ReportInputError,
                           read_pickle)

MAX_PROGRAM_BYTES = 2 << 30  # protobuf cannot parse more; a PIR JSON of that size is no program

# framework.proto VarType.Type -> numpy dtype (BF16 is read as uint16 and widened)
_DTYPES = {
    0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32,
    6: np.float64, 20: np.uint8, 21: np.int8, 22: 'bf16', 23: np.complex64, 24: np.complex128,
}
_FEED_FETCH_TYPES = (9, 10)  # FEED_MINIBATCH, FETCH_LIST
_TRANSPOSED_OPS = ('conv2d_transpose', 'conv3d_transpose', 'depthwise_conv2d_transpose',
                   'conv1d_transpose')


def _varint(buf, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def parse_tensor_desc(buf):
    """``(dtype code, dims)`` from a serialized ``VarType.TensorDesc``."""
    dtype, dims, pos = None, [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            if field_no == 1:
                dtype = value
            elif field_no == 2:
                dims.append(value)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            chunk, pos = buf[pos:pos + size], pos + size
            if field_no == 2:  # packed dims
                inner = 0
                while inner < len(chunk):
                    value, inner = _varint(chunk, inner)
                    dims.append(value)
        else:
            raise ValueError(f"unexpected wire type {wire}")
    if dtype is None:
        raise ValueError("tensor description without a data type")
    return dtype, [d - (1 << 64) if d >= 1 << 63 else d for d in dims]


def read_combined_tensors(path):
    """Every tensor of a ``save_combine`` file, in file order.

    Args:
        path: ``<prefix>.pdiparams``.

    Returns:
        list of numpy arrays (zero-copy views of the mapped file where the dtype allows: a
        10 GB file that is no parameter file is refused after reading its first bytes).

    Raises:
        ReportInputError: the file is truncated or not a ``save_combine`` stream.
    """
    buf = _map(path)
    arrays, pos = [], 0
    try:
        while pos < len(buf):
            (version,) = struct.unpack_from('<I', buf, pos)
            (lod_level,) = struct.unpack_from('<Q', buf, pos + 4)
            if version != 0 or lod_level > 8:
                raise ValueError(f"bad tensor header at byte {pos}")
            pos += 12
            for _ in range(lod_level):
                (size,) = struct.unpack_from('<Q', buf, pos)
                pos += 8 + size
            (tensor_version, desc_size) = struct.unpack_from('<Ii', buf, pos)
            if tensor_version != 0 or not 0 < desc_size < 4096:
                raise ValueError(f"bad tensor description at byte {pos}")
            pos += 8
            code, dims = parse_tensor_desc(buf[pos:pos + desc_size])
            pos += desc_size
            if code not in _DTYPES or any(d < 0 for d in dims):
                raise ValueError(f"unsupported tensor (type {code}, dims {dims}) at byte {pos}")
            dtype = _DTYPES[code]
            raw = np.uint16 if dtype == 'bf16' else dtype
            count = math.prod(dims)  # Python ints: crafted dims cannot wrap around
            nbytes = count * np.dtype(raw).itemsize
            if pos + nbytes > len(buf):
                raise ValueError(f"truncated (tensor {len(arrays)} needs {nbytes} bytes at byte "
                                 f"{pos}, the file has {len(buf)})")
            array = np.frombuffer(buf, dtype=raw, count=count, offset=pos).reshape(dims)
            if dtype == 'bf16':
                array = (array.astype(np.uint32) << 16).view(np.float32)
            arrays.append(array)
            pos += nbytes
    except struct.error:
        raise ReportInputError(f"{path}: truncated (a tensor header is cut off at byte {pos})") \
            from None
    except ValueError as err:
        if str(err).startswith('truncated'):
            raise ReportInputError(f"{path}: {err}") from None
        raise ReportInputError(f"{path}: not a Paddle parameter file ({err})") from None
    return arrays


def _open_regular(path):
    """``safe_pickle.open_regular`` with its refusal as a :class:`ReportInputError`."""
    try:
        return safe_pickle.open_regular(path)
    except safe_pickle.NotARegularFile as err:
        raise ReportInputError(f"{path}: {err}") from None


def _map(path):
    """A read-only map of a regular file (empty bytes for an empty one)."""
    f, size = _open_regular(path)
    with f:
        if size == 0:
            return b''
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def _read_program(path):
    """The bytes of a program file, refused without reading when larger than any program."""
    f, size = _open_regular(path)
    with f:
        if size > MAX_PROGRAM_BYTES:
            raise ReportInputError(f"{path}: not a Paddle program ({size} bytes; programs are "
                                   f"under {MAX_PROGRAM_BYTES} bytes)")
        return f.read()


def _names_from_pdmodel(path):
    from paddle.base.proto import framework_pb2  # the protobuf schema ships with paddle
    program = framework_pb2.ProgramDesc()
    data = _read_program(path)
    try:
        program.ParseFromString(data)
    except Exception as err:  # protobuf's DecodeError and friends
        raise ReportInputError(f"{path}: not a Paddle program ({type(err).__name__})") from None
    if not program.blocks:
        raise ReportInputError(f"{path}: not a Paddle program (no blocks)")
    names = sorted({v.name for v in program.blocks[0].vars
                    if v.persistable and v.type.type not in _FEED_FETCH_TYPES})
    transposed = {arg for block in program.blocks for op in block.ops
                  if op.type in _TRANSPOSED_OPS
                  for var in op.inputs if var.parameter == 'Filter' for arg in var.arguments}
    return names, transposed


def _walk_ops(node):
    """Every op dict (``{'#': type, 'A': attributes, ...}``) in a PIR JSON program."""
    if isinstance(node, dict):
        if 'A' in node and isinstance(node.get('#'), str):
            yield node
        for value in node.values():
            yield from _walk_ops(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_ops(value)


def _value_id(value):
    return value.get('%') if isinstance(value, dict) else None


def _names_from_pir_json(path):
    try:
        program = json.loads(_read_program(path).decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ReportInputError(f"{path}: not a Paddle PIR program ({type(err).__name__})") \
            from None
    if not isinstance(program, dict) or 'program' not in program:
        raise ReportInputError(f"{path}: not a Paddle PIR program (no 'program' key)")
    ops = list(_walk_ops(program['program']))
    by_value = {}  # PIR value id -> parameter name, from the builtin.parameter ('p') ops
    for op in ops:
        attrs = op['A']
        if op['#'] == 'p' and isinstance(attrs, list) and len(attrs) > 3 \
                and isinstance(attrs[3], str):
            by_value[_value_id(op.get('O'))] = attrs[3]
    transposed = set()
    for op in ops:
        inputs = op.get('I')
        if op['#'].split('.')[-1] in _TRANSPOSED_OPS and isinstance(inputs, list) \
                and len(inputs) > 1 and _value_id(inputs[1]) in by_value:
            transposed.add(by_value[_value_id(inputs[1])])
    return sorted(set(by_value.values())), transposed


def _structured_names(prefix):
    """``{program name: structured name}`` from a 2.x ``.pdiparams.info``, if any.

    The file is optional: a damaged one gives program names; one that asks to run anything is
    refused (:class:`ReportInputError`).
    """
    info = prefix + PARAMS_EXT + '.info'
    if not os.path.isfile(info):
        return {}
    try:
        table = read_pickle(info)
    except RefusedFileError:
        raise
    except ReportInputError:
        return {}
    if not isinstance(table, dict):
        return {}
    return {k: v['structured_name'] for k, v in table.items()
            if isinstance(v, dict) and isinstance(v.get('structured_name'), str)}


def load_inference_model(prefix):
    """Read ``<prefix>.pdiparams`` and name its tensors from the program next to it.

    Args:
        prefix: Path without extension (``output_inference/yolov3/model``).

    Returns:
        :class:`LoadedWeights` keyed by structured names when a ``.pdiparams.info`` exists,
        else by program names (``conv2d_0.w_0``).

    Raises:
        ReportInputError: no params file, no program, or they disagree.
    """
    params = prefix + PARAMS_EXT
    programs = [prefix + ext for ext in ('.pdmodel', '.json') if os.path.isfile(prefix + ext)]
    if not os.path.isfile(params):
        if programs:
            raise ReportInputError(f"{programs[0]}: inference model without parameters "
                                   f"({os.path.basename(params)} is missing)")
        raise ReportInputError(f"{prefix}: no such file or directory")
    if not programs:
        raise ReportInputError(f"{params}: no program next to it ({os.path.basename(prefix)}"
                               ".pdmodel or .json) to name its tensors")
    program = programs[0]
    if program.endswith('.pdmodel'):
        (names, transposed), fmt = _names_from_pdmodel(program), 'inference (pdmodel)'
    else:
        (names, transposed), fmt = _names_from_pir_json(program), 'inference (pir json)'
    tensors = read_combined_tensors(params)
    if len(names) != len(tensors):
        raise ReportInputError(f"{params}: holds {len(tensors)} tensors but "
                               f"{os.path.basename(program)} lists {len(names)} parameters")
    structured = _structured_names(prefix)
    arrays = {structured.get(name, name): array for name, array in zip(names, tensors)}
    transposed = frozenset(structured.get(name, name) for name in transposed)
    return LoadedWeights(params, fmt, arrays, transposed)
