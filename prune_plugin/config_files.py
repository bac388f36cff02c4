"""Read any suite's YAML config before the suite is imported: tags, base chains, clear errors.

The suites' configs are not plain YAML for :func:`yaml.safe_load`: PaddleDetection writes
``!PiecewiseDecay`` / ``!COCODataSet`` tags (constructors its own loader registers) and chains
files with ``_BASE_: [a.yml, b.yml]``; PaddleSeg chains them with ``_base_: a.yml``. This module
reads such files only to look at them (which suite, which keys, is the YAML well formed): a tag
is read as the plain mapping, list or scalar it decorates. The suite's own loader reads the
config for real afterwards.

Every problem is a :class:`ConfigFileError` with a one-line message that names the file (and the
line for a syntax error).
"""
import os

import yaml

BASE_KEYS = ('_BASE_', '_base_')
MAX_BASE_DEPTH = 16


class ConfigFileError(ValueError):
    """A config file is missing, unreadable, not YAML, not a mapping, or its base chain is bad."""


class _TagTolerantLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``!AnyTag value`` as ``value`` (nothing is constructed)."""


def _untagged(loader, _suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TagTolerantLoader.add_multi_constructor('!', _untagged)


def _one_line(text):
    return ' '.join(str(text).split())


def read_yaml(path):
    """One YAML file as a dict, tags read as plain values.

    Args:
        path: The file.

    Returns:
        The top-level mapping (``{}`` for an empty file).

    Raises:
        ConfigFileError: missing or unreadable file, a YAML syntax error (with its line), or a
            top level that is not a mapping.

    Example:
        >>> read_yaml('configs/yolov3/yolov3_mobilenet_v1_270e_voc.yml')['_BASE_'][0]
        '../datasets/voc.yml'
    """
    if not os.path.isfile(path):
        what = 'a folder, not a file' if os.path.isdir(path) else 'not found'
        raise ConfigFileError(f"config file {path}: {what}")
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.load(f, Loader=_TagTolerantLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ''
        problem = err.problem or err.context or 'invalid YAML'
        raise ConfigFileError(f"{path}{where}: not valid YAML: {_one_line(problem)}") from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:
        raise ConfigFileError(f"{path}: cannot be read as YAML: {_one_line(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: the top level is a {type(data).__name__}, expected a "
                              "mapping of config keys")
    return data


def base_files(path, data):
    """The files ``data`` (read from ``path``) names under ``_BASE_`` / ``_base_``, as paths.

    Raises:
        ConfigFileError: the base entry is not a path or a list of paths.
    """
    bases = []
    for key in BASE_KEYS:
        value = data.get(key)
        if value is None:
            continue
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
            raise ConfigFileError(f"{path}: {key} must be a file path or a list of file paths, "
                                  f"got {value!r}")
        bases += [v if os.path.isabs(v) else os.path.join(os.path.dirname(path), v)
                  for v in items]
    return bases


def config_chain(path):
    """``path`` and every file it inherits from, each read once, in reading order.

    Returns:
        ``[(path, data), ...]``, the given file first.

    Raises:
        ConfigFileError: any file of the chain is bad, a base is missing (naming the file that
            asks for it), the chain loops, or it is deeper than 16 files.
    """
    chain, seen = [], set()

    def visit(file, depth, parent):
        real = os.path.realpath(file)
        if real in seen:
            if any(os.path.realpath(p) == real for p in parent):
                raise ConfigFileError(f"{parent[-1]}: its base chain loops back to {file}")
            return
        if depth > MAX_BASE_DEPTH:
            raise ConfigFileError(f"{file}: base chain deeper than {MAX_BASE_DEPTH} files")
        if parent and not os.path.isfile(file):
            raise ConfigFileError(f"{parent[-1]}: base file {file} not found")
        data = read_yaml(file)
        seen.add(real)
        chain.append((file, data))
        for base in base_files(file, data):
            visit(base, depth + 1, parent + [file])

    visit(path, 0, [])
    return chain


def merged_top_level_keys(path):
    """The top-level keys of ``path`` and all of its base files (base keys excluded)."""
    keys = set()
    for _, data in config_chain(path):
        keys |= set(data)
    return keys - set(BASE_KEYS)


def merged_value(path, key):
    """``key``'s value as the suites merge it: the file's own value wins over its bases'.

    Bases listed later win over earlier ones (ppdet and PaddleSeg both merge in list order).
    Only the top-level value is looked up (no deep merge); None when no file sets it.
    """
    def lookup(file, data, depth):
        if key in data:
            return data[key]
        found = None
        for base in base_files(file, data):
            value = lookup(base, read_yaml(base), depth + 1) if depth < MAX_BASE_DEPTH else None
            found = value if value is not None else found
        return found

    return lookup(path, read_yaml(path), 0)


def mapping_over_value(path):
    """Where a config of ``path``'s chain gives a mapping to a key its bases set to a plain value.

    PaddleSeg's ``merge_config_dicts`` fails there with a bare ``AttributeError`` ("'float'
    object has no attribute 'copy'"); this names the place instead.

    Returns:
        ``(file, dotted key, value in the bases)`` of the first such key, or None.

    Raises:
        ConfigFileError: a file of the chain is bad (as :func:`config_chain`).
    """
    def clash(own, merged, prefix):
        for key, value in own.items():
            if isinstance(value, dict) and key in merged:
                if not isinstance(merged[key], dict):
                    return f"{prefix}{key}", merged[key]
                found = clash(value, merged[key], f"{prefix}{key}.")
                if found:
                    return found
        return None

    def merge(merged, own):
        out = dict(merged)
        for key, value in own.items():
            both = isinstance(value, dict) and isinstance(out.get(key), dict)
            out[key] = merge(out[key], value) if both else value
        return out

    def resolve(file, depth):
        if depth > MAX_BASE_DEPTH:
            raise ConfigFileError(f"{file}: base chain deeper than {MAX_BASE_DEPTH} files")
        data = read_yaml(file)
        merged = {}
        for base in base_files(file, data):
            merged = merge(merged, resolve(base, depth + 1))
        own = {k: v for k, v in data.items() if k not in BASE_KEYS}
        found = clash(own, merged, '')
        if found:
            raise _Clash(file, *found)
        return merge(merged, own)

    try:
        resolve(path, 0)
    except _Clash as found:
        return found.args
    return None


class _Clash(Exception):
    """Carries :func:`mapping_over_value`'s answer out of the recursion."""
