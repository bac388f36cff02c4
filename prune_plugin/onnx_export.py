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


def convert_requested(prefix):
    """After the suite's Paddle export: :func:`convert` when ONNX was requested, else None."""
    if not onnx_requested():
        return None
    return convert(prefix)


def _program_file(prefix):
    for ext in ('.json', '.pdmodel'):
        if os.path.isfile(prefix + ext):
            return prefix + ext
    raise FileNotFoundError(f"no Paddle program {prefix}.json / {prefix}.pdmodel to convert")


def convert(prefix, opset=OPSET):
    """Convert the exported Paddle model ``<prefix>`` to ``<prefix>.onnx`` and check its zeros.

    paddle2onnx runs without its Python post-pass (``optimize_tool='None'``): the default,
    polygraphy, sets ``POLYGRAPHY_AUTOINSTALL_DEPS=1`` and pip-installs packages into the running
    environment (it replaced numpy 1.23.5 with 2.4 here); the onnxoptimizer one fails in 2.1.0
    (a pass named ``'eliminate_nop_cast '``) and writes the unoptimized model anyway. The file is written under a temporary name and renamed, so a failed
    conversion leaves nothing behind and an existing file is never replaced.

    Returns:
        dict: ``path`` (the ONNX file), ``zeros`` / ``total`` over its weights of rank >= 2.

    Raises:
        RuntimeError: paddle2onnx failed, or a weight's zeros differ from the Paddle file's.
        OnnxExportError: the target appeared meanwhile.
    """
    import paddle2onnx

    from .report.inference import load_inference_model
    from .report.onnx_file import load_onnx_model

    target = target_of(prefix)
    program = _program_file(prefix)
    folder = os.path.dirname(os.path.abspath(target))
    scratch = tempfile.mkdtemp(prefix='.onnx-', dir=folder)
    partial = os.path.join(scratch, os.path.basename(target))
    try:
        try:
            paddle2onnx.export(program, prefix + '.pdiparams', save_file=partial,
                               opset_version=opset, auto_upgrade_opset=True,
                               enable_onnx_checker=True, optimize_tool='None')
        except Exception as err:  # noqa: BLE001 - the converter's own errors, one line
            lines = str(err).strip().splitlines()
            raise RuntimeError(f"paddle2onnx could not convert {program}: "
                               f"{type(err).__name__}: {lines[-1] if lines else ''}") from err
        if not os.path.isfile(partial):
            raise RuntimeError(f"paddle2onnx wrote no ONNX file for {program}")
        zeros, total = _check_zeros(load_inference_model(prefix).arrays,
                                    load_onnx_model(partial).arrays, program, partial)
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
            raise RuntimeError(f"{onnx_path}: {name} has {int((other == 0).sum())} zeros in "
                               f"{list(other.shape)}, the Paddle export "
                               f"{int((array == 0).sum())} in {list(array.shape)}")
        zeros += int((other == 0).sum())
        total += other.size
    if total == 0:
        raise RuntimeError(f"{onnx_path}: none of the weights of {program} found by name")
    return zeros, total
