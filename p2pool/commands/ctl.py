"""`p2pool ctl [--net NAME] [--datadir DIR] COMMAND [ARGS]`: ask the running node of that data
directory, over its control socket DATADIR/NET/control.sock (protocol: p2pool.app.control).

Exit status: the node's answer (0 done, 2 unknown command or bad arguments), 1 when no
node runs there (one line on stderr), 2 for a bad option here.
"""
import argparse
import json
import os
import socket
import sys

from p2pool import config
from p2pool.app import cli
from p2pool.app.control import MAX_LINE, SOCKET_NAME
from p2pool.app.control_commands import COMMAND_NAMES, unknown_command

TIMEOUT = 30.0


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineErrorParser(
        prog='p2pool ctl', description='Ask the running node: status, workers, peers, bans, ban ADDR [SECONDS], '
                                       'unban ADDR, loglevel LEVEL, blocks, payouts, help.')
    parser.add_argument('--net', default='bitcoin', metavar='NAME|PATH', help='network of the node (default: bitcoin)')
    parser.add_argument('--testnet', action='store_true', help='the network\'s testnet (NAME_testnet)')
    parser.add_argument('--datadir', default=None, metavar='DIR',
                        help='data directory of the node (default: as the node\'s)')
    parser.add_argument('words', nargs=argparse.REMAINDER, metavar='COMMAND [ARGS]')
    return parser


def ask(path: str, line: str, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Send one command line to the socket at `path`; (exit status, text). OSError if no node listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(path)
        connection.sendall(line.encode('utf-8')[:MAX_LINE - 1] + b'\n')
        chunks = []
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = json.loads(b''.join(chunks).decode('utf-8'))
    return int(answer['exit']), str(answer['text'])


def main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if not args.words:
        print('p2pool ctl: no command given; "p2pool ctl help" lists them', file=sys.stderr)
        return 2
    if args.words[0].lower() not in COMMAND_NAMES:
        print('p2pool ctl: %s' % unknown_command(args.words[0]), file=sys.stderr)
        return 2
    name = args.net + '_testnet' if args.testnet and not args.net.endswith('_testnet') else args.net
    try:
        net = config.load_network(name)
    except config.NetworkConfigError as e:
        print('p2pool ctl: %s' % e, file=sys.stderr)
        return 2
    path = os.path.join(config.datadir_for(args.datadir or cli.DEFAULT_DATADIR, net), SOCKET_NAME)
    try:
        status, text = ask(path, ' '.join(args.words))
    except (FileNotFoundError, ConnectionRefusedError):
        print('p2pool ctl: no node is running in %s (no control socket answers at %s)'
              % (os.path.dirname(path), path), file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as e:
        print('p2pool ctl: the node at %s did not answer: %s' % (path, e), file=sys.stderr)
        return 1
    print(text, file=sys.stdout if status == 0 else sys.stderr)
    return status
