"""Shared entry of tools/train.py, tools/eval.py and tools/export_model.py: pick the suite, run it."""
import argparse
import sys

from .adapters import SuiteNotFoundError, detect_suite, load_adapter
from .core.errors import PruneConfigError
from .registry import RegistryError


def run(command, argv=None):
    """Run ``command`` (``'train'``, ``'eval'`` or ``'export'``) of the suite the ``-c`` config is for.

    Config errors print one line and exit 2 before any work starts.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    finder = argparse.ArgumentParser(add_help=False)
    finder.add_argument('-c', '--config')
    known, _ = finder.parse_known_args(argv)
    if not known.config:
        print(f"usage: tools/{command}.py -c CONFIG [suite options]  (the config picks the suite: "
              "configs/ppdet, configs/ppseg or configs/ppcls)", file=sys.stderr)
        return 2
    try:
        adapter = load_adapter(detect_suite(known.config))
        return getattr(adapter, f"{command}_main")(argv) or 0
    except (SuiteNotFoundError, PruneConfigError, RegistryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
