"""The installed commands: ``prune-train``, ``prune-eval``, ``prune-export`` (and ``prune-report``).

    prune-train -c CONFIG [the suite's own flags]      # = python -m prune_plugin train ...
    prune-eval -c CONFIG ...                            # = python -m prune_plugin eval ...
    prune-export -c CONFIG ... [--format onnx]          # = python -m prune_plugin export ...
    prune-report PATH ...                               # = python -m prune_plugin report ...

The config picks the suite (its keys, through ``_BASE_`` / ``_base_`` files). Run at the root
of a clone of the suite, the clone's package runs (see :mod:`prune_plugin.suites`). Every check
that can fail on the user's input runs before any work starts: a bad file, YAML, suite or
pruning block is one line on stderr and exit code 2.
"""
import argparse
import os
import sys

from . import __version__, fault_hook, onnx_export, run_lock
from .config_files import ConfigFileError
from .core.errors import PruneConfigError
from .registry import RegistryError
from .suites import SUITES, SuiteNotFoundError

COMMANDS = ('train', 'eval', 'export')
_FLAGS = {'train': 'prune-train', 'eval': 'prune-eval', 'export': 'prune-export'}

USAGE = """usage: {prog} -c CONFIG [suite options]

{what} with the suite the config is written for (PaddleDetection, PaddleSeg or PaddleClas),
sparse when the config has a 'slim: UnstructuredPrune' block. The options are the suite's own
(those of its tools/{tool}); run '{prog} -c CONFIG -h' to list them.{extra}

Run at the root of a clone of the suite, the clone's package runs; otherwise the installed one.

examples:
  {prog} -c configs/yolov3/yolov3_mobilenet_v1_270e_voc.yml --eval       # PaddleDetection clone
  {prog} -c configs/pp_humanseg_lite/pp_humanseg_lite_export_398x224.yml  # PaddleSeg clone
  {prog} -c ppcls/configs/ImageNet/MobileNetV1/MobileNetV1.yaml          # PaddleClas clone
"""
_WHAT = {'train': 'Train', 'eval': 'Evaluate a checkpoint',
         'export': 'Export an inference model (zeros kept)'}
_EXTRA = {'export': "\nprune-export only: --format onnx also writes <model>.onnx next to the "
                     "Paddle files\n(paddle2onnx, opset 13; pip install 'prune_plugin[onnx]')."}
_TOOL = {'train': 'train.py', 'eval': 'eval.py (PaddleSeg: val.py)',
         'export': 'export_model.py (PaddleSeg: export.py)'}


class _UsageError(Exception):
    """Bad command line before a config is read (exit 2, one line)."""


def _config_arg(argv):
    """The ``-c`` / ``--config`` value (ppdet's ``--config=PATH`` form included), or None."""
    for i, arg in enumerate(argv):
        if arg in ('-c', '--config'):
            if i + 1 >= len(argv) or argv[i + 1].startswith('-'):
                raise _UsageError(f"{arg} needs a config file")
            return argv[i + 1]
        if arg.startswith('--config='):
            return arg.split('=', 1)[1]
        if arg.startswith('-c') and len(arg) > 2:
            return arg[2:]
    return None


def _is_rank0():
    return os.environ.get('PADDLE_TRAINER_ID', '0') in ('', '0')


def _announce(loaded, root):
    if not _is_rank0():
        return
    print(f"[prune_plugin {__version__}] {loaded.describe()}", flush=True)
    info = SUITES[loaded.suite]
    if root and loaded.clone_root is None:
        print(f"[prune_plugin] warning: {root} looks like a {info.title} clone but "
              f"{loaded.package} was imported from {loaded.path}", file=sys.stderr, flush=True)
    if not loaded.tested:
        print(f"[prune_plugin] warning: {info.title} {loaded.version} is not a version "
              f"prune_plugin is tested with ({', '.join(info.tested)}); it may not attach",
              file=sys.stderr, flush=True)


