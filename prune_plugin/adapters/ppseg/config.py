"""Read a PaddleSeg config with a ``slim: UnstructuredPrune`` block.

:class:`PruneSegConfig` is paddleseg's own ``Config`` (``_base_`` inheritance, ``--opts``,
``--iters`` / ``--batch_size`` / ``--learning_rate`` / ``--to_static_training`` overrides, its
sanity checks; 2.8 and 2.9) with one step added before paddleseg sees the dict: ``slim`` and its
block are validated into a :class:`~prune_plugin.core.spec.PruneSpec` and taken out. (paddleseg
ignores the unknown keys; taking them out keeps its printed config to its own keys.)

The demo dataset: a ``type: Dataset`` entry whose ``dataset_root`` ends in ``ppseg_portrait``
is pointed at ``<data_root()>/ppseg_portrait``, generated there on first use; its relative
``train_path`` / ``val_path`` are taken from there too (absolute ones are left as given).
"""
import os

from paddleseg.cvlibs import Config
from paddleseg.cvlibs.config import parse_from_yaml, update_config_dict

from ...config import spec_from_config
from ...config_files import mapping_over_value
from ...core.errors import PruneConfigError
from ...demo_data import ppseg_data

DATASET_KEYS = ('train_dataset', 'val_dataset')


class PaddleSegInputError(PruneConfigError):
    """A config or command line paddleseg would refuse (or crash on): one line, exit 2."""

    def __init__(self, message):
        ValueError.__init__(self, message)
        self.key, self.value, self.allowed = None, None, message


def _one_line(err):
    return ' '.join(str(err).split())


def _merge_failure(path, err):
    """One line for paddleseg's failure to merge a config over its ``_base_``."""
    found = mapping_over_value(path)
    if found is None:
        return f"{path}: {_one_line(err) or type(err).__name__}"
    file, key, value = found
    return (f"{file}: {key} is a mapping, but its _base_ sets {key}={value!r}; PaddleSeg cannot "
            f"merge a mapping over a value (give {key} a value, or a mapping in the base too)")


class PruneSegConfig(Config):
    """paddleseg's ``Config`` plus the validated prune block in :attr:`prune_spec`.

    Args:
        path: The YAML file.
        learning_rate, batch_size, iters, to_static_training: Command-line overrides (as in
            paddleseg's Config).
        opts: ``['key.sub=value', ...]`` overrides; may target the prune block too
            (``UnstructuredPrune.ratio=0.5``).

    Raises:
        PruneConfigError: a missing file or a bad prune block (before anything is built).
        RegistryError: ``slim`` names no registered pruner.

    Example:
        >>> cfg = PruneSegConfig('configs/ppseg/pphumanseg_lite_prune.yml', iters=100)
        >>> cfg.prune_spec.ratio
        0.75
    """

    def __init__(self, path, learning_rate=None, batch_size=None, iters=None, opts=None,
                 to_static_training=None):
        if not os.path.isfile(path) or not path.endswith(('.yml', '.yaml')):
            raise PruneConfigError('config', path, 'an existing .yml/.yaml file')
        for item in opts or []:
            if item.count('=') != 1:
                raise PruneConfigError('opts', item, "key=value items, e.g. iters=100")
        try:
            dic = parse_from_yaml(path)
            dic = update_config_dict(dic, learning_rate=learning_rate, batch_size=batch_size,
                                     iters=iters, opts=opts)
        except (AssertionError, KeyError, ValueError, OSError) as err:
            raise PaddleSegInputError(f"{path}: {_one_line(err) or type(err).__name__}") from None
        except (AttributeError, TypeError) as err:  # e.g. a mapping over a value or a list
            raise PaddleSegInputError(_merge_failure(path, err)) from None
        if to_static_training:  # what 2.9's update_config_dict does (2.8's has no argument)
            dic['to_static_training'] = to_static_training
        self.prune_spec = spec_from_config(dic)
        dic.pop('slim', None)  # `-o slim=None` trains the same config dense
        dic.pop(self.prune_spec.name if self.prune_spec else 'UnstructuredPrune', None)
        self.demo_roots = use_demo_dataset(dic)
        self.path = path
        self.dic = dic
        try:
            self._build_default_checker().apply_all_rules(self)
        except (AssertionError, RuntimeError, ValueError) as err:
            raise PaddleSegInputError(f"{path}: {_one_line(err)}") from None


def use_demo_dataset(dic):
    """Point demo dataset entries at the generated data (generating it if needed), in place.

    Args:
        dic: The parsed config.

    Returns:
        The dataset folders used (empty when the config does not use the demo data).
    """
    roots = []
    for key in DATASET_KEYS:
        ds = dic.get(key)
        if not isinstance(ds, dict) or ds.get('type') != 'Dataset':
            continue
        given = str(ds.get('dataset_root', '')).rstrip('/\\')
        if os.path.basename(given) != ppseg_data.DEMO_NAME:
            continue
        root = ppseg_data.ensure_portrait_dataset()
        ds['dataset_root'] = root
        for list_key in ('train_path', 'val_path'):
            if list_key in ds and not os.path.isabs(str(ds[list_key])):
                ds[list_key] = os.path.join(root, os.path.basename(str(ds[list_key])))
        roots.append(root)
    return roots
