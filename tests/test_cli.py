"""The program an operator runs: `run_p2pool.py` as a real subprocess against the real regtest bitcoind.

Checked here (issue 8, "Must show"): --help lists every option of the original;
a wrong option, an unreachable bitcoind, a wrong RPC password, a port in use
(P2P and worker) and an invalid payout address each end with a one-line
explanation and a non-zero exit, never a traceback; SIGTERM and SIGINT stop the
node with exit 0, the store flushed, miners disconnected and bitcoind left
running; SIGUSR1 reopens the log file; @file argument files work; a payout
address requested from the wallet is cached in DATADIR/NET/cached_payout_address
and reused on the next start.
"""
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from node_processes import node_factory, run_p2pool, wait_until  # noqa: F401 (fixture)
from p2pool.app import cli
from p2pool.testing import regtest
from p2pool.config import load_network
from p2pool.sharechain.share import Share
from p2pool.store.sharestore import ShareStore
from p2pool.work.cpuminer import StratumMiner

#: every option issue 8 names (worker.md §12), as --help must show it
OPTIONS = ['--net', '--testnet', '--debug', '-a', '--address', '--datadir', '--logfile', '--merged',
           '--give-author', '--p2pool-port', '-n', '--p2pool-node', '--disable-upnp', '--max-conns',
           '--outgoing-conns', '--external-ip', '--disable-advertise', '-w', '--worker-port', '-f', '--fee',
           '--bitcoind-config-path', '--bitcoind-address', '--bitcoind-rpc-port', '--bitcoind-rpc-ssl',
           '--bitcoind-p2p-port', '--share-rate', 'RPCUSER', 'RPCPASS']

#: a log line as the node writes it: "YYYY-mm-dd HH:MM:SS message"
LOG_LINE = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ')


def assert_one_line_failure(output, returncode, phrase):
    """A non-zero exit whose output explains the problem in exactly one line containing `phrase`."""
    assert returncode not in (0, None), output
    assert 'Traceback' not in output, output
    lines = output.splitlines()
    explained = [index for index, line in enumerate(lines) if phrase in line]
    assert len(explained) == 1, 'expected one line with %r in:\n%s' % (phrase, output)
    following = lines[explained[0] + 1:explained[0] + 2]
    # a multi-line message would continue on a line that is not a new log line
    assert all(LOG_LINE.match(line) for line in following), output


# ----------------------------------------------------------------------------- without bitcoind

def test_help_lists_every_option_of_the_original():
    result = run_p2pool(['--help'])
    assert result.returncode == 0, result.stderr
    words = set(re.findall(r'(?<![\w-])(-{1,2}[a-z][\w-]*|RPCUSER|RPCPASS)', result.stdout))
    missing = [option for option in OPTIONS if option not in words]
    assert not missing, result.stdout


def test_help_mentions_argument_files():
    assert re.search(r'@\s?FILE', run_p2pool(['--help']).stdout)


def test_defaults_are_the_originals():
    args = cli.parse_args([])
    assert (args.net, args.address, args.worker_fee, args.donation_percentage) == ('bitcoin', None, 0.0, 0.0)
    assert (args.max_conns, args.outgoing_conns, args.upnp, args.advertise) == (40, 6, True, True)
    assert (args.p2pool_port, args.worker_endpoint, args.p2pool_nodes, args.merged_urls) == (None, None, [], [])
    assert (args.bitcoind_address, args.bitcoind_rpc_port, args.bitcoind_p2p_port) == ('127.0.0.1', None, None)
    assert (args.bitcoind_rpc_ssl, args.share_rate, args.testnet, args.debug) == (False, 3.0, False, False)
    assert (args.bitcoind_rpc_username, args.bitcoind_rpc_password) == (None, None)
    assert cli.parse_args(['--testnet']).net == 'bitcoin_testnet'
    assert cli.parse_args(['USER', 'PASS']).bitcoind_rpc_username == 'USER'


@pytest.mark.parametrize('args, phrase', [
    (['--no-such-option'], 'unrecognized arguments: --no-such-option'),
    (['--p2pool-port', 'seventy'], "argument --p2pool-port"),
    (['--outgoing-conns', '11'], 'invalid choice: 11'),
    (['--give-author', '101'], 'not a percentage'),
    (['--net', 'no_such_network', 'u', 'p'], 'no_such_network'),
    (['@/nonexistent/args-file'], 'No such file'),
])
def test_a_wrong_option_is_one_line_and_exit_2(args, phrase):
    result = run_p2pool(args)
    assert result.returncode == 2
    assert_one_line_failure(result.stdout + result.stderr, result.returncode, phrase)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_unreachable_bitcoind_is_one_line(tmp_path):
    closed_port = regtest.free_port()      # nothing listens there
    result = run_p2pool(['--net', 'bsv_regtest', '--datadir', str(tmp_path), '--disable-upnp',
                         '--p2pool-port', str(regtest.free_port()), '-w', str(regtest.free_port()),
                         '--bitcoind-rpc-port', str(closed_port), '--bitcoind-p2p-port', str(closed_port),
                         'user', 'pass'])
    assert_one_line_failure(result.stdout + result.stderr, result.returncode, 'is bitcoind running')


