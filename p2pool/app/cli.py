"""Command line of the node: the original P2Pool's option names and defaults.

`p2pool [options] [RPCUSER [RPCPASS]]`; arguments may also come from files with
`@FILE` (ARGUMENT_FILE_FORMAT below). Usage errors print one line and exit with 2.
"""
import argparse
import os
from typing import Any, NoReturn

from p2pool import __version__

def default_datadir() -> str:
    """data/ beside run_p2pool.py in a checkout (as the original); for an installed package,
    whose program directory is site-packages, the user's data directory instead."""
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # p2pool/app/cli.py
    if os.path.isfile(os.path.join(checkout, 'run_p2pool.py')):
        return os.path.join(checkout, 'data')
    base = os.environ.get('XDG_DATA_HOME') or os.path.join(os.path.expanduser('~'), '.local', 'share')
    return os.path.join(base, 'p2pool')


DEFAULT_DATADIR = default_datadir()


ARGUMENT_FILE_FORMAT = ('one or more whitespace-separated arguments per line; a word starting with "#" '
                        'starts a comment that runs to the end of the line')


def split_argument_line(line) -> list[str]:
    """The arguments of one line of an @FILE (ARGUMENT_FILE_FORMAT): `--net bsv_regtest  # regtest`
    gives ['--net', 'bsv_regtest']. A '#' inside a word (a password like `pa#ss`) is kept."""
    words = []
    for word in line.split():
        if word.startswith('#'):
            break
        words.append(word)
    return words


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints the usage block on errors; an operator wants the one line that matters."""

    def error(self, message) -> NoReturn:
        self.exit(2, '%s: error: %s (see --help)\n' % (self.prog, message))

    def convert_arg_line_to_args(self, arg_line) -> list[str]:
        return split_argument_line(arg_line)


def _percentage(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a percentage' % text) from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError('%s is not a percentage between 0 and 100' % text)
    return value


def _integer(text, what):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not %s' % (text, what)) from None


def _positive_int(text):
    value = _integer(text, 'a whole number')
    if value <= 0:
        raise argparse.ArgumentTypeError('%s is not a positive number' % text)
    return value


def _port(text):
    value = _integer(text, 'a TCP port')
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError('%s is not a TCP port' % text)
    return value


def parse_host_port(text, default_port=None) -> tuple[str, Any]:
    """'HOST[:PORT]' or '[IPv6]:PORT' -> (host, port or default_port)."""
    text = text.strip()
    if text.startswith('['):
        host, _, rest = text[1:].partition(']')
        port = rest[1:] if rest.startswith(':') else None
    elif text.count(':') == 1:
        host, port = text.split(':')
    else:
        host, port = text, None
    if not host:
        raise argparse.ArgumentTypeError('%r has no host' % text)
    if port is None:
        return host, default_port
    return host, _port(port)


def _host_port(text):
    return parse_host_port(text)


def _worker_endpoint(text):
    """-w takes [ADDR:]PORT."""
    if ':' in text.strip('[]') and not text.strip().isdigit():
        return parse_host_port(text)
    return '', _port(text)


def _miner_conns_hint():
    """The default of --max-miner-conns under this process's hard descriptor limit (40 peers, 6 outgoing)."""
    import resource

    from p2pool.app.fdlimit import UNLIMITED_FALLBACK, default_max_miner_conns
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return default_max_miner_conns(UNLIMITED_FALLBACK if hard == resource.RLIM_INFINITY else hard, 40, 6)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog='p2pool', fromfile_prefix_chars='@',
        description='P2Pool node %s: a decentralized mining pool (protocol 3501).' % __version__,
        epilog='Arguments can also be read from a file: "p2pool @FILE" (%s). ' % ARGUMENT_FILE_FORMAT +
               'Subcommands: "p2pool inspect ..." decodes chain data; "p2pool demo" runs a local regtest pool; '
               '"p2pool import-shares DIR" imports the original P2Pool\'s shares.N files; '
               '"p2pool ctl COMMAND" asks the running node (status, workers, peers, bans, payouts, help).')
    parser.add_argument('--version', action='version', version='p2pool %s' % __version__)
    parser.add_argument('--net', default='bitcoin', metavar='NAME|PATH',
                        help='network name (a file in networks/) or path to a network TOML file (default: bitcoin)')
    parser.add_argument('--testnet', action='store_true', help='use the network\'s testnet (NAME_testnet)')
    parser.add_argument('--debug', action='store_true', help='log debugging information')
    parser.add_argument('-a', '--address', metavar='ADDRESS',
                        help='payout address; default: one requested from bitcoind\'s wallet and cached; '
                             '"dynamic" rotates a pool of wallet addresses')
    parser.add_argument('-i', '--numaddresses', type=_positive_int, default=2, metavar='N',
                        help='with --address dynamic: how many addresses to rotate (default: 2)')
    parser.add_argument('-t', '--timeaddresses', type=_positive_int, default=172800, metavar='SECONDS',
                        help='with --address dynamic: seconds between address changes (default: 172800)')
    parser.add_argument('--datadir', default=None, metavar='DIR',
                        help='data directory; NET is appended (default: data/ beside run_p2pool.py in a '
                             'checkout, else ~/.local/share/p2pool)')
    parser.add_argument('--logfile', default=None, metavar='FILE',
                        help='log file (default: DATADIR/NET/log); reopened on SIGUSR1')
    parser.add_argument('--web-static', default=None, metavar='DIR', help='serve the dashboard from DIR')
    parser.add_argument('--merged', action='append', default=[], metavar='URL', dest='merged_urls',
                        help='merged-mining daemon http://USER:PASS@HOST:PORT/ (repeatable)')
    parser.add_argument('--coinbtext', action='append', default=[], metavar='TEXT',
                        help='text added to the coinbase of blocks (repeatable)')
    parser.add_argument('--give-author', type=_percentage, default=0.0, metavar='PERCENT', dest='donation_percentage',
                        help='percentage of the work donated to the P2Pool author (default: 0)')
    parser.add_argument('--allow-obsolete-bitcoind', action='store_true',
                        help='skip the check for required soft forks')
    p2p = parser.add_argument_group('P2Pool network')
    p2p.add_argument('--p2pool-port', type=_port, default=None, metavar='PORT',
                     help='port for P2Pool peers (default: the network\'s P2P_PORT)')
    p2p.add_argument('-n', '--p2pool-node', action='append', default=[], type=_host_port, metavar='ADDR[:PORT]',
                     dest='p2pool_nodes', help='connect to this peer and keep connected (repeatable)')
    p2p.add_argument('--disable-upnp', action='store_false', dest='upnp', help='do not map the P2P port with UPnP')
    p2p.add_argument('--max-conns', type=_positive_int, default=40, metavar='N',
                     help='incoming peer limit (default: 40)')
    p2p.add_argument('--outgoing-conns', type=int, default=6, choices=range(0, 11), metavar='N',
                     help='outgoing peer target, 0 to 10 (default: 6)')
    p2p.add_argument('--external-ip', type=_host_port, default=None, metavar='ADDR[:PORT]',
                     help='advertise this address to peers instead of the one they see')
    p2p.add_argument('--disable-advertise', action='store_false', dest='advertise',
                     help='do not advertise our address to peers')
    worker = parser.add_argument_group('miners')
    worker.add_argument('-w', '--worker-port', type=_worker_endpoint, default=None, metavar='[ADDR:]PORT',
                        dest='worker_endpoint',
                        help='port for miners (stratum and getwork) and the web interface (default: WORKER_PORT)')
    worker.add_argument('--max-miner-conns', type=_positive_int, default=None, metavar='N',
                        help='most Stratum connections at once (default: the file descriptor limit less what '
                             'bitcoind, peers, the store and the web need; %s here)' % _miner_conns_hint())
    worker.add_argument('--max-miner-conns-per-address', type=_positive_int, default=None, metavar='N',
                        help='most worker-port connections from one address (default: half of --max-miner-conns)')
    worker.add_argument('-f', '--fee', type=_percentage, default=0.0, metavar='PERCENT', dest='worker_fee',
                        help='percentage of miners\' work paid to the node operator (default: 0)')
    worker.add_argument('-s', '--share-rate', type=float, default=3.0, metavar='SECONDS',
                        help='stratum vardiff target: seconds per pseudoshare per connection (default: 3)')
    parser.add_argument('--takeover', action='store_true',
                        help='take over the node running on the same data directory without dropping its miners '
                             '(upgrades, option changes): its listening sockets and miner connections move here')
    bitcoind = parser.add_argument_group('bitcoind')
    bitcoind.add_argument('--bitcoind-config-path', default=None, metavar='FILE',
                          help='bitcoin.conf to read credentials and ports from (default: the usual location)')
    bitcoind.add_argument('--bitcoind-address', default='127.0.0.1', metavar='ADDR',
                          help='bitcoind host (default: 127.0.0.1)')
    bitcoind.add_argument('--bitcoind-rpc-port', type=_port, default=None, metavar='PORT',
                          help='bitcoind JSON-RPC port (default: from bitcoin.conf, else the parent\'s RPC_PORT)')
    bitcoind.add_argument('--bitcoind-rpc-ssl', action='store_true', help='use https to talk to bitcoind')
    bitcoind.add_argument('--bitcoind-p2p-port', type=_port, default=None, metavar='PORT',
                          help='bitcoind P2P port (default: from bitcoin.conf, else the parent\'s P2P_PORT)')
    bitcoind.add_argument('--bitcoind-fallback', action='append', default=[], metavar='URL',
                          dest='bitcoind_fallbacks',
                          help='another bitcoind to take work from when the first fails: '
                               'http://USER:PASS@HOST:RPCPORT/[?p2p=PORT] (repeatable)')
    bitcoind.add_argument('bitcoind_rpc_userpass', nargs='*', metavar='RPCUSER [RPCPASS]',
                          help='bitcoind RPC credentials (default: from bitcoin.conf or the .cookie file)')
    return parser


def parse_args(argv) -> argparse.Namespace:
    """Parse and check the node's arguments; raises SystemExit(2) with one line on misuse."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.bitcoind_rpc_userpass) > 2:
        parser.error('at most two positional arguments (RPCUSER RPCPASS), got %d' % len(args.bitcoind_rpc_userpass))
    userpass = list(args.bitcoind_rpc_userpass)
    args.bitcoind_rpc_username = userpass[0] if len(userpass) == 2 else None
    args.bitcoind_rpc_password = userpass[-1] if userpass else None
    if args.testnet and not args.net.endswith('_testnet') and os.sep not in args.net:
        args.net = args.net + '_testnet'
    if args.share_rate <= 0:
        parser.error('--share-rate must be positive')
    return args
