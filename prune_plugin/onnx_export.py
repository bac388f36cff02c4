"""``prune-export ... --format onnx``: the suite's Paddle export, then an ONNX file next to it.

The suite exports as usual (``<dir>/model.json`` or ``.pdmodel`` + ``model.pdiparams``; ppcls
``inference.*``); then paddle2onnx converts that program to ``<prefix>.onnx`` (opset 13). The
zeros of the pruned weights survive exactly: after the conversion the zero count of every weight
in the ONNX file is compared with the Paddle file's (same names: paddle2onnx keeps Paddle's
program names, ``conv2d_0.w_0``), and a difference stops the export.

paddle2onnx is an optional extra (``pip install 'prune_plugin[onnx]'``). Without it, or with an
``<prefix>.onnx`` already there, ``--format onnx`` stops with one line before any work.

Every adapter calls :func:`check_target` before it builds the model and :func:`convert_requested`
after its Paddle export; both do nothing unless the command line asked for ONNX
(:func:`requested`, set by :mod:`prune_plugin.cli`).
"""
import contextlib
import importlib
import logging
import os
import shutil
import tempfile

logger = logging.getLogger('prune_plugin')

FORMATS = ('paddle', 'onnx')
OPSET = 13
PIP_COMMAND = "pip install 'prune_plugin[onnx]'"
# the optional extra, as in setup.py (one place for the message and the docs)
EXTRA_PACKAGES = ('paddle2onnx==2.1.0', 'onnx>=1.16.1', 'onnxruntime')

_state = {'format': 'paddle'}


class OnnxExportError(ValueError):
    """``--format`` is bad, or the ONNX file to write already exists (one line, exit 2)."""


class OnnxConversionError(RuntimeError):
    """paddle2onnx failed on the exported program (one line, exit 1; the Paddle files stay)."""


def pop_format(argv):
    """Split ``--format FMT`` / ``--format=FMT`` off the suite's arguments.

    Returns:
        ``(format, the other arguments)``; format is ``'paddle'`` when not given.

    Raises:
        OnnxExportError: a value other than ``paddle`` / ``onnx``, or the flag without a value.
    """
    rest, fmt = [], None
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == '--format':
            if i + 1 >= len(args) or args[i + 1].startswith('-'):
                raise OnnxExportError(f"--format needs a value: one of {', '.join(FORMATS)}")
            fmt, i = args[i + 1], i + 2
            continue
        if arg.startswith('--format='):
            fmt = arg.split('=', 1)[1]
        else:
            rest.append(arg)
        i += 1
    if fmt is not None and fmt not in FORMATS:
        raise OnnxExportError(f"--format {fmt!r} is not allowed: expected one of "
                              f"{', '.join(FORMATS)}")
    return fmt or 'paddle', rest


def require_converter():
    """Import paddle2onnx and onnx, or raise the one-line ImportError naming the pip command."""
    for module in ('paddle2onnx', 'onnx'):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImportError(f"--format onnx needs the {module} package ({err}): run "
                              f"`{PIP_COMMAND}` (paddle2onnx==2.1.0, onnx, onnxruntime)") \
                from None


@contextlib.contextmanager
def requested(fmt):
    """Within the block, the adapters' exports also write ONNX when ``fmt == 'onnx'``."""
    previous = _state['format']
    _state['format'] = fmt
    try:
        yield
    finally:
        _state['format'] = previous


def onnx_requested():
    return _state['format'] == 'onnx'


def target_of(prefix):
    """The ONNX file written for the Paddle export ``<prefix>.json|.pdmodel``."""
    return prefix + '.onnx'


def check_target(prefix):
    """Before the export: refuse an ONNX file that would be overwritten (only when requested).

    Raises:
        OnnxExportError: ``<prefix>.onnx`` exists.
    """
    if onnx_requested() and os.path.lexists(target_of(prefix)):
        raise OnnxExportError(f"{target_of(prefix)} exists: remove it or export to another "
                              "folder (nothing was exported)")


def convert_requested(prefix, model=None):
    """After the suite's Paddle export: :func:`convert` when ONNX was requested, else None."""
    if not onnx_requested():
        return None
    return convert(prefix, model=model)


NAMES_KEY = 'prune_plugin.structured_names'


def structured_names(model):
    """``{tensor name in the program (conv2d_0.w_0): state_dict key}`` of a dygraph model."""
    if model is None:
        return {}
    names = {}
    for key, tensor in model.state_dict().items():   # parameters and buffers (BN statistics)
        name = getattr(tensor, 'name', None)
        if isinstance(name, str) and name not in names:
            names[name] = key
    return names


