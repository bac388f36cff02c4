"""How many of a PaddleSeg clone's configs prune_plugin reads and recognises.

For every ``.yml`` / ``.yaml`` under the clone's ``configs/`` and ``contrib/``:

1. ``detect``: :func:`prune_plugin.suites.detect_suite` says ``ppseg`` at the clone's root (no
   paddleseg import; a base file without a ``model`` is told by the clone it sits in); ``by
   keys``: its keys alone (with its ``_base_`` chain) say so, wherever it is;
2. ``paddleseg``: the clone's own ``paddleseg.cvlibs.Config`` reads it (``_base_`` chain and its
   sanity rules: a full training config);
3. ``with block``: :class:`~prune_plugin.adapters.ppseg.config.PruneSegConfig` reads it with a
   ``slim: UnstructuredPrune`` block added through ``--opts`` (what ``prune-train`` does) and
   returns the validated block.

Usage (the clone's ``paddleseg`` is imported, not the installed one)::

    python benchmarks/checkouts/ppseg_configs.py /path/to/PaddleSeg [--failures]
"""
import argparse
import collections
import os
import sys

BLOCK_OPTS = ['slim=UnstructuredPrune',
              "UnstructuredPrune={'ratio': 0.75, 'prune_params_type': 'conv1x1_only'}"]


def config_files(clone):
    """The YAML files under ``configs/`` and ``contrib/``, sorted."""
    found = []
    for top in ('configs', 'contrib'):
        for folder, _, files in os.walk(os.path.join(clone, top)):
            found += [os.path.join(folder, f) for f in files if f.endswith(('.yml', '.yaml'))]
    return sorted(found)


def _reason(err):
    text = ' '.join(str(err).split())
    if 'The failed rule is' in text:  # paddleseg's checker: keep the rule and its message
        text = text[text.index('The failed rule is'):]
    return f"{type(err).__name__}: {text[:160]}"


def check(path, clone):
    """``{'detect': bool, 'paddleseg': bool, 'block': bool, 'why': str}`` for one file, as
    read at the root of ``clone``."""
    from paddleseg.cvlibs import Config
    from prune_plugin.adapters.ppseg.config import PruneSegConfig
    from prune_plugin.config_files import merged_top_level_keys
    from prune_plugin.suites import detect_suite, suite_of_keys
    row = {'keys': False, 'detect': False, 'paddleseg': False, 'block': False, 'why': ''}
    try:
        row['keys'] = suite_of_keys(merged_top_level_keys(path)) == 'ppseg'
        row['detect'] = detect_suite(path, cwd=clone) == 'ppseg'
    except ValueError as err:
        row['why'] = _reason(err)
    try:
        Config(path)
        row['paddleseg'] = True
    except Exception as err:  # noqa: BLE001 - paddleseg raises assertions and RuntimeErrors
        row['why'] = row['why'] or f"paddleseg Config: {_reason(err)}"
        return row
    try:
        row['block'] = PruneSegConfig(path, opts=BLOCK_OPTS).prune_spec.ratio == 0.75
    except Exception as err:  # noqa: BLE001 - reported, not hidden
        row['why'] = f"with block: {_reason(err)}"
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('clone', help="root of a PaddleSeg clone (holds paddleseg/)")
    parser.add_argument('--failures', action='store_true', help="list the files not read")
    args = parser.parse_args(argv)
    clone = os.path.abspath(args.clone)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
    from prune_plugin.suites import activate, describe_loaded_suite
    activate(clone, 'ppseg')
    print(describe_loaded_suite('ppseg', clone).describe())
    import paddleseg.utils.logger as seg_logger
    seg_logger.log_level = 0  # paddleseg logs every config it reads at INFO
    rows = {path: check(path, clone) for path in config_files(clone)}
    by_top = collections.defaultdict(collections.Counter)
    for path, row in rows.items():
        top = os.path.relpath(path, clone).split(os.sep)[0]
        by_top[top].update(files=1, **{k: int(row[k]) for k in ('keys', 'detect', 'paddleseg',
                                                                 'block')})
    total = sum(by_top.values(), collections.Counter())
    print(f"{'folder':10s} {'files':>6s} {'by keys':>8s} {'detected':>9s} {'paddleseg':>10s} "
          f"{'+ block':>8s}")
    for top, c in sorted(by_top.items()) + [('all', total)]:
        print(f"{top:10s} {c['files']:6d} {c['keys']:8d} {c['detect']:9d} {c['paddleseg']:10d} "
              f"{c['block']:8d}")
    full = [r for r in rows.values() if r['paddleseg']]
    print(f"{total['detect']} of {total['files']} files detected as PaddleSeg configs; of the "
          f"{len(full)} full training configs (those paddleseg's own Config accepts), "
          f"{sum(r['detect'] for r in full)} detected ({sum(r['keys'] for r in full)} by their "
          f"keys alone) and {total['block']} read with a prune "
          f"block; the other {total['files'] - len(full)} are partial files paddleseg's Config "
          f"refuses too (bases without a model, export-only)")
    if args.failures:
        for path, row in rows.items():
            if not (row['detect'] and row['paddleseg'] and row['block']):
                print(f"  {os.path.relpath(path, clone)}: detect={row['detect']} "
                      f"paddleseg={row['paddleseg']} block={row['block']} {row['why']}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
