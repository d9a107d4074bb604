"""Entry point of the `p2pool` command: wires the rooms together.

Subcommands: `p2pool inspect ...` (the inspector); anything else starts the node.
"""
import sys


def console_main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['inspect']:
        from p2pool import inspect
        return inspect.main(argv[1:])
    from p2pool import cli
    return cli.main(argv)


if __name__ == '__main__':
    sys.exit(console_main())
