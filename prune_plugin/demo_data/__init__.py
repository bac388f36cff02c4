"""Small datasets generated deterministically on first use, in each suite's own on-disk format."""
import os

DEFAULT_ROOT = os.environ.get('PRUNE_PLUGIN_DATA',
                              os.path.join(os.path.dirname(__file__), '..', '..', 'data'))


def data_root():
    """Folder the demo datasets are written to (``$PRUNE_PLUGIN_DATA`` or ``<repo>/data``)."""
    return os.path.abspath(DEFAULT_ROOT)
