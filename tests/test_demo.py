"""`p2pool demo`: the one-command local pool reaches its goal and leaves nothing running.

The end-to-end tests run the demo exactly as a person would (`python -m p2pool.app.main demo`)
on the real regtest bitcoind: it must end with status 0 and a JSON summary showing shares
of both miners on both nodes and a block paying both miners, which a bitcoind restarted on
the demo's data directory confirms from its own chain.  Every process the demo started
(by the PIDs it reports) must be gone, also when it is stopped with SIGINT or SIGTERM.

The block scanner's bookkeeping (which blocks pay every miner, what happens on a chain
reorganisation) is tested against a scripted chain without bitcoind.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pool.commands import demo
from p2pool.testing import regtest
from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.address import address_to_script
from p2pool.config import load_network

DEMO = [sys.executable, '-m', 'p2pool.app.main', 'demo']
DEMO_TIMEOUT = 90           # the demo needs a few seconds; this only bounds a hung run


def is_ours_and_alive(pid):
    """Whether `pid` is still a live bitcoind or p2pool process (a reused PID does not count)."""
    try:
        os.kill(pid, 0)
        cmdline = Path('/proc/%d/cmdline' % pid).read_bytes()
        state = Path('/proc/%d/stat' % pid).read_text().rpartition(')')[2].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != 'Z' and (b'bitcoind' in cmdline or b'p2pool' in cmdline)


def check_nothing_left(summary, daemons=('bitcoind',)):
    names = sorted(record['name'] for record in summary['processes'])
    assert names == sorted([*daemons, 'miner 1', 'miner 2', 'node 1', 'node 2'])
    for record in summary['processes']:
        assert record['running'] is False, record
        assert not is_ours_and_alive(record['pid']), record


def check_goal(summary):
    assert summary['goal_reached'] is True and summary['error'] is None
    nodes = summary['nodes']
    addresses = {node['address'] for node in nodes}
    assert len(addresses) == 2 and {node['protocol'] for node in nodes} == {'stratum', 'getwork'}
    for node in nodes:
        assert node['own_shares'] > 0
        assert addresses <= set(node['miners_in_chain'])
        assert node['peers'] >= 1
        assert node['dashboard'] == 'http://127.0.0.1:%d/static/' % node['worker_port']
    block = summary['block']
    assert set(block['paid']) == addresses and all(value > 0 for value in block['paid'].values())
    times = summary['seconds_after_mining_start']
    assert set(times) >= {'first_share', 'first_block', 'shares_on_both_nodes', 'goal'}


def run_demo(*args):
    result = subprocess.run(DEMO + list(args), capture_output=True, text=True, timeout=DEMO_TIMEOUT)
    assert result.stdout.strip(), result.stderr[-3000:]
    return result, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.bitcoind
@pytest.mark.slow
def test_the_demo_reaches_its_goal_and_stops_everything(bitcoind_bin, tmp_path):
    datadir = tmp_path / 'demo'
    result, summary = run_demo('--duration', '60', '--until-goal', '--json', '--datadir', str(datadir))
    assert result.returncode == 0, result.stderr[-3000:]
    check_goal(summary)
    check_nothing_left(summary)
    assert summary['stop_reason'] == 'goal reached'
    assert 'http://127.0.0.1:%d/static/' % summary['nodes'][0]['worker_port'] in result.stderr
    assert 'First block paying both miners' in result.stderr

    # bitcoind, started again on the demo's chain, has the block and its coinbase pays both miners
    block = summary['block']
    net = load_network('bsv_regtest')
    node = regtest.RegtestBitcoind(bitcoind_bin)
    try:
        node.start(datadir=datadir / 'bitcoind')
        assert node.rpc('getblockhash', block['height']) == block['hash']
        raw = bitcoin_data.block_type.unpack(bytes.fromhex(node.rpc('getblock', block['hash'], 0)))
    finally:
        node.stop()
    outputs = raw['txs'][0]['tx_outs']
    for address, value in block['paid'].items():
        script = address_to_script(address, net.PARENT)
        assert sum(out['value'] for out in outputs if out['script'] == script) == value


@pytest.mark.bitcoind
@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_a_signal_stops_everything_the_demo_started(bitcoind_bin, signum):
    process = subprocess.Popen(DEMO + ['--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT
        seen = []
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            seen.append(line)
            if not line or line.startswith('Goal reached'):
                break
        assert seen[-1].startswith('Goal reached'), ''.join(seen)[-3000:]
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=DEMO_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert process.returncode == 0, stderr[-3000:]
    assert summary['stop_reason'] == signal.Signals(signum).name
    check_goal(summary)
    check_nothing_left(summary)
    assert summary['datadir'] is None      # the temporary folder is gone
    assert 'Stopping everything the demo started (%s)' % signal.Signals(signum).name in stderr


def test_bad_options_end_with_status_2(capsys):
    assert demo.main(['--duration', '0']) == 2
    assert demo.main(['--no-such-option']) == 2
    assert 'p2pool demo' in capsys.readouterr().err


def test_without_a_bitcoind_the_demo_explains_and_fails(monkeypatch, capsys):
    monkeypatch.setenv('P2POOL_BITCOIND', '/nonexistent/bitcoind')
    assert demo.main(['--json']) == 1
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary['goal_reached'] is False and summary['processes'] == []
    assert 'P2POOL_BITCOIND=/nonexistent/bitcoind' in summary['error'] and 'P2POOL_BITCOIND' in err
    assert summary['datadir'] is None      # nothing was kept


# --- the block scanner on a scripted chain ---------------------------------------------------

ADDRESSES = {'miner-a': b'\x76\xa9a', 'miner-b': b'\x76\xa9b'}


def block_hex(height, payouts, fork=0):
    """A block whose coinbase pays `payouts` ({script: satoshis}); `fork` makes a competing block."""
    coinbase = {'version': 1, 'tx_ins': [{'previous_output': None, 'script': bytes([2, height, fork]),
                                          'sequence': None}],
                'tx_outs': [{'value': value, 'script': script} for script, value in payouts.items()]
                + [{'value': 0, 'script': b'\x6a'}], 'lock_time': 0}
    header = {'version': 1, 'previous_block': None, 'merkle_root': bitcoin_data.txid(coinbase),
              'timestamp': 0, 'bits': 0x207fffff, 'nonce': height}
    return bitcoin_data.block_type.pack({'header': header, 'txs': [coinbase]}).hex()


class ScriptedBitcoind:
    """Answers the three RPC calls the scanner makes from a list of (hash, block hex)."""

    def __init__(self):
        self.chain = {}      # height -> (hash, hex)

    def set_block(self, height, payouts, fork=0):
        self.chain[height] = ('%064x' % (height * 1000 + fork), block_hex(height, payouts, fork))

    def rpc(self, method, *params):
        if method == 'getblockcount':
            return max(self.chain)
        if method == 'getblockhash':
            return self.chain[params[0]][0]
        assert method == 'getblock' and params[1] == 0
        return next(raw for block_hash, raw in self.chain.values() if block_hash == params[0])


def test_the_scanner_finds_blocks_paying_every_miner_and_follows_reorganisations():
    both = {ADDRESSES['miner-a']: 30, ADDRESSES['miner-b']: 20}
    bitcoind = ScriptedBitcoind()
    bitcoind.set_block(20, both)                                   # pre-mined: never counted
    scanner = demo.BlockScanner(bitcoind, 21, ADDRESSES)
    scanner.poll()
    assert scanner.blocks == 0 and scanner.paying_all == []

    bitcoind.set_block(21, {ADDRESSES['miner-a']: 50})              # pays one miner only
    bitcoind.set_block(22, both)
    bitcoind.set_block(23, {**both, b'\x51': 7})
    scanner.poll()
    assert scanner.blocks == 3
    assert [block['height'] for block in scanner.paying_all] == [22, 23]
    assert scanner.paying_all[0]['paid'] == {'miner-a': 30, 'miner-b': 20}
    assert scanner.paying_all[1]['other_outputs'] == 7

    # a competing chain replaces blocks 22 and 23; the new 22 pays one miner only
    bitcoind.set_block(22, {ADDRESSES['miner-b']: 50}, fork=1)
    bitcoind.set_block(23, both, fork=1)
    bitcoind.set_block(24, both, fork=1)
    scanner.poll()
    assert [(block['height'], block['hash']) for block in scanner.paying_all] == [
        (23, bitcoind.chain[23][0]), (24, bitcoind.chain[24][0])]

    # a shorter chain after a reorganisation: blocks above the tip are forgotten
    del bitcoind.chain[24]
    scanner.poll()
    assert [block['height'] for block in scanner.paying_all] == [23] and scanner.blocks == 3


def test_the_scanner_reads_a_bounded_number_of_blocks_per_poll():
    bitcoind = ScriptedBitcoind()
    for height in range(1, 12):
        bitcoind.set_block(height, {ADDRESSES['miner-a']: 1, ADDRESSES['miner-b']: 1})
    scanner = demo.BlockScanner(bitcoind, 1, ADDRESSES)
    scanner.poll(max_blocks=4)
    assert len(scanner.paying_all) == 4
    scanner.poll(max_blocks=100)
    assert len(scanner.paying_all) == 11


# --- on Litecoin Core --------------------------------------------------------------------------

@pytest.mark.litecoind
@pytest.mark.slow
def test_the_litecoin_demo_reaches_its_goal_on_litecoind(litecoind_bin):
    result, summary = run_demo('--parent', 'litecoin', '--duration', '60', '--until-goal', '--json')
    assert result.returncode == 0, result.stderr[-3000:]
    check_goal(summary)
    check_nothing_left(summary, daemons=('litecoind', 'litecoind peer'))
    assert 'Litecoin Core regtest' in result.stderr and 'rLTC' in result.stderr


def test_the_litecoin_demo_without_litecoind_says_how_to_install_it(monkeypatch, capsys):
    from p2pool.testing import regtest_litecoin
    monkeypatch.setattr(regtest_litecoin.shutil, 'which', lambda name: None)
    assert demo.main(['--parent', 'litecoin', '--json']) == 1
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary['error'] == 'litecoind is not installed; install Litecoin Core with: sudo apt-get install litecoind'
    assert 'p2pool demo: litecoind is not installed; install Litecoin Core with: sudo apt-get install litecoind' in err
    assert summary['processes'] == []
