"""The worker interface on the real regtest bitcoind (Bitcoin SV 1.0.13).

A node is wired as p2pool.app.main will wire it: the bitcoind bridge (RPC, long polls,
Bitcoin P2P, block submission), a Tracker with a minimal best-share rule standing in
for the chooser, StaleAccounting, and the WorkBridge behind Stratum and getwork on
one port. CPU miners from p2pool.work.cpuminer mine through it: their shares enter
the tracker, their blocks are accepted by bitcoind with coinbases paying exactly the
PPLNS outputs that full share verification recomputes, vardiff settles at the
configured rate, and every kind of bad input gets its answer while mining goes on.

On this network every pseudoshare is also a block (the regtest block target is
2^255), so the test network uses a harder MAX_TARGET (about 65,536 hashes a share)
to keep the block rate sane.
"""
import dataclasses
import socket
import time
import types

import pytest

from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.address import address_to_script, donation_address
from p2pool.config import load_network
from p2pool.sharechain import outputs, pplns, verify
from p2pool.sharechain.stats import StaleAccounting
from p2pool.testing.testchain import make_addresses
from p2pool.sharechain.tracker import Tracker
from p2pool.work.bridge import WorkBridge
from p2pool.work.cpuminer import GetworkMiner, StratumMiner
from p2pool.work.username import PayeeResolver
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)
from worker_helpers import start_worker_server, stop_worker_server

pytestmark = pytest.mark.bitcoind

SHARE_RATE = 0.1            # seconds per pseudoshare wanted by vardiff
VARDIFF_HASH_RATE = 200000  # the vardiff miner's throttled hash rate


class Node:
    """The parts of the P2Pool node the bridge needs; the longest chain of live shares wins."""

    def __init__(self, tracker):
        self.tracker, self.best_share_hash = tracker, None
        self.received = []
        self._bumps = []

    def peer_count(self):
        return 0

    def watch_new_work(self, bump):
        self._bumps.append(bump)

    def on_share(self, share, dead):
        self.received.append((share, dead))
        self.tracker.add(share)
        best = self.best_share_hash
        if not dead and (best is None or self.tracker.get_height(share.hash) > self.tracker.get_height(best)):
            self.best_share_hash = share.hash
            for bump in self._bumps:
                bump('best share changed')


@pytest.fixture
def worker_node(reactor, regtest_node):
    from p2pool.bitcoin.daemon import BitcoindBridge
    net = dataclasses.replace(load_network('bsv_regtest'), MAX_TARGET=2**240 - 1)
    bitcoind = BitcoindBridge('127.0.0.1', regtest_node.rpc_port, regtest_node.p2p_port, regtest_node.user,
                              regtest_node.password, net, reactor=reactor)
    run_in_reactor(bitcoind.start, timeout=30)
    tracker = Tracker()
    node = Node(tracker)
    submitted = {}

    def on_block(block, segwit):
        block_hash = bitcoin_data.header_hash(block['header'])
        submitted[block_hash] = None
        bitcoind.submitter.submit(block, segwit).addCallback(lambda result: submitted.__setitem__(block_hash, result))

    def build():
        payees = PayeeResolver(net.PARENT, make_addresses(net, 1, seed=b'operator')[0])
        bridge = WorkBridge(net, bitcoind.source, tracker, node, payees, node.on_share, on_block,
                            stale_accounting=StaleAccounting(tracker, lambda: node.best_share_hash))
        env = types.SimpleNamespace(bridge=bridge, net=net, node=node, tracker=tracker, bitcoind=bitcoind,
                                    submitted=submitted, regtest=regtest_node)
        env.server = start_worker_server(env, share_rate=SHARE_RATE)
        return env
    env = run_in_reactor(build)
    yield env
    run_in_reactor(stop_worker_server, env.server)
    run_in_reactor(bitcoind.stop)


