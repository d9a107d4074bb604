"""Litecoin end to end (issue 15): two p2pool nodes on a real Litecoin Core 0.21.2.1 regtest pair.

Node A works for litecoind `first`, node B for `second` (peered with each other); A's
operator address is legacy, B's bech32. A stratum scrypt CPU miner on A pays a P2SH-segwit
username, a getwork scrypt miner on B a bech32 one. On litecoin regtest nearly every share
is also a block (block target 2**255), so the parent chain grows with the sharechain.

The test runs on the session's litecoind pair, whose chain only grows: it must stay below
MWEB activation (height 432), so pseudoshares are submitted only at share difficulty (every
hash under 2**255 is a regtest block, and a vardiff pseudoshare stream would cross 432 in
under a minute).
"""
import threading
import time

import pytest

from node_processes import NodeProcess, NodeProcessError, wait_until
from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.address import address_to_script
from p2pool.config import load_network
from p2pool.testing.regtest_litecoin import MWEB_ACTIVATION_HEIGHT
from p2pool.work.cpuminer import GetworkMiner, StratumMiner

pytestmark = [pytest.mark.litecoind, pytest.mark.slow]

NET = 'litecoin_regtest'
# share difficulty clipped to the pool's; pseudoshares only at it (every hash under 2**255 is a block)
EASIEST_SHARES = '/1e-12+1e9'
WITNESS_COMMITMENT_HEAD = '6a24aa21a9ed'
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
            node.start().wait_ready(90)
        wait_until(lambda: all(node.peer_count() == 1 for node in self.nodes), 30, 'the two nodes to peer')

    def stop(self):
        for node in self.nodes:
            node.stop(timeout=20)

    def mine_until(self, condition, timeout, what, getwork=True):
        """Both scrypt miners until `condition()` is truthy (checked every half second)."""
        stop = threading.Event()
        scale = self.net.PARENT.DUMB_SCRYPT_DIFF
        stratum = StratumMiner('127.0.0.1', self.a.worker_port, self.addresses['stratum'] + EASIEST_SHARES,
                               pow_func='scrypt', difficulty_scale=scale).connect()
        miners = [threading.Thread(target=self._stratum_loop, args=(stratum, stop), daemon=True)]
        getworker = GetworkMiner('127.0.0.1', self.b.worker_port, self.addresses['getwork'] + EASIEST_SHARES,
                                 pow_func='scrypt')
        if getwork:
            miners.append(threading.Thread(target=self._getwork_loop, args=(getworker, stop), daemon=True))
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
            stratum.close()
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


@pytest.fixture(scope='module')
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


def _script_hex(address, net):
    return address_to_script(address, net.PARENT).hex()


def test_before_mweb_miners_find_shares_and_blocks_pay_the_sharechain_exactly(ltc_pool):
    pool, first = ltc_pool, ltc_pool.pair.first
    segwit_txid = first.rpc('sendtoaddress', first.new_address('bech32'), 1.5)

    def paid_everyone_on_v35():
        if not pool.best_version_is_35():
            return False
        paid = set()
        for _, block, _ in pool.pool_blocks():
            scripts = {out['scriptPubKey']['hex'] for out in block['tx'][0]['vout']}
            paid |= {name for name, address in pool.addresses.items()
                     if _script_hex(address, pool.net) in scripts}
        return paid >= {'stratum', 'getwork', 'operator_a'} and paid
    pool.mine_until(paid_everyone_on_v35, 240, 'version-35 blocks paying the legacy, P2SH and bech32 payees')

    assert any(result is True for result, _ in pool.stratum_submissions)
    assert any(result is True for result, _, _ in pool.getwork_submissions)
    blocks = pool.pool_blocks()
    assert blocks, 'no pool block reached litecoind'
    assert any(segwit_txid in [tx['txid'] for tx in block['tx']] for _, block, _ in blocks), \
        'the wallet segwit transaction was not mined in a pool block'
    for height, block, share in blocks:
        coinbase = block['tx'][0]
        # litecoind accepted this coinbase; the node rebuilds it from the sharechain's PPLNS
        stripped = bitcoin_data.tx_id_type.pack(bitcoin_data.tx_type.unpack(bytes.fromhex(coinbase['hex'])))
        assert stripped.hex() == share['block']['gentx']['raw'], 'block %d pays other amounts' % height
        assert any(out['scriptPubKey']['hex'].startswith(WITNESS_COMMITMENT_HEAD) for out in coinbase['vout'])
    versions = {share['type_name'] for _, _, share in blocks}
    assert V35 in versions
