"""``python -m prune_plugin.static_demo train|evaluate [flags]`` (``--help`` on each).

Also runnable as a file, which is what ``python -m paddle.distributed.launch`` needs::

    python -m paddle.distributed.launch --nproc_per_node 2 \\
        "$(python -c 'import prune_plugin.static_demo.__main__ as m; print(m.__file__)')" \\
        train --is_distributed
"""
import sys

from prune_plugin.static_demo.flags import DemoInputError, parse


def main(argv=None):
    """Run the demo command; returns the exit code (2: bad input, one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command, args = parse(argv)
        if command == 'train':
            from prune_plugin.static_demo.train import run
        else:
            from prune_plugin.static_demo.evaluate import run
        return run(args)
    except DemoInputError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2


if __name__ == '__main__':
    sys.exit(main())