def settle(env, timeout=20):
    """Wait until the node's template builds on bitcoind's current tip (blocks may still be landing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tip = int(env.regtest.rpc('getbestblockhash'), 16)
        if run_in_reactor(lambda: env.bitcoind.source.current.previous_block) == tip:
            return
        time.sleep(0.02)
    raise AssertionError('the node never caught up with bitcoind\'s tip')


def accepted_block_shares(env):
    """Shares of our miners that bitcoind accepted as blocks."""
    def collect():
        return [share for share, dead in env.node.received
                if env.submitted.get(share.hash) is not None and env.submitted[share.hash].accepted]
    return run_in_reactor(collect)


def pays_both(env, share, addresses):
    def check():
        prev = env.tracker.items.get(share.previous_hash)
        if prev is None or share.hash not in env.tracker.items:
            return False
        weights, _, _ = pplns.get_cumulative_weights(
            env.tracker, prev.previous_hash, max(0, min(env.tracker.get_height(prev.hash),
                                                        env.net.REAL_CHAIN_LENGTH) - 1),
            pplns.pplns_desired_weight(bitcoin_data.bits_to_target(share.header['bits']), env.net))
        return set(addresses) <= set(weights)
    return run_in_reactor(check)


def test_mining_through_the_node(worker_node):
    env = worker_node
    port = env.server.number
    stratum_address, getwork_address = make_addresses(env.net, 2, seed=b'integration')
    stratum = StratumMiner('127.0.0.1', port, stratum_address + '.asic').connect()
    getwork = GetworkMiner('127.0.0.1', port, getwork_address + '_cpu')
    try:
        # --- shares from both protocols enter the tracker; blocks reach bitcoind ------------
        target_share = None
        for _ in range(40):
            settle(env)     # work on bitcoind's tip, so that the next solution is not stale
            getwork.mine(max_submissions=len(getwork.submissions) + 1)
            settle(env)
            stratum.mine(max_submissions=2)
            candidates = [share for share in accepted_block_shares(env)
                          if pays_both(env, share, [stratum_address, getwork_address])]
            if candidates:
                target_share = candidates[-1]
                break
        assert target_share is not None, 'no accepted block paying both miners'
        payees = {share.payout_address for share, _ in env.node.received}
        assert {stratum_address, getwork_address} <= payees
        assert any(result is True for result, _ in stratum.submissions)
        assert any(result is True for result, _, _ in getwork.submissions)

        # --- the block's coinbase pays exactly what share verification recomputes ------------
        block_hex = env.regtest.rpc('getblock', '%064x' % target_share.hash, 0)
        block = bitcoin_data.block_type.unpack(bytes.fromhex(block_hex))
        coinbase = block['txs'][0]
        gentx = run_in_reactor(verify.check_share, env.tracker, target_share, time.time()).tx()
        assert bitcoin_data.txid(coinbase) == bitcoin_data.txid(gentx) == target_share.gentx_hash
        assert coinbase['tx_outs'] == gentx['tx_outs']
        prev = env.tracker.items[target_share.previous_hash]
        weights, total, _ = pplns.get_cumulative_weights(
            env.tracker, prev.previous_hash, max(0, min(env.tracker.get_height(prev.hash),
                                                        env.net.REAL_CHAIN_LENGTH) - 1),
            pplns.pplns_desired_weight(bitcoin_data.bits_to_target(target_share.header['bits']), env.net))
        donation = donation_address(env.net.PARENT)
        amounts = outputs.compute_amounts(weights, total, target_share.subsidy, target_share.payout_address,
                                           donation)
        paid = {out['script']: out['value'] for out in coinbase['tx_outs'][:-2]}   # before donation, OP_RETURN
        for address in (stratum_address, getwork_address):
            assert paid[address_to_script(address, env.net.PARENT)] == amounts[address] > 0
        assert coinbase['tx_outs'][-2]['value'] == amounts[donation]
        assert sum(out['value'] for out in coinbase['tx_outs']) == target_share.subsidy

        # --- vardiff settles at one pseudoshare per SHARE_RATE seconds --------------------------
        tuned = StratumMiner('127.0.0.1', port, stratum_address + '.tuned/1e12').connect()
        started = time.monotonic()
        hashes = tuned.mine(max_submissions=60, hash_rate=VARDIFF_HASH_RATE)
        measured_rate = hashes / (time.monotonic() - started)
        ideal_attempts = measured_rate * SHARE_RATE
        attempts = 2**256 / bitcoin_data.difficulty_to_target(tuned.difficulty)
        assert ideal_attempts / 3 <= attempts <= ideal_attempts * 3
        tuned.close()

        # --- bad input: each gets its answer, mining goes on -----------------------------------
        bad = StratumMiner('127.0.0.1', port, stratum_address).connect()
        bad.send_raw(b'{"id": 1, "method": \n')
        assert bad.next_reply()['error']['code'] == -32700
        assert bad.request('mining.fly', [])[1]['code'] == -32601
        assert bad.request('mining.submit', [1, 2, 3, 4, 5])[1]['code'] == -32602
        job = bad.job
        assert bad.request('mining.submit', [stratum_address, 'no-such-job', '00000000', job['ntime'],
                                             '00000000'])[1]['code'] == 21
        assert bad.request('mining.submit', [stratum_address, job['job_id'], '0000', job['ntime'],
                                             '00000000'])[1]['code'] == 20
        assert bad.request('mining.submit', [stratum_address, job['job_id'], '00000000', 'ffffffff',
                                             '00000000'])[1]['code'] == 20
        env.server.stratum.clock = lambda: time.time() + 400          # every job issued so far expired
        assert bad.request('mining.submit', [stratum_address, job['job_id'], '00000000', job['ntime'],
                                             '00000000'])[1]['code'] == 21
        env.server.stratum.clock = time.time
        bad.send_raw(b'{"id": 2, "method": "mining.subscribe", "params": ["' + b'a' * 40000)
        with pytest.raises((ConnectionError, OSError)):
            for _ in range(100):
                bad.read_message(0.1)
        assert getwork.call('getwork', [{'data': 1}])[0]['error']['code'] == -32602
        assert getwork.call('getblocktemplate', [])[0]['error']['code'] == -32601
        with socket.create_connection(('127.0.0.1', port), timeout=10) as oversize:
            oversize.sendall(b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n{')
            assert oversize.recv(100).startswith(b'HTTP/1.1 413')
        idle = socket.create_connection(('127.0.0.1', port))             # a slow client that says nothing
        idle.sendall(b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"id"')
        before = len(stratum.submissions)
        stratum.mine(max_submissions=2)                                  # everyone else is still served
        assert len(stratum.submissions) == before + 2
        assert getwork.getwork()[0]['data']
        idle.close()
    finally:
        stratum.close()