def _program_file(prefix):
    for ext in ('.json', '.pdmodel'):
        if os.path.isfile(prefix + ext):
            return prefix + ext
    raise FileNotFoundError(f"no Paddle program {prefix}.json / {prefix}.pdmodel to convert")


def convert(prefix, opset=OPSET, model=None):
    """Convert the exported Paddle model ``<prefix>`` to ``<prefix>.onnx`` and check its zeros.

    paddle2onnx runs without its Python post-pass (``optimize_tool='None'``): the default,
    polygraphy, sets ``POLYGRAPHY_AUTOINSTALL_DEPS=1`` and pip-installs packages into the running
    environment (it replaced numpy 1.23.5 with 2.4 here); the onnxoptimizer one fails in 2.1.0
    (a pass named ``'eliminate_nop_cast '``) and writes the unoptimized model anyway. The file
    is written under a temporary name and renamed, so a failed conversion leaves nothing behind
    and an existing file is never replaced.

    Args:
        prefix: The Paddle export, ``<dir>/model`` (``.json`` or ``.pdmodel`` + ``.pdiparams``).
        opset: ONNX opset.
        model: The exported dygraph model, or None: its structured parameter names are stored
            in the ONNX file's metadata (``prune_plugin.structured_names``), which
            ``prune-report`` uses to print the checkpoint's names.

    Returns:
        dict: ``path`` (the ONNX file), ``zeros`` / ``total`` over its weights of rank >= 2.

    Raises:
        OnnxConversionError: paddle2onnx failed, or a weight's zeros differ from the Paddle
            file's (nothing written).
        OnnxExportError: the target appeared meanwhile.
    """
    import paddle2onnx

    from .report.inference import _structured_names, load_inference_model
    from .report.onnx_file import load_onnx_model

    target = target_of(prefix)
    program = exported = _program_file(prefix)
    folder = os.path.dirname(os.path.abspath(target))
    scratch = tempfile.mkdtemp(prefix='.onnx-', dir=folder)
    partial = os.path.join(scratch, os.path.basename(target))
    try:
        params = prefix + '.pdiparams'
        errors = []
        if program.endswith('.pdmodel'):   # legacy IR: translated to PIR here, as paddle2onnx
            program, params, errors = _translated_to_pir(prefix, scratch)   # would, then fixed
            logger.warning("prune_plugin: %s is a legacy-IR program, translated to PIR for "
                           "paddle2onnx: compare the ONNX model's outputs with Paddle's before "
                           "use (YOLOv3's detections differed here)", prefix + '.pdmodel')
        if not errors:
            source = _interp_scales_as_f32(program, scratch)
            errors = _run_quietly_failing(lambda: paddle2onnx.export(
                source, params, save_file=partial, opset_version=opset,
                auto_upgrade_opset=True, enable_onnx_checker=True, optimize_tool='None'))
        if errors or not os.path.isfile(partial):
            raise OnnxConversionError(
                f"paddle2onnx {paddle2onnx.__version__} cannot convert {exported}: "
                f"{errors[0] if errors else 'it wrote no file'} (the Paddle export next to it "
                "is complete)")
        # by program names (conv2d_0.w_0), the ONNX file's: a 2.x / legacy export's
        # .pdiparams.info renames them to structured names in the Paddle reader
        arrays = load_inference_model(prefix).arrays
        renamed = {structured: name for name, structured in _structured_names(prefix).items()}
        arrays = {renamed.get(name, name): array for name, array in arrays.items()}
        onnx_arrays = load_onnx_model(partial, names_from=None).arrays
        zeros, total = _check_zeros(arrays, onnx_arrays, exported, target)
        _store_names(partial, {k: v for k, v in structured_names(model).items()
                               if k in onnx_arrays})
        if os.path.lexists(target):
            raise OnnxExportError(f"{target} appeared during the conversion: not replaced")
        os.rename(partial, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("prune_plugin: wrote %s (opset %d): %d of %d weights zero, as in %s", target,
                opset, zeros, total, os.path.basename(prefix) + '.pdiparams')
    print(f"exported ONNX {target}: {zeros} of {total} weights (rank >= 2) are zero, as in "
          f"the Paddle export", flush=True)
    return {'path': target, 'zeros': zeros, 'total': total}


def _check_zeros(paddle_arrays, onnx_arrays, program, onnx_path):
    """Every Paddle weight of rank >= 2 is in the ONNX file with the same zeros."""
    zeros = total = 0
    for name, array in paddle_arrays.items():
        if array.ndim < 2:
            continue
        other = onnx_arrays.get(name)
        if other is None:
            continue   # folded into another tensor by the converter: not a weight any more
        if other.shape != array.shape or int((other == 0).sum()) != int((array == 0).sum()):
            raise OnnxConversionError(
                f"{onnx_path}: {name} has {int((other == 0).sum())} zeros in "
                f"{list(other.shape)}, the Paddle export {int((array == 0).sum())} in "
                f"{list(array.shape)} (nothing written)")
        zeros += int((other == 0).sum())
        total += other.size
    if total == 0:
        raise OnnxConversionError(f"{onnx_path}: none of the weights of {program} found by "
                                  "name (nothing written)")
    return zeros, total


_INTERP_OPS = ('nearest_interp', 'bilinear_interp', 'bicubic_interp', 'linear_interp',
               'trilinear_interp')


def _interp_scales_as_f32(program, scratch):
    """A copy of a PIR JSON program whose interpolation ``scale`` arrays are float32.

    Paddle 3.3 records ``nn.Upsample(scale_factor=2)``'s ``scale`` as float64 (``0.a_f64``);
    paddle2onnx 2.1.0 accepts only float32 there ("the 0th elementwise MUST be
    ir::FloatAttribute", PicoDet's CSPPAN). Values exact in float32 are rewritten (the same
    numbers); anything else, and ``.pdmodel`` programs, are converted as they are.

    Returns:
        The path to convert: the copy in ``scratch`` or ``program`` itself.
    """
    import json

    import numpy as np

    if not program.endswith('.json'):
        return program
    with open(program, encoding='utf-8') as f:
        tree = json.load(f)
    changed = []

    def visit(node):
        if isinstance(node, dict):
            if str(node.get('#', '')).split('.')[-1] in _INTERP_OPS:
                for attr in node.get('A') or []:
                    value = attr.get('AT', {}) if isinstance(attr, dict) else {}
                    items = value.get('D') if value.get('#') == '0.a_array' else None
                    if attr.get('N') == 'scale' and isinstance(items, list) and all(
                            isinstance(i, dict) and i.get('#') == '0.a_f64'
                            and float(np.float32(i.get('D'))) == i.get('D') for i in items):
                        for item in items:
                            item['#'] = '0.a_f32'
                        changed.append(attr)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(tree)
    if not changed:
        return program
    copy = os.path.join(scratch, os.path.basename(program))
    with open(copy, 'w', encoding='utf-8') as f:
        json.dump(tree, f)
    logger.info("prune_plugin: %d interpolation scale(s) passed to paddle2onnx as float32 "
                "(same values)", len(changed))
    return copy


def _store_names(path, names):
    """Write ``{ONNX tensor name: structured name}`` into the model's metadata (JSON)."""
    if not names:
        return
    import json

    import onnx
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = NAMES_KEY, json.dumps(names, sort_keys=True)
    onnx.save(proto, path)


def _translated_to_pir(prefix, scratch):
    """A legacy-IR export (``.pdmodel``) as a PIR JSON program + params in ``scratch``.

    The steps of paddle2onnx 2.1.0's own ``.pdmodel`` branch (it translates in a temporary
    folder and converts at once), done here so that :func:`_interp_scales_as_f32` can fix the
    translated program first (YOLOv3's upsampling has the same float64 scales).

    Returns:
        ``(json path, params path, errors)``.
    """
    import paddle
    from paddle2onnx.convert import load_parameter, save_program

    target = os.path.join(scratch, 'translated')
    errors = []

    def translate():
        executor = paddle.static.Executor(paddle.CPUPlace())
        with paddle.pir_utils.OldIrGuard():
            program, _, _ = paddle.static.load_inference_model(prefix, executor)
        translated = paddle.pir.translate_to_pir(program.desc)
        load_parameter(translated)
        save_program(translated, target)

    errors = _run_quietly_failing(translate)
    if not errors and not os.path.isfile(target + '.json'):
        errors = ["translating the legacy program to PIR wrote no program"]
    return target + '.json', target + '.pdiparams', errors


def _run_quietly_failing(call):
    """Run a paddle2onnx call; its errors as a list of lines instead of ``sys.exit(-1)``.

    paddle2onnx 2.1.0 reports a failed conversion with ``logging.error``, which exits the
    process; here the message is kept and the process goes on.
    """
    from paddle2onnx.utils import logging as p2o_logging

    errors = []
    original = p2o_logging.error

    def record(message='', use_color=True, exit=True):   # noqa: A002 - paddle2onnx's name
        if message:
            errors.append(' '.join(str(message).split())[:300])
        original(message=message, use_color=use_color, exit=False)

    p2o_logging.error = record
    try:
        call()
    except Exception as err:  # noqa: BLE001 - the converter's own errors, one line
        errors.append(f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
    finally:
        p2o_logging.error = original
    return [e for e in errors if e != 'None']
