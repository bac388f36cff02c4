"""`python tools/export_model.py -c CONFIG ...`: write a sparse inference model with the suite's exporter."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from prune_plugin.cli import run  # noqa: E402

if __name__ == '__main__':
    sys.exit(run('export'))
