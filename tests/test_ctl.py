"""`p2pool ctl` against running nodes on the real regtest bitcoind, and the payout history
of real blocks: immature, orphaned after `invalidateblock`, mature after 100 confirmations."""
import json
import os
import stat
import subprocess
import sys

import pytest

from node_processes import NET, REPO, node_factory, wait_until  # noqa: F401 (fixture)
from p2pool.work.cpuminer import StratumMiner


def ctl(node_or_datadir, *words, timeout=30):
    datadir = getattr(node_or_datadir, 'datadir', node_or_datadir)
    return subprocess.run([sys.executable, str(REPO / 'run_p2pool.py'), 'ctl', '--net', NET, '--datadir',
                           str(datadir), *words], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_no_node_running_is_one_line_and_exit_1(tmp_path):
    result = ctl(tmp_path, 'status')
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and 'no node is running' in result.stderr
    assert 'Traceback' not in result.stderr
    unknown = ctl(tmp_path, 'frobnicate')
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1


def payouts_of(node):
    return node.get('/web/payouts')


@pytest.mark.bitcoind
@pytest.mark.slow
def test_every_ctl_command_and_the_payout_history(node_factory, regtest_node):  # noqa: F811
    address = regtest_node.wallet_address()
    a = node_factory(regtest_node, name='ctl-a', address=address).start().wait_ready()
    b = node_factory(regtest_node, name='ctl-b', address=address, peers=[a.p2p_port]).start().wait_ready()
    sock = a.net_dir / 'control.sock'
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600, 'the control socket is owner-only'

    # a worker with a name mines real blocks (every bsv_regtest share is a block)
    miner = StratumMiner('127.0.0.1', a.worker_port, address + '.rig7').connect()

    def paid():
        miner.mine(seconds=0.3)
        return payouts_of(a)
    rows = wait_until(paid, 90, 'a block paying the node\'s payee in /web/payouts', interval=0)
    assert 'Dashboard: http://127.0.0.1:%d/static/' % a.worker_port in a.console()

    workers = ctl(a, 'workers')
    assert workers.returncode == 0, workers.stderr
    line = next(line for line in workers.stdout.splitlines() if line.startswith(address + '.rig7'))
    assert address in line.split()[1:] and '127.0.0.1:' in line and 'H/s' in line
    assert workers.stdout.splitlines()[0].split()[:2] == ['worker', 'payout']

    status = ctl(a, 'status')
    assert status.returncode == 0 and status.stdout.startswith('P2Pool: ') and 'Peers: 1' in status.stdout

    peers = wait_until(lambda: (lambda r: r if '127.0.0.1:' in r.stdout else None)(ctl(a, 'peers')), 30, 'a peer')
    assert peers.returncode == 0 and 'in' in peers.stdout.split() and 'p2pool' in peers.stdout
    assert peers.stdout.splitlines()[0].split() == ['address', 'direction', 'version', 'ping', 'uptime', 'score']

    assert ctl(a, 'bans').stdout.strip() == 'no active bans'
    banned = ctl(a, 'ban', '192.0.2.7', '600')
    assert banned.returncode == 0 and 'banned 192.0.2.7' in banned.stdout
    assert '192.0.2.7' in ctl(a, 'bans').stdout and 'banned by the operator' in ctl(a, 'bans').stdout
    assert ctl(a, 'unban', '192.0.2.7').returncode == 0
    assert ctl(a, 'bans').stdout.strip() == 'no active bans'
    assert ctl(a, 'unban', '192.0.2.7').returncode == 2
    assert ctl(a, 'ban', 'not-an-ip').returncode == 2

    assert ctl(a, 'loglevel', 'debug').stdout.strip() == 'log level is now debug'
    assert ctl(a, 'loglevel', 'info').returncode == 0
    assert ctl(a, 'loglevel', 'loud').returncode == 2
    help_text = ctl(a, 'help').stdout
    for command in ('status', 'workers', 'peers', 'bans', 'ban ADDR', 'unban ADDR', 'loglevel', 'blocks',
                    'payouts', 'help'):
        assert command in help_text
    unknown = ctl(a, 'frobnicate')
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1 and unknown.stdout == ''

    def listed():
        # every regtest share is a block, so under load a block can pay us while its share lost a race for the
        # best sharechain (`ctl blocks` lists the best chain's blocks): mine on until a paying block is listed
        blocks = ctl(a, 'blocks')
        paying = {row['hash'] for row in payouts_of(a)}
        if blocks.returncode == 0 and any(block_hash in blocks.stdout for block_hash in paying):
            return blocks
        miner.mine(seconds=0.3)
        return None
    wait_until(listed, 60, 'a block paying the node\'s payee in `ctl blocks`', interval=0)
    miner.close()
    rows = payouts_of(a)
    # every payout row is a real block of bitcoind paying our address
    first = rows[-1]
    header = regtest_node.rpc('getblockheader', first['hash'])
    assert header['height'] == first['height'] and first['state'] == 'immature'
    assert set(first['payouts']) == {address} and first['payouts'][address] > 0
    payouts = ctl(a, 'payouts')
    assert payouts.returncode == 0 and first['hash'] in payouts.stdout and 'immature' in payouts.stdout
    metrics = _text(a, '/metrics')
    assert 'p2pool_payouts_coins{state="immature"}' in metrics

    # orphaned: bitcoind drops the newest pool block from its best chain
    in_chain = {block['hash'] for block in a.get('/recent_blocks')}
    newest = next(row for row in payouts_of(a) if row['hash'] in in_chain)
    regtest_node.rpc('invalidateblock', newest['hash'])
    try:
        def orphaned():
            row = next(row for row in payouts_of(a) if row['hash'] == newest['hash'])
            return row if row['state'] == 'orphaned' else None
        row = wait_until(orphaned, 40, 'the invalidated block marked orphaned')
        assert row['confirmations'] == -1
        recent = {block['hash']: block for block in a.get('/recent_blocks')}
        assert recent[newest['hash']]['state'] == 'orphaned'
        assert 'orphaned' in ctl(a, 'payouts').stdout and 'orphaned' in ctl(a, 'blocks').stdout
    finally:
        regtest_node.rpc('reconsiderblock', newest['hash'])

    # mature after 100 confirmations
    tip_height = regtest_node.rpc('getblockcount')
    needed = COINBASE = 100
    regtest_node.rpc('generatetoaddress', max(0, first['height'] + needed - 1 - tip_height) + 1,
                     regtest_node.wallet_address())

    def mature():
        row = next(row for row in payouts_of(a) if row['hash'] == first['hash'])
        return row if row['state'] == 'mature' else None
    row = wait_until(mature, 60, 'the first block mature after %d confirmations' % COINBASE)
    assert row['confirmations'] >= COINBASE
    assert 'p2pool_payouts_coins{state="mature"}' in _text(a, '/metrics')
    assert json.loads(json.dumps(a.get('/openapi.json')))['paths']['/web/payouts']
    assert a.stop() == 0 and b.stop() == 0
    assert not sock.exists()


def _text(node, path):
    import urllib.request
    with urllib.request.urlopen(node.url(path), timeout=10) as response:
        return response.read().decode()


@pytest.mark.bitcoind
def test_commands_typed_on_the_nodes_terminal(node_factory, regtest_node):  # noqa: F811
    """With a terminal on stdin the node answers the same commands on its console; the status
    lines also reach the log file."""
    import pty
    master, slave = pty.openpty()
    node = node_factory(regtest_node, name='ctl-tty', address=regtest_node.wallet_address())
    node.stdin = slave
    try:
        node.start().wait_ready()
        os.write(master, b'bans\nfrobnicate\nhelp\n')
        wait_until(lambda: 'no active bans' in node.console() and 'unban ADDR' in node.console(), 30,
                   'the answers on the console')
        assert "unknown command 'frobnicate'" in node.console()
        wait_until(lambda: 'P2Pool: ' in (node.net_dir / 'log').read_text(), 30, 'status lines in the log file')
        assert node.stop() == 0
    finally:
        os.close(master)
        os.close(slave)
