"""`python tools/train.py -c CONFIG ...`: the suite's own train, with prune_plugin attached."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from prune_plugin.cli import run  # noqa: E402

if __name__ == '__main__':
    sys.exit(run('train'))
