"""Run the bad-config matrix through one suite's ``prune-train`` entry, in one process.

    python tests/entry_matrix_driver.py SUITE WORKDIR OUT.json

For every (block, field, kind) of :mod:`test_config_validation`'s matrix that the suite reads,
two configs are written in the suite's own style under ``WORKDIR/configs``: ``direct`` (the demo
config below, the whole prune block with one bad field) and ``inherited`` (a base holding the
valid block, a child changing one field: ``_BASE_`` for ppdet and PaddleClas, ``_base_`` for
PaddleSeg). Each is run as ``prune_plugin.cli.run('train', ...)`` from ``WORKDIR`` with an output
folder of its own. Written to OUT.json per case: the exit code, the stderr lines the run wrote
and whether anything appeared in ``WORKDIR`` besides the configs. (One process per suite: the
suite is imported once; ppdet's global config is reset by the adapter on every load.)
"""
import contextlib
import io
import json
import os
import re
import shutil
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from test_config_validation import (BAD, CASES, VALID_VALUE, child_changing,  # noqa: E402
                                    config_with, expected_key_and_value)

# suite -> (config folder to copy, demo config in it, how a child names its base, output flag)
SUITES = {
    'ppdet': ('configs/ppdet', 'yolov3_prune_demo.yml', '_BASE_', ['-o', 'save_dir={out}']),
    'ppseg': ('configs/ppseg', 'pphumanseg_lite_prune_demo.yml', '_base_', ['--save_dir', '{out}']),
    'ppcls': ('configs/ppcls', 'mobilenetv1_prune_demo.yml', '_BASE_',
              ['-o', 'Global.output_dir={out}']),
}
PRUNE_KEYS = ('slim', 'UnstructuredPrune', 'UnstructuredPruner')


def strip_prune_blocks(text):
    """``text`` (a YAML file) without its top-level ``slim:`` and prune blocks."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        top = re.match(r"([A-Za-z_][\w]*)\s*:", line)
        if top:
            skipping = top.group(1) in PRUNE_KEYS
        if not skipping:
            out.append(line)
    return ''.join(out)


def cases_for(suite):
    """The matrix cases the suite reads: ppdet also reads its built-in ``UnstructuredPruner``."""
    return [case for case in CASES if suite == 'ppdet' or case[0] != 'UnstructuredPruner']


def write_configs(suite, workdir):
    """Copy the suite's config folder with every prune block taken out; return its demo path."""
    folder, demo, _, _ = SUITES[suite]
    target = os.path.join(workdir, 'configs')
    shutil.copytree(os.path.join(REPO, folder), target)
    for root, _, files in os.walk(target):
        for name in files:
            if name.endswith(('.yml', '.yaml')):
                path = os.path.join(root, name)
                with open(path) as f:
                    text = f.read()
                with open(path, 'w') as f:
                    f.write(strip_prune_blocks(text))
    return os.path.join(target, demo)


def _dump(path, base_key, base, body):
    with open(path, 'w') as f:
        f.write(f"{base_key}: {json.dumps(base) if base_key == '_BASE_' else base}\n")
        f.write(yaml.safe_dump(body, default_flow_style=False, allow_unicode=True))


def case_configs(suite, demo, block, field, kind, index):
    """``{'direct': path, 'inherited': path}`` for one matrix case."""
    _, _, base_key, _ = SUITES[suite]
    folder = os.path.dirname(demo)
    demo_name = os.path.basename(demo)
    direct = os.path.join(folder, f"case{index:04d}_direct.yml")
    _dump(direct, base_key, [demo_name] if base_key == '_BASE_' else demo_name,
          config_with(block, field, BAD[kind]))
    base = os.path.join(folder, f"case{index:04d}_base.yml")
    _dump(base, base_key, [demo_name] if base_key == '_BASE_' else demo_name,
          config_with(block, field, VALID_VALUE[field]))
    child = os.path.join(folder, f"case{index:04d}_child.yml")
    base_name = os.path.basename(base)
    _dump(child, base_key, [base_name] if base_key == '_BASE_' else base_name,
          child_changing(block, field, BAD[kind]))
    return {'direct': direct, 'inherited': child}


def listing(workdir):
    """Every path under ``workdir`` except the copied configs."""
    found = set()
    for root, dirs, files in os.walk(workdir):
        rel = os.path.relpath(root, workdir)
        if rel == 'configs' or rel.startswith('configs' + os.sep):
            continue
        found.update(os.path.join(rel, name) for name in dirs + files)
    return found


def run_case(suite, config, out):
    from prune_plugin.cli import run
    flags = [arg.format(out=out) for arg in SUITES[suite][3]]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = run('train', ['-c', config] + flags)
        except SystemExit as err:  # a suite's own sys.exit
            code = err.code
        except Exception as err:  # noqa: BLE001 - a traceback is what the matrix must not see
            code = f"raised {type(err).__name__}: {err}"
    return code, stderr.getvalue().splitlines()


def main(suite, workdir, out_json):
    os.makedirs(workdir, exist_ok=True)
    os.chdir(workdir)
    demo = write_configs(suite, workdir)
    before = listing(workdir)
    results = []
    for index, (block, field, kind) in enumerate(cases_for(suite)):
        key, value = expected_key_and_value(block, field, kind)
        for style, config in case_configs(suite, demo, block, field, kind, index).items():
            out = os.path.join(workdir, 'output', f"case{index:04d}_{style}")
            code, lines = run_case(suite, config, out)
            written = sorted(listing(workdir) - before)
            results.append({'block': block, 'field': field, 'kind': kind, 'style': style,
                            'key': key, 'value': repr(value), 'code': code,
                            'stderr': lines, 'written': written})
            for path in written:  # keep the next case's check independent of this one
                full = os.path.join(workdir, path)
                if os.path.isdir(full):
                    shutil.rmtree(full, ignore_errors=True)
                elif os.path.exists(full):
                    os.remove(full)
            before = listing(workdir)
    with open(out_json, 'w') as f:
        json.dump(results, f)


if __name__ == '__main__':
    main(*sys.argv[1:4])
