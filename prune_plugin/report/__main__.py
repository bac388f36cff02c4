"""``python -m prune_plugin.report PATH``."""
import sys

from .cli import main

sys.exit(main())
