"""``python -m prune_plugin {train,eval,export,report} ...``."""
import sys

from .cli import main

sys.exit(main())
