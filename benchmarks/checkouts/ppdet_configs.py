"""Count how many of a PaddleDetection clone's model configs the plugin reads, recognises and prunes.

    python benchmarks/checkouts/ppdet_configs.py --clone /path/to/PaddleDetection [--json out.json]

For every YAML under ``<clone>/configs`` that is not in a ``_base_`` folder and has
``architecture`` through its ``_BASE_`` chain (a model config), four checks:

1. **read**: the plugin's tag-tolerant reader follows the file and its bases
   (:func:`prune_plugin.config_files.config_chain`);
2. **recognised**: :func:`prune_plugin.suites.detect_suite` says ``ppdet``;
3. **ppdet load**: the clone's own ``ppdet.core.workspace.load_config`` loads it (the clone's
   package is imported: it is put first on ``sys.path``);
4. **block accepted**: the same config with ``slim: UnstructuredPrune`` + a block added (a
   file in a temporary folder not named after the suite, ``_BASE_`` pointing at the config)
   goes through :func:`prune_plugin.adapters.ppdet.config.load_ppdet_config`, the reading
   ``prune-train`` does, and comes out with a spec and no ``slim`` key. Configs it refuses by
   design (``ssod_method``, ``use_cot``) are counted apart.

Files that the reader cannot read are counted as model configs that failed check 1 (their
keys are unknown). Failures are listed with their one-line reason.
"""
import argparse
import json
import os
import sys
import tempfile
from collections import Counter

BLOCK = ("slim: UnstructuredPrune\nUnstructuredPrune:\n  ratio: 0.75\n"
         "  prune_params_type: conv1x1_only\n  local_sparsity: true\n"
         "  gmp: {stable_epochs: 0, pruning_epochs: 10, tunning_epochs: 10, pruning_steps: 10,"
         " initial_ratio: 0.15}\n")


def candidate_files(clone):
    """YAML files under ``configs/`` outside ``_base_`` folders, sorted."""
    found = []
    for folder, dirs, files in os.walk(os.path.join(clone, 'configs')):
        dirs[:] = sorted(d for d in dirs if d != '_base_')
        found += [os.path.join(folder, f) for f in sorted(files)
                  if f.endswith(('.yml', '.yaml'))]
    return found


def _reason(err):
    return f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"


def check_clone(clone):
    """Run the four checks on every model config of ``clone``.

    Returns:
        A dict of counts and failures (see the module docstring).
    """
    sys.path.insert(0, clone)
    from prune_plugin.config_files import merged_top_level_keys
    from prune_plugin.suites import describe_loaded_suite, detect_suite
    from prune_plugin.adapters.ppdet.config import load_ppdet_config, reset_global_config
    from ppdet.core.workspace import load_config
    loaded = describe_loaded_suite('ppdet', clone)
    counts, failures = Counter(), {'read': {}, 'recognised': {}, 'ppdet_load': {},
                                   'block': {}, 'refused_by_design': {}}
    scratch = tempfile.mkdtemp(prefix='user_configs_')
    for path in candidate_files(clone):
        name = os.path.relpath(path, clone)
        try:
            keys = merged_top_level_keys(path)
        except Exception as err:   # noqa: BLE001 - every failure is counted and listed
            counts['model_configs'] += 1
            failures['read'][name] = _reason(err)
            continue
        if 'architecture' not in keys:
            continue
        counts['model_configs'] += 1
        counts['read'] += 1
        try:
            suite = detect_suite(path, cwd=scratch)
            if suite == 'ppdet':
                counts['recognised'] += 1
            else:
                failures['recognised'][name] = f"detected as {suite}"
        except Exception as err:   # noqa: BLE001
            failures['recognised'][name] = _reason(err)
        try:
            reset_global_config()
            load_config(path)
            counts['ppdet_load'] += 1
        except Exception as err:   # noqa: BLE001
            failures['ppdet_load'][name] = _reason(err)
        wrapper = os.path.join(scratch, 'with_block.yml')
        with open(wrapper, 'w') as f:
            f.write(f"_BASE_: [{json.dumps(os.path.abspath(path))}]\n{BLOCK}")
        try:
            cfg, spec = load_ppdet_config(wrapper)
            if spec is not None and spec.ratio == 0.75 and 'slim' not in cfg:
                counts['block'] += 1
            else:
                failures['block'][name] = f"spec {spec}, slim in cfg: {'slim' in cfg}"
        except Exception as err:   # noqa: BLE001
            message = str(err)
            if message.startswith(('ssod_method=', 'use_cot=')):
                counts['refused_by_design'] += 1
                failures['refused_by_design'][name] = _reason(err)
            else:
                failures['block'][name] = _reason(err)
    return {'clone': clone, 'ppdet': loaded.describe(), 'counts': dict(counts),
            'failures': failures}


def table_row(result, label):
    """The docs' table row: model configs, read, recognised, ppdet load, block, refused."""
    c = result['counts']
    total = c.get('model_configs', 0)

    def share(key):
        return f"{c.get(key, 0)} ({100.0 * c.get(key, 0) / max(total, 1):.1f}%)"
    return (f"| {label} | {total} | {share('read')} | {share('recognised')} | "
            f"{share('ppdet_load')} | {share('block')} | {c.get('refused_by_design', 0)} |")


def render(result):
    """A short text report of :func:`check_clone`'s result."""
    c = result['counts']
    total = c.get('model_configs', 0)
    lines = [f"{result['clone']}: {result['ppdet']}", f"model configs: {total}"]
    for key, title in (('read', 'read by the plugin'), ('recognised', 'recognised as ppdet'),
                       ('ppdet_load', "loaded by the clone's ppdet load_config"),
                       ('block', 'slim: UnstructuredPrune block accepted (prune-train reading)'),
                       ('refused_by_design', 'refused by design (ssod_method / use_cot)')):
        n = c.get(key, 0)
        lines.append(f"  {title}: {n} ({100.0 * n / max(total, 1):.1f}%)")
    for key, items in result['failures'].items():
        for name, reason in sorted(items.items()):
            lines.append(f"  [{key}] {name}: {reason}")
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clone', help="root of a PaddleDetection clone")
    parser.add_argument('--json', default=None, help="also write the result as JSON here")
    parser.add_argument('--from-json', default=None,
                        help="render a saved result instead of checking a clone")
    parser.add_argument('--label', default=None, help="first column of the table row")
    args = parser.parse_args(argv)
    if not (args.clone or args.from_json):
        parser.error("--clone (or --from-json) is required")
    if args.from_json:
        with open(args.from_json) as f:
            result = json.load(f)
    else:
        result = check_clone(os.path.abspath(args.clone))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    print(render(result))
    print(table_row(result, args.label or os.path.basename(result['clone'])))
    return 0


if __name__ == '__main__':
    sys.exit(main())
