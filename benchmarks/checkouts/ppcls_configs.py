"""Count how a PaddleClas clone's stock configs fare with prune_plugin (no training, no data).

For every ``*.yaml`` / ``*.yml`` under ``<clone>/ppcls/configs``:

1. read: the front door reads it (``config_files``, no suite import) and detects PaddleClas;
2. clone: the clone's own ``ppcls.utils.config.get_config`` reads it;
3. engine: every name and argument is found in the clone's registries
   (:func:`~prune_plugin.adapters.ppcls.engine_check.check_engine_config`, train mode,
   ``Global.device=cpu``, data paths not required): what ``prune-train`` at the clone's root
   checks before building the Engine;
4. trainer: the plugin's own trainer (no clone) accepts it (``validate_config``, train mode,
   ``Global.pretrained_model`` cleared: users pass their own weights).

Run one clone per process (each clone has its own ``ppcls`` package)::

    python benchmarks/checkouts/ppcls_configs.py --clone /path/to/PaddleClas [--json out.json]
"""
import argparse
import collections
import glob
import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def _reason(err):
    """A short bucket for an error: ``'DataLoader.Train.dataset.name: MultiLabelDataset'``."""
    key = getattr(err, 'key', None)
    if key is None:
        return f"{type(err).__name__}: {str(err)[:60]}"
    parts = str(key).split('.')
    parts = [p for p in parts if not p.isdigit()]
    value = getattr(err, 'value', None)
    shown = value if isinstance(value, (str, int, float, bool)) or value is None else '...'
    return f"{'.'.join(parts)}={shown!r}"


def count(clone):
    """The four counts and the refusal reasons for one clone (see the module docstring)."""
    from prune_plugin.config_files import ConfigFileError
    from prune_plugin.suites import activate, detect_suite

    import paddleclas.ppcls.arch  # noqa: F401  the wheel first: the clone root has a paddleclas.py
    activate(clone, 'ppcls')
    from ppcls.utils import config as ppcls_config

    from prune_plugin.adapters.ppcls.config import load_config, validate_config
    from prune_plugin.adapters.ppcls.engine_check import check_engine_config

    files = sorted(glob.glob(os.path.join(clone, 'ppcls', 'configs', '**', '*.y*ml'),
                             recursive=True))
    result = {'files': len(files), 'read': 0, 'recognised': 0, 'clone_read': 0,
              'engine_checked': 0, 'trainer_accepted': 0}
    engine_refusals, trainer_refusals = collections.Counter(), collections.Counter()
    for path in files:
        try:
            suite = detect_suite(path, cwd=clone)
        except (ConfigFileError, ValueError):
            continue
        result['read'] += 1
        cfg_keys_ok = suite == 'ppcls'
        try:
            cfg = ppcls_config.get_config(path, overrides=['Global.device=cpu'], show=False)
        except Exception:  # noqa: BLE001 - any failure of the clone's reader is counted
            continue
        result['clone_read'] += 1
        if not (cfg_keys_ok and isinstance(cfg, dict) and 'Global' in cfg):
            continue
        result['recognised'] += 1
        try:
            check_engine_config(cfg, 'train', check_paths=False)
            result['engine_checked'] += 1
        except ValueError as err:
            engine_refusals[_reason(err)] += 1
        try:
            own = load_config(path, ['Global.device=cpu', 'Global.pretrained_model=null'])
            validate_config(own, 'train')
            result['trainer_accepted'] += 1
        except (ValueError, TypeError, KeyError) as err:
            trainer_refusals[_reason(err)] += 1
    result['engine_refusals'] = engine_refusals.most_common()
    result['trainer_refusals'] = trainer_refusals.most_common()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clone', required=True, help="root of a PaddleClas clone")
    parser.add_argument('--json', help="write the counts here")
    parser.add_argument('--top', type=int, default=12, help="refusal reasons to print")
    args = parser.parse_args(argv)
    import logging
    logging.disable(logging.WARNING)  # PaddleClas warns per config (deprecated keys ...)
    result = count(os.path.abspath(args.clone))
    result['clone'] = os.path.abspath(args.clone)
    print(f"{args.clone}: {result['files']} config files; read {result['read']}; recognised as "
          f"PaddleClas configs {result['recognised']}; read by the clone's get_config "
          f"{result['clone_read']}; all names in the clone's registries {result['engine_checked']}"
          f"; accepted by the plugin's trainer {result['trainer_accepted']}")
    for title, key in (("not in the clone's registries", 'engine_refusals'),
                       ("refused by the plugin's trainer", 'trainer_refusals')):
        print(f"  {title} (top {args.top}):")
        for reason, n in result[key][:args.top]:
            print(f"    {n:4d}  {reason}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
