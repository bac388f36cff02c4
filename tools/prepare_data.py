"""Write the classification demo data in PaddleClas's ImageNet list format.

    python tools/prepare_data.py digits   # scikit-learn's bundled digits, offline -> data/digits
    python tools/prepare_data.py mnist    # MNIST via paddle.vision (downloads once) -> data/mnist

The configs in configs/ppcls read ``./data/<name>/{train,val}_list.txt`` (run from the repo root);
the digits data is also generated automatically the first time a config reads it.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from prune_plugin.demo_data.ppcls_data import GENERATORS  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 1)[1])
    parser.add_argument('dataset', choices=sorted(GENERATORS))
    parser.add_argument('--root', default=None,
                        help="parent folder (default $PRUNE_PLUGIN_DATA or <repo>/data)")
    args = parser.parse_args(argv)
    try:
        folder = GENERATORS[args.dataset](args.root)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    lines = {split: sum(1 for _ in open(os.path.join(folder, f"{split}_list.txt")))
             for split in ('train', 'val')}
    print(f"{args.dataset}: {lines['train']} train / {lines['val']} val images in {folder}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
