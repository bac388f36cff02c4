"""``python -m prune_plugin.static_demo train|evaluate [flags]`` (``--help`` on each)."""
import sys

from .flags import DemoInputError, parse


def main(argv=None):
    """Run the demo command; returns the exit code (2: bad input, one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command, args = parse(argv)
        if command == 'train':
            from .train import run
        else:
            from .evaluate import run
        return run(args)
    except DemoInputError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2


if __name__ == '__main__':
    sys.exit(main())
