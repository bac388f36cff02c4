"""Which suite a config is for, and which copy of that suite's code runs it.

A user runs ``prune-train -c CONFIG`` either anywhere with the suites' PyPI wheels, or at the
root of a clone of PaddleDetection / PaddleSeg / PaddleClas whose package (``ppdet/``,
``paddleseg/``, ``ppcls/``) they may have edited. The clone's package must win, as it does for
the clone's own ``tools/train.py``. :func:`locate_suite_source` finds it (the working directory,
then the config's folders, then ``$PADDLEDET_SRC`` / ``$PADDLESEG_SRC`` / ``$PADDLECLAS_SRC``);
:func:`activate` puts it first on ``sys.path``; :func:`describe_loaded_suite` says afterwards
which package, from where and which version really runs.
"""
import importlib
import os
import re
import sys
from dataclasses import dataclass

from .config_files import merged_top_level_keys


class SuiteNotFoundError(ValueError):
    """The config belongs to no suite we know."""


@dataclass(frozen=True)
class Suite:
    """What the plugin knows of one suite.

    Attributes:
        name: The adapter's name (``'ppdet'``), also the config folder name in this repo.
        title: The project's name (``'PaddleDetection'``).
        clone_package: The package folder at the root of a clone (``'ppdet'``).
        wheel_package: The package a ``pip install`` gives (``'paddleclas.ppcls'`` for ppcls).
        pip_name: The PyPI distribution.
        env_var: Points at a clone when the working directory is not one.
        tested: Version prefixes the test suite covers (``'2.6'`` covers 2.6.x).
    """
    name: str
    title: str
    clone_package: str
    wheel_package: str
    pip_name: str
    env_var: str
    tested: tuple

    @property
    def adapter(self):
        """The module with ``train_main`` / ``eval_main`` / ``export_main``."""
        return f"prune_plugin.adapters.{self.name}.main"


SUITES = {
    'ppdet': Suite('ppdet', 'PaddleDetection', 'ppdet', 'ppdet', 'paddledet', 'PADDLEDET_SRC',
                   ('2.6', 'develop')),
    'ppseg': Suite('ppseg', 'PaddleSeg', 'paddleseg', 'paddleseg', 'paddleseg', 'PADDLESEG_SRC',
                   ('2.8', '2.9')),
    'ppcls': Suite('ppcls', 'PaddleClas', 'ppcls', 'paddleclas.ppcls', 'paddleclas',
                   'PADDLECLAS_SRC', ('2.5', '2.6')),
}
# Folder names that say which suite a config is for (this repo's configs/ppdet, a clone's root).
_FOLDER_HINTS = {'ppdet': 'ppdet', 'paddledetection': 'ppdet', 'ppseg': 'ppseg',
                 'paddleseg': 'ppseg', 'ppcls': 'ppcls', 'paddleclas': 'ppcls'}


def suite_of_keys(keys):
    """The suite whose configs have these top-level keys, or None.

    ``architecture`` is PaddleDetection's; ``Global`` + ``Arch`` (or ``Global`` + ``DataLoader``)
    PaddleClas's; ``model`` with ``train_dataset`` / ``val_dataset`` PaddleSeg's.
    """
    if 'architecture' in keys:
        return 'ppdet'
    if 'Global' in keys and ({'Arch', 'DataLoader', 'Optimizer'} & keys):
        return 'ppcls'
    if 'model' in keys and ({'train_dataset', 'val_dataset', 'loss'} & keys):
        return 'ppseg'
    return None


def _suite_of_folders(path):
    for part in reversed(os.path.normpath(os.path.abspath(path)).split(os.sep)[:-1]):
        suite = _FOLDER_HINTS.get(part.lower())
        if suite is None:
            suite = next((s for hint, s in _FOLDER_HINTS.items()
                          if part.lower().startswith(hint + '-') or
                          part.lower().startswith(hint + '_')), None)
        if suite is not None:
            return suite
    return None


def detect_suite(config_path, cwd=None):
    """Which suite a config is for: ``'ppdet'``, ``'ppseg'`` or ``'ppcls'``.

    Decided by the keys of the config and its base files (tags and ``_BASE_`` / ``_base_``
    chains are read without the suite); a config without telling keys (a base file, a slim
    file) by a clone at ``cwd`` and then by the folder names on its path.

    Raises:
        ConfigFileError: the file or one of its bases is missing or not valid YAML.
        SuiteNotFoundError: nothing tells the suite.
    """
    suite = suite_of_keys(merged_top_level_keys(config_path))
    if suite is None:
        clones = [s for s in SUITES if clone_root_at(cwd or os.getcwd(), s)]
        suite = clones[0] if len(clones) == 1 else _suite_of_folders(config_path)
    if suite is None:
        raise SuiteNotFoundError(
            f"{config_path}: cannot tell the suite: expected 'architecture' (PaddleDetection), "
            "'Global' + 'Arch' (PaddleClas) or 'model' + 'train_dataset' (PaddleSeg) in the "
            "config or its _BASE_ files")
    return suite


