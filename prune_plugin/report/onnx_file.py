"""Read the weights of an ONNX model without running it (``prune-report model.onnx``).

The weights are the graph's initializers and the tensors of its ``Constant`` nodes (paddle2onnx
2.x writes every Paddle parameter as a ``Constant`` named after it, ``conv2d_0.w_0``, the name
``prune-report`` prints for the exported Paddle model). paddle2onnx's own helper constants
(``p2o.*``, ``helper.*``: shapes, scales) and integer / boolean tensors are not weights and are
left out. ``prune-export --format onnx`` stores the checkpoint's structured names in the file's
metadata (and a Paddle export that wrote ``<stem>.pdiparams.info`` lists them next to it): the
rows are then named as in the checkpoint. Transposed convolutions are read from the graph
(``ConvTranspose`` weight inputs), as the Paddle program readers do. Tensors stored outside
the file (``external_data``) are read through onnx's own resolver, which refuses locations
outside the model's folder. Nothing in the file is run.
"""
import os

from .paddle_files import LoadedWeights, ReportInputError
from .safe_pickle import NotARegularFile, open_regular

ONNX_EXT = '.onnx'
MAX_ONNX_BYTES = 2 << 30   # protobuf's limit: larger models keep their tensors in external files
NAMES_KEY = 'prune_plugin.structured_names'   # metadata written by prune-export --format onnx
HELPER_PREFIXES = ('p2o.', 'helper.')   # paddle2onnx's own shape / scale constants


def _import_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as err:
        raise ReportInputError(f"reading .onnx files needs the onnx package ({err}): run "
                               "`pip install 'prune_plugin[onnx]'` or `pip install onnx`") \
            from None
    return onnx, numpy_helper


def _read(path):
    try:
        f, size = open_regular(path)
    except NotARegularFile as err:
        raise ReportInputError(f"{path}: {err}") from None
    with f:
        if size > MAX_ONNX_BYTES:
            raise ReportInputError(f"{path}: not an ONNX model ({size} bytes; ONNX files are "
                                   f"under {MAX_ONNX_BYTES} bytes)")
        return f.read()


def _is_weight(array, name):
    return (array.dtype.kind in 'fc' and array.ndim >= 1 and array.size > 0
            and not name.startswith(HELPER_PREFIXES))


def _graph_tensors(graph, numpy_helper):
    """``[(name, TensorProto)]`` of the graph's initializers and Constant values, in order."""
    found = [(t.name, t) for t in graph.initializer]
    for node in graph.node:
        if node.op_type == 'Constant' and node.output:
            for attr in node.attribute:
                if attr.name == 'value' and attr.HasField('t'):
                    found.append((node.output[0], attr.t))
    return found


def _metadata_names(model):
    """``{tensor name: structured name}`` from the metadata ``prune-export`` writes, or {}."""
    import json
    for entry in model.metadata_props:
        if entry.key == NAMES_KEY:
            try:
                names = json.loads(entry.value)
            except (ValueError, RecursionError):
                return {}
            if isinstance(names, dict):
                return {k: v for k, v in names.items()
                        if isinstance(k, str) and isinstance(v, str)}
    return {}


def load_onnx_model(path, names_from='auto'):
    """Read the weights of ``path`` (an ``.onnx`` file).

    Args:
        path: The file.
        names_from: ``'auto'``: program names (``conv2d_0.w_0``) become structured names
            (``backbone.conv1._conv.weight``) from the file's ``prune_plugin.structured_names``
            metadata (``prune-export --format onnx`` writes it), else from the Paddle export's
            ``<stem>.pdiparams.info`` next to the file (Paddle 2.x / legacy-IR exports);
            None: the names in the file.

    Returns:
        :class:`~prune_plugin.report.loading.LoadedWeights` (``source_format`` ``'onnx'``).

    Raises:
        ReportInputError: onnx not installed (one line naming the pip command), not an ONNX
            model, external data missing or outside the folder, or no weights.
    """
    onnx, numpy_helper = _import_onnx()
    data = _read(path)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as err:  # protobuf's DecodeError and friends
        raise ReportInputError(f"{path}: not an ONNX model ({type(err).__name__})") from None
    if not model.HasField('graph'):
        raise ReportInputError(f"{path}: not an ONNX model (no graph)")
    from onnx import external_data_helper
    try:
        external_data_helper.load_external_data_for_model(
            model, os.path.dirname(os.path.abspath(path)))
    except Exception as err:  # noqa: BLE001 - missing file, location outside the folder...
        raise ReportInputError(f"{path}: cannot read its external data "
                               f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") \
            from None
    arrays, transposed = {}, set()
    for name, tensor in _graph_tensors(model.graph, numpy_helper):
        try:
            array = numpy_helper.to_array(tensor)
        except Exception as err:  # noqa: BLE001 - a tensor whose bytes do not fit its shape
            raise ReportInputError(f"{path}: tensor {name!r} is damaged ({type(err).__name__})") \
                from None
        if _is_weight(array, name):
            arrays[name] = array
    for node in model.graph.node:
        if node.op_type == 'ConvTranspose' and len(node.input) > 1 and node.input[1] in arrays:
            transposed.add(node.input[1])
    if not arrays:
        raise ReportInputError(f"{path}: an ONNX model without weight tensors")
    if names_from == 'auto':
        structured = _metadata_names(model)
        if not structured and path.endswith(ONNX_EXT):
            from .inference import _structured_names
            structured = _structured_names(path[:-len(ONNX_EXT)])
        if structured:
            arrays = {structured.get(k, k): v for k, v in arrays.items()}
            transposed = {structured.get(k, k) for k in transposed}
    return LoadedWeights(path, 'onnx', arrays, frozenset(transposed))