def prepare_suite(config_path):
    """Detect the suite of ``config_path``, activate the clone that should run it, import it.

    Returns:
        ``(adapter module, LoadedSuite)``.

    Raises:
        ConfigFileError, SuiteNotFoundError: before anything is imported.
        ImportError: the suite's package is not installed (names the pip command).
    """
    from . import suites
    from .adapters import load_adapter

    suite = suites.detect_suite(config_path)
    root = suites.locate_suite_source(suite, config_path)
    suites.activate(root, suite)
    adapter = load_adapter(suite)
    loaded = suites.describe_loaded_suite(suite, root)
    _announce(loaded, root)
    return adapter, loaded


def run(command, argv=None, prog=None):
    """Run ``command`` (``'train'``, ``'eval'`` or ``'export'``) of the config's suite.

    Args:
        command: One of :data:`COMMANDS`.
        argv: The arguments after the command (default ``sys.argv[1:]``).
        prog: Name shown in usage lines.

    Returns:
        The exit code: 0 done, 2 bad input (one line on stderr, nothing started).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or _FLAGS[command]
    try:
        if argv and argv[0] == '--version':
            print(f"prune_plugin {__version__}")
            return 0
        config = _config_arg(argv)
        if config is None:
            if any(a in ('-h', '--help') for a in argv):
                print(USAGE.format(prog=prog, what=_WHAT[command], tool=_TOOL[command],
                                   extra=_EXTRA.get(command, '')))
                return 0
            raise _UsageError(f"usage: {prog} -c CONFIG [suite options] (-h for help)")
        fmt = 'paddle'
        if command == 'export':   # --format onnx: the suite's export, then paddle2onnx
            fmt, argv = onnx_export.pop_format(argv)
            if fmt == 'onnx':
                onnx_export.require_converter()
        adapter, _ = prepare_suite(config)
        fault_hook.install()  # a test hook: does nothing unless PRUNE_PLUGIN_FAULT_PAUSE is set
        with onnx_export.requested(fmt):
            return getattr(adapter, f"{command}_main")(argv) or 0
    except (_UsageError, ConfigFileError, SuiteNotFoundError, PruneConfigError,
            RegistryError, ImportError, onnx_export.OnnxExportError) as err:
        run_lock.release_all()  # bad input found after the lock was taken: leave nothing behind
        message = str(err)
        print(message if message.startswith('usage:') else f"error: {message}", file=sys.stderr)
        return 2
    except onnx_export.OnnxConversionError as err:   # the Paddle export itself is done
        print(f"error: {err}", file=sys.stderr)
        return 1


def main(argv=None):
    """``python -m prune_plugin {train,eval,export,report} ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog='python -m prune_plugin', description="Sparse training for PaddleDetection, "
        "PaddleSeg and PaddleClas. Commands: train, eval, export (the suite's own flags after "
        "the command), report (sparsity of weights files and exported models).")
    parser.add_argument('command', choices=COMMANDS + ('report',))
    parser.add_argument('--version', action='version', version=f"prune_plugin {__version__}")
    if not argv or argv[0] in ('-h', '--help', '--version'):
        parser.parse_args(argv or ['-h'])
    if argv[0] not in COMMANDS + ('report',):
        parser.print_usage(sys.stderr)
        print(f"error: unknown command {argv[0]!r}: expected one of "
              f"{list(COMMANDS + ('report',))}", file=sys.stderr)
        return 2
    if argv[0] == 'report':
        from .report import main as report_main
        return report_main(argv[1:])
    return run(argv[0], argv[1:], prog=f"python -m prune_plugin {argv[0]}")


def train():
    """Console entry ``prune-train``."""
    sys.exit(run('train'))


def evaluate():
    """Console entry ``prune-eval``."""
    sys.exit(run('eval'))


def export():
    """Console entry ``prune-export``."""
    sys.exit(run('export'))


if __name__ == '__main__':
    sys.exit(main())
