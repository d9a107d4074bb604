"""Two p2pool nodes on the session's regtest litecoind pair, with scrypt CPU miners (issue 15).

Node A works for litecoind `first`, node B for `second` (peered with each other); A's
operator address is legacy, B's bech32. A stratum miner on A pays a P2SH-segwit username,
a getwork miner on B a bech32 one. The pool is session-scoped: tests/test_litecoin_node.py
uses it before MWEB activation, tests/test_litecoin_node_mweb.py across and after it.

(tests/ has no __init__.py, so this imports as plain `litecoin_pool`.)
"""
import threading
import time

import pytest

from node_processes import NodeProcess, NodeProcessError, wait_until
from p2pool.testing.regtest import free_ports
from p2pool.config import load_network
from p2pool.testing.regtest_litecoin import MWEB_ACTIVATION_HEIGHT
from p2pool.work.cpuminer import GetworkMiner, StratumMiner

NET = 'litecoin_regtest'
# share difficulty clipped to the pool's; pseudoshares only at it (every hash under 2**255 is a block)
EASIEST_SHARES = '/1e-12+1e9'
V35 = 'PaddingBugfixShare'


class LitecoinPool:
    def __init__(self, pair, root):
        self.pair = pair
        self.net = load_network(NET)
        first = pair.first
        self.addresses = {
            'operator_a': first.new_address('legacy'), 'operator_b': first.new_address('bech32'),
            'stratum': first.new_address('p2sh-segwit'), 'getwork': first.new_address('bech32')}
        self.a = NodeProcess(pair.first, root / 'a', name='A', address=self.addresses['operator_a'], net=NET)
        self.b = NodeProcess(pair.second, root / 'b', name='B', address=self.addresses['operator_b'],
                             peers=[self.a.p2p_port], net=NET)
        self.nodes = [self.a, self.b]
        self.start_height = first.rpc('getblockcount')
        self.stratum_submissions, self.getwork_submissions = [], []

    def start(self):
        for node in self.nodes:
            self.start_node(node)
        wait_until(lambda: all(node.peer_count() == 1 for node in self.nodes), 30, 'the two nodes to peer')

    def start_node(self, node, attempts=3):
        """Start `node`; fresh ports when another process took one meanwhile (loopback is shared
        with other test suites running on this machine)."""
        for attempt in range(attempts):
            if node is self.b:
                node.peers = [self.a.p2p_port]
            try:
                return node.start().wait_ready(90)
            except NodeProcessError:
                if attempt == attempts - 1 or 'Address already in use' not in node.console():
                    raise
                node.p2p_port, node.worker_port = free_ports(2)

    def stop(self):
        for node in self.nodes:
            node.stop(timeout=20)

    def mine_until(self, condition, timeout, what, getwork=True, operator_miner=False):
        """Both scrypt miners until `condition()` is truthy (checked every half second).

        `operator_miner`: also a stratum miner on each node whose username is no address, so that
        its shares pay that node's operator (`-a`: legacy on A, bech32 on B).
        """
        stop = threading.Event()
        scale = self.net.PARENT.DUMB_SCRYPT_DIFF
        stratum = StratumMiner('127.0.0.1', self.a.worker_port, self.addresses['stratum'] + EASIEST_SHARES,
                               pow_func='scrypt', difficulty_scale=scale).connect()
        miners = [threading.Thread(target=self._stratum_loop, args=(stratum, stop), daemon=True)]
        getworker = GetworkMiner('127.0.0.1', self.b.worker_port, self.addresses['getwork'] + EASIEST_SHARES,
                                 pow_func='scrypt')
        if getwork:
            miners.append(threading.Thread(target=self._getwork_loop, args=(getworker, stop), daemon=True))
        extra = []
        for node in (self.a, self.b) if operator_miner else ():
            extra.append(StratumMiner('127.0.0.1', node.worker_port, 'no-address' + EASIEST_SHARES,
                                      pow_func='scrypt', difficulty_scale=scale).connect())
            miners.append(threading.Thread(target=self._stratum_loop, args=(extra[-1], stop), daemon=True))
        for thread in miners:
            thread.start()
        try:
            return wait_until(condition, timeout, what, interval=0.5)
        except NodeProcessError as error:
            raise AssertionError('%s\n%s' % (error, '\n'.join(node.tail(20) for node in self.nodes))) from None
        finally:
            stop.set()
            for thread in miners:
                thread.join(30)
            for miner in [stratum] + extra:
                miner.close()
            self.stratum_submissions += stratum.submissions
            self.getwork_submissions += getworker.submissions

    @staticmethod
    def _stratum_loop(miner, stop):
        while not stop.is_set():
            miner.mine(seconds=0.5, stop=stop.is_set)

    @staticmethod
    def _getwork_loop(miner, stop):
        while not stop.is_set():
            try:
                work = miner.getwork()[0]
                solution = miner.solve(work, max_hashes=256)
                if solution is not None:
                    miner.submit(solution)
            except OSError:
                time.sleep(0.2)

    def share(self, node, block_hash):
        return node.get_or_none('/web/share/%s' % block_hash)

    def pool_blocks(self, node=None):
        """[(height, block with verbosity 2, /web/share answer)] of the blocks that are node's shares."""
        node = node or self.a
        first = self.pair.first
        found = []
        for height in range(self.start_height + 1, first.rpc('getblockcount') + 1):
            block_hash = first.rpc('getblockhash', height)
            share = self.share(node, block_hash)
            if share is not None:
                found.append((height, first.rpc('getblock', block_hash, 2), share))
        return found

    def best_version_is_35(self):
        best = self.a.best_share_hash()
        share = self.share(self.a, best) if best else None
        return share is not None and share['type_name'] == V35


@pytest.fixture(scope='session')
def ltc_pool(litecoind_pair, tmp_path_factory):
    litecoind_pair.ensure_running()
    if litecoind_pair.first.rpc('getblockcount') >= MWEB_ACTIVATION_HEIGHT - 150:
        pytest.fail('the session litecoind pair is too close to MWEB activation for these tests', pytrace=False)
    pool = LitecoinPool(litecoind_pair, tmp_path_factory.mktemp('litecoin-pool'))
    pool.start()
    try:
        yield pool
    finally:
        pool.stop()