def clone_root_at(folder, suite):
    """``folder`` when it is the root of a clone of ``suite`` (holds its package), else None."""
    package = SUITES[suite].clone_package
    if folder and os.path.isfile(os.path.join(folder, package, '__init__.py')):
        return os.path.abspath(folder)
    return None


def locate_suite_source(suite, config_path=None, cwd=None):
    """The clone whose package should run ``suite``, or None for the installed wheel.

    Looked for, in order: the working directory, the folders above the config file, then the
    folder named by the suite's environment variable (``$PADDLEDET_SRC`` ...).

    Raises:
        SuiteNotFoundError: the environment variable names a folder that is not a clone.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    root = clone_root_at(cwd, suite)
    if root:
        return root
    if config_path:
        folder = os.path.dirname(os.path.abspath(config_path))
        while folder and folder != os.path.dirname(folder):
            if clone_root_at(folder, suite):
                return folder
            folder = os.path.dirname(folder)
    info = SUITES[suite]
    from_env = os.environ.get(info.env_var)
    if from_env:
        root = clone_root_at(from_env, suite)
        if root is None:
            raise SuiteNotFoundError(f"${info.env_var}={from_env} is not a {info.title} clone "
                                     f"(no {info.clone_package}/__init__.py in it)")
        return root
    return None


_ACTIVATED = {}


def activate(root, suite=None):
    """Put a clone's root first on ``sys.path`` so its package wins over the wheel.

    Args:
        root: The clone (None: nothing to do).
        suite: Remembered for :func:`activated_clone`.
    """
    if root is None:
        return
    if suite is not None:
        _ACTIVATED[suite] = root
    while root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)


def activated_clone(suite):
    """The clone :func:`activate` put on ``sys.path`` for ``suite`` in this process, or None."""
    return _ACTIVATED.get(suite)


@dataclass(frozen=True)
class LoadedSuite:
    """The suite package that was really imported."""
    suite: str
    package: str
    path: str
    version: str
    clone_root: str

    @property
    def tested(self):
        """True when :attr:`version` is one the test suite covers."""
        return any(self.version == v or self.version.startswith(v + '.')
                   for v in SUITES[self.suite].tested)

    def describe(self):
        where = f"clone {self.clone_root}" if self.clone_root else "installed package"
        return (f"{SUITES[self.suite].title} {self.version}: {self.package} from {self.path} "
                f"({where})")


def _version_in_file(path, pattern):
    try:
        with open(path, encoding='utf-8') as f:
            match = re.search(pattern, f.read())
    except OSError:
        return None
    return match.group(1) if match else None


def _clone_version(suite, root, module):
    version = getattr(module, '__version__', None)
    if version:
        return str(version)
    if suite == 'ppdet':
        version = _version_in_file(os.path.join(root, 'setup.py'),
                                   r"PPDET_VERSION\s*=\s*['\"]([^'\"]+)")
        return 'develop' if version in (None, '0.0.0') else version
    if suite == 'ppcls':
        return (_version_in_file(os.path.join(root, 'version.txt'), r"(\S+)") or 'unknown')
    return 'unknown'


def describe_loaded_suite(suite, root):
    """Import the suite's package (as the adapter will) and say what was imported.

    Args:
        suite: ``'ppdet'`` / ``'ppseg'`` / ``'ppcls'``.
        root: The clone that was activated, or None.

    Returns:
        A :class:`LoadedSuite`. When a clone was activated but the import came from somewhere
        else, ``clone_root`` is None (the caller warns).
    """
    info = SUITES[suite]
    name = info.clone_package if root else info.wheel_package
    module = importlib.import_module(name)
    # the wheel's paddleclas.ppcls is a namespace package: no __file__, only __path__
    path = (os.path.dirname(os.path.abspath(module.__file__)) if getattr(module, '__file__', None)
            else os.path.abspath(list(module.__path__)[0]))
    in_clone = bool(root) and path.startswith(os.path.abspath(root) + os.sep)
    if in_clone:
        version = _clone_version(suite, root, module)
    else:
        version = getattr(module, '__version__', None)
        if not version:
            from importlib import metadata
            try:
                version = metadata.version(info.pip_name)
            except metadata.PackageNotFoundError:
                version = 'unknown'
    return LoadedSuite(suite, name, path, str(version), root if in_clone else None)
