"""The package's import graph, read from the source with ``ast`` (nothing is imported).

- No cycle between prune_plugin's modules through their module-level imports (relative ones
  included): each module can be imported on its own, in any order.
- ``prune_plugin/core`` imports no suite (ppdet, paddleseg, ppcls, paddleclas) and no adapter,
  not even inside a function: the engine runs without any suite installed.
"""
import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'prune_plugin'
SUITE_PACKAGES = ('ppdet', 'paddleseg', 'ppcls', 'paddleclas')


C_SOURCES = {}  # C extension module -> its source file


def _modules():
    """``{module name: (path, is_package)}`` for every ``.py`` file of the package; a C
    extension's source (``.c``, compiled by setup.py) is a module importing nothing (path None)."""
    found = {}
    for folder, dirs, files in os.walk(os.path.join(REPO, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != '__pycache__')
        rel = os.path.relpath(folder, REPO).split(os.sep)
        for name in sorted(files):
            if name.endswith('.c'):
                found['.'.join(rel + [name[:-2]])] = (None, False)
                C_SOURCES['.'.join(rel + [name[:-2]])] = os.path.join(folder, name)
            if not name.endswith('.py'):
                continue
            if name == '__init__.py':
                found['.'.join(rel)] = (os.path.join(folder, name), True)
            else:
                found['.'.join(rel + [name[:-3]])] = (os.path.join(folder, name), False)
    return found


MODULES = _modules()


def _imports(tree, module_level):
    """The import statements of ``tree``; with ``module_level``, not those inside a function
    (class bodies and top-level ``if`` / ``try`` / ``with`` run at import, so they count)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if module_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def _targets(module, node):
    """The absolute module names one import statement names (submodules where they are ones)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ''
    if node.level:
        path, is_package = MODULES[module]
        parts = module.split('.') if is_package else module.split('.')[:-1]
        parts = parts[:len(parts) - (node.level - 1)]
        base = '.'.join(parts + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
            for alias in node.names]


def _graph(module_level=True):
    """``{module: set of prune_plugin modules it imports}``."""
    graph = {}
    for module, (path, _) in MODULES.items():
        if path is None:  # a C extension
            graph[module] = set()
            continue
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        graph[module] = {target for node in _imports(tree, module_level)
                         for target in _targets(module, node)}
    return graph


def _cycles(graph):
    """The strongly connected components of more than one module (or a module importing
    itself), by Tarjan's algorithm restricted to the package's own modules."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node] & set(graph)):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_the_whole_package():
    assert 'prune_plugin.report.loading' in MODULES and 'prune_plugin.core.pruner' in MODULES
    assert 'prune_plugin.adapters.ppdet.main' in MODULES
    graph = _graph()
    # relative imports resolve to modules (``from . import safe_pickle``) and to packages
    assert 'prune_plugin.report.safe_pickle' in graph['prune_plugin.report.loading']
    assert 'prune_plugin.core.errors' in graph['prune_plugin.adapters.ppdet.main']


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert _cycles({'a': {'a'}}) == [['a']]
    assert _cycles({'a': {'b', 'x'}, 'b': set()}) == []


def test_no_import_cycle_between_modules():
    assert _cycles(_graph(module_level=True)) == []


@pytest.mark.parametrize('module', sorted(m for m in MODULES
                                          if m == 'prune_plugin.core' or
                                          m.startswith('prune_plugin.core.')))
def test_core_imports_no_suite_and_no_adapter(module):
    path, _ = MODULES[module]
    if path is None:  # a C extension: the C library and Python's API only
        with open(C_SOURCES[module], encoding='utf-8') as f:
            includes = re.findall(r'^#include\s+[<"]([^>"]+)[>"]', f.read(), re.M)
        assert includes and set(includes) <= {'Python.h', 'math.h'}, includes
        return
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    bad = [target for node in _imports(tree, module_level=False)
           for target in _targets(module, node)
           if target.split('.')[0] in SUITE_PACKAGES or
           target.startswith('prune_plugin.adapters') or
           target in ('prune_plugin.ppdet', 'prune_plugin.ppseg', 'prune_plugin.ppcls')]
    assert bad == []