# ----------------------------------------------------------------------------- with the regtest bitcoind

@pytest.mark.bitcoind
def test_a_wrong_rpc_password_is_one_line(node_factory, regtest_node):
    args = regtest_node.cli_args()
    node = node_factory(None, name='wrong-password', bitcoind_args=args[:-1] + ['not-' + args[-1]])
    node.start()
    returncode = node.wait_exit(60)
    assert_one_line_failure(node.console() + node.stderr(), returncode, 'rejected the RPC user name or password')
    assert regtest_node.rpc('getblockcount') > 0


@pytest.mark.bitcoind
@pytest.mark.parametrize('which, phrase', [('p2p', 'cannot listen for P2Pool peers on port'),
                                           ('worker', 'cannot listen for miners on port')])
def test_a_port_in_use_is_one_line(node_factory, regtest_node, which, phrase):
    with socket.socket() as squatter:
        squatter.bind(('', 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        ports = {'p2p_port': port, 'worker_port': regtest.free_port()} if which == 'p2p' else \
            {'p2p_port': regtest.free_port(), 'worker_port': port}
        node = node_factory(regtest_node, name='port-in-use-' + which, address=regtest_node.wallet_address(),
                            **ports)
        node.start()
        returncode = node.wait_exit(60)
    assert_one_line_failure(node.console() + node.stderr(), returncode, phrase)
    assert 'p2pool stopped' in node.console()


@pytest.mark.bitcoind
def test_an_invalid_payout_address_is_one_line(node_factory, regtest_node):
    node = node_factory(regtest_node, name='bad-address', address='1NotAnAddressAtAll')
    node.start()
    returncode = node.wait_exit(60)
    assert_one_line_failure(node.console() + node.stderr(), returncode, 'is not valid for bsv_regtest')


def mine_until_shares(node, address, count, timeout=60):
    """Mine through `node`'s stratum port until it counts `count` shares of its own; returns the miner."""
    miner = StratumMiner('127.0.0.1', node.worker_port, address).connect()

    def enough():
        miner.mine(seconds=0.3)
        return len(node.get_or_none('/web/my_share_hashes') or ()) >= count
    wait_until(enough, timeout, '%d shares on %s' % (count, node.name), interval=0)
    return miner


def assert_disconnected(miner):
    with pytest.raises((ConnectionError, OSError)):
        for _ in range(100):
            miner.read_message(timeout=0.1)


@pytest.mark.bitcoind
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_signals_stop_cleanly_with_the_store_flushed(node_factory, regtest_node, sig):
    node = node_factory(regtest_node, name=sig.name, address=regtest_node.wallet_address()).start().wait_ready()
    miner = mine_until_shares(node, regtest_node.wallet_address(), 3)
    mine_shares = node.get('/web/my_share_hashes')
    ready_flag = os.path.join(os.path.dirname(node.store_path), 'ready_flag')
    assert os.path.exists(ready_flag)                   # web.md §3: for supervisors
    node.send_signal(sig)
    assert node.wait_exit(30) == 0, node.tail()
    assert not os.path.exists(ready_flag)
    assert 'p2pool stopped' in node.console()
    assert 'Traceback' not in node.console() + node.stderr()
    assert_disconnected(miner)
    miner.close()
    net = load_network('bsv_regtest')
    with ShareStore(node.store_path) as store:
        stored = {share.hash for share, _verified in store.load_shares(net, lambda raw: Share.from_wire(net, raw))}
    assert {int(text, 16) for text in mine_shares} <= stored
    assert regtest_node.rpc('getblockcount') > 0        # bitcoind left alone


@pytest.mark.bitcoind
def test_sigusr1_reopens_the_log_file(node_factory, regtest_node):
    address = regtest_node.wallet_address()
    node = node_factory(regtest_node, name='sigusr1', address=address).start().wait_ready()
    assert 'Node ready' in node.log_path.read_text()
    rotated = node.log_path.with_name('log.1')
    node.log_path.rename(rotated)
    node.send_signal(signal.SIGUSR1)
    wait_until(node.log_path.exists, 10, 'a fresh log file')
    before = rotated.read_text()
    miner = mine_until_shares(node, address, 1)        # "GOT SHARE!" lines go to the log
    miner.close()
    wait_until(lambda: 'GOT SHARE!' in node.log_path.read_text(), 10, 'new lines in the fresh log')
    assert 'Node ready' not in node.log_path.read_text()
    assert rotated.read_text() == before                  # the old file got nothing more
    assert node.stop() == 0


@pytest.mark.bitcoind
def test_argument_file_and_cached_payout_address(node_factory, regtest_node, tmp_path):
    """No -a: the wallet gives an address, cached and reused; all options come from an @file."""
    args_file = tmp_path / 'p2pool.args'
    node = node_factory(regtest_node, name='argfile', argument_file=args_file)
    node.start().wait_ready()
    assert node.process.args[-1] == '@%s' % args_file
    first_address = node.get('/payout_addr')
    cache = node.net_dir / 'cached_payout_address'
    assert cache.read_text().strip() == first_address
    assert 'Payout address from bitcoind\'s wallet: %s' % first_address in node.console()
    info = regtest_node.rpc('validateaddress', first_address)
    assert info['isvalid'] and info['ismine']
    assert node.stop() == 0

    node.start().wait_ready()
    assert node.get('/payout_addr') == first_address
    assert 'from bitcoind\'s wallet' not in node.console()
    assert cache.read_text().strip() == first_address
    assert node.stop() == 0


def test_argument_file_lines_may_hold_several_arguments(tmp_path):
    args_file = tmp_path / 'p2pool.args'
    args_file.write_text('--net bsv_regtest --max-conns 7\n-a mvyiLaZq7GACNdqbziFV396eahbEcua1Wk\n')
    args = cli.parse_args(['@%s' % args_file])
    assert (args.net, args.max_conns, args.address) == ('bsv_regtest', 7, 'mvyiLaZq7GACNdqbziFV396eahbEcua1Wk')


def test_a_second_node_on_the_same_data_directory_is_refused(tmp_path):
    """One node per DATADIR/NET: the lock is held for the node's life and dies with it."""
    holder = subprocess.Popen(
        [sys.executable, '-c', 'import sys\nfrom p2pool.app.datadir_lock import lock_datadir\n'
                               'lock = lock_datadir(sys.argv[1]); print("locked", flush=True); sys.stdin.read()',
         str(tmp_path / 'bsv_regtest')], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        result = run_p2pool(['--net', 'bsv_regtest', '--datadir', str(tmp_path), 'user', 'pass'])
        assert result.returncode == 1
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert len(lines) == 1 and 'in use by another p2pool process' in lines[0]
        assert 'Traceback' not in result.stderr
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.bitcoind
def test_a_mining_node_reports_its_latencies_and_hides_bitcoinds_prerelease_notice(node_factory, regtest_node):
    """/metrics carries bitcoind's getblocktemplate round trip and the work latency (template
    received -> new work announced); BSV's "pre-release or beta test build" notice is no warning."""
    import urllib.request
    node = node_factory(regtest_node, name='metrics', address=regtest_node.wallet_address()).start().wait_ready()
    miner = mine_until_shares(node, regtest_node.wallet_address(), 2)
    miner.close()
    with urllib.request.urlopen(node.url('/metrics'), timeout=10) as response:
        metrics = dict(line.rsplit(' ', 1) for line in response.read().decode().splitlines()
                       if line and not line.startswith('#'))
    assert 0 <= float(metrics['p2pool_bitcoind_latency_seconds']) < 30
    assert 0 <= float(metrics['p2pool_work_latency_seconds']) < 30
    assert not any('pre-release' in warning for warning in node.get('/web/warnings'))


def test_argument_file_inline_comments_are_not_arguments(tmp_path):
    """`--net bsv_regtest # regtest` once made '#' the RPC user and 'regtest' the password."""
    args_file = tmp_path / 'p2pool.args'
    args_file.write_text('# a node on regtest\n--net bsv_regtest # regtest\n\n  --max-conns 7   #another one\n'
                         'rpcuser pa#ss  # the password keeps its inner #\n')
    args = cli.parse_args(['@%s' % args_file])
    assert (args.net, args.max_conns) == ('bsv_regtest', 7)
    assert (args.bitcoind_rpc_username, args.bitcoind_rpc_password) == ('rpcuser', 'pa#ss')


def test_help_and_readme_describe_the_same_argument_file_format():
    readme = (Path(__file__).resolve().parent.parent / 'README.md').read_text()
    assert cli.ARGUMENT_FILE_FORMAT in ' '.join(readme.split())
    assert cli.ARGUMENT_FILE_FORMAT in ' '.join(cli.build_parser().format_help().split())
