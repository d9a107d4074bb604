"""Litecoin MWEB end to end (issue 15) on the session's two p2pool nodes and litecoind pair.

Runs after tests/test_litecoin_node.py (file order): the chain crosses MWEB activation
(height 432; BIP9 bit 4, signalled by generatetoaddress blocks) while the node serves work,
then a block found through the node with a peg-in waiting is an MWEB block; then both nodes
agree on the best share, verified each other's shares, and A restarts on the activated chain.
"""
import re

import pytest

from node_processes import wait_until
from p2pool.bitcoin.mweb import spent_txids
from p2pool.testing.regtest_litecoin import MWEB_ACTIVATION_HEIGHT
from p2pool.work.cpuminer import StratumMiner

pytestmark = [pytest.mark.litecoind, pytest.mark.slow]


def stratum_prevhash(block_hash):
    """A block hash as mining.notify's prevhash field spells it (32-bit words swapped)."""
    wire_order = bytes.fromhex(block_hash)[::-1]
    return b''.join(wire_order[i:i + 4][::-1] for i in range(0, 32, 4)).hex()


def wait_for_work_on(stratum, block_hash, timeout=60):
    wanted = stratum_prevhash(block_hash)
    wait_until(lambda: stratum.poll() or stratum.job['prevhash'] == wanted, timeout,
               'stratum work on block %s' % block_hash)


def test_node_serves_work_across_mweb_activation_and_mines_an_mweb_block(ltc_pool):
    pool, first = ltc_pool, ltc_pool.pair.first
    stratum = StratumMiner('127.0.0.1', pool.a.worker_port, pool.addresses['stratum'],
                           pow_func='scrypt', difficulty_scale=pool.net.PARENT.DUMB_SCRYPT_DIFF).connect()
    try:
        # up to the block before the last pre-MWEB one, checking that each chunk brings new work
        while first.rpc('getblockcount') < MWEB_ACTIVATION_HEIGHT - 2:
            tip = first.mine(min(50, MWEB_ACTIVATION_HEIGHT - 2 - first.rpc('getblockcount')))[-1]
            wait_for_work_on(stratum, tip)
        # at height 431 Litecoin Core builds no template (bad-txns-vin-empty) until a peg-in waits
        tip = first.mine(1)[-1]
        peg_in = first.peg_in()
        wait_for_work_on(stratum, tip)      # work for block 432, the first MWEB block
    finally:
        stratum.close()
    pool.pair.wait_synced()

    def mweb_block_by_pool():
        for height, block, _ in pool.pool_blocks():
            if height >= MWEB_ACTIVATION_HEIGHT and 'mweb' in block:
                return block
        return None
    block = pool.mine_until(mweb_block_by_pool, 180, 'an MWEB block found through the node', getwork=False)
    assert first.mweb_active()
    assert first.rpc('gettransaction', peg_in)['confirmations'] >= 1
    assert block['mweb']['num_kernels'] >= 1
    # the HogEx (last) spends outputs of this block's peg-ins: why a block that ends with it must
    # keep them (p2pool/bitcoin/mweb.py), read by our parser as by litecoind
    hogex = block['tx'][-1]
    spent = {tx_in['txid'] for tx_in in hogex['vin'] if 'txid' in tx_in}
    assert spent & {tx['txid'] for tx in block['tx'][:-1]}
    assert {'%064x' % txid for txid in spent_txids(bytes.fromhex(hogex['hex']))} == spent


def test_two_nodes_agree_and_verify_each_other_and_a_restart_loads_the_chain(ltc_pool):
    pool = ltc_pool

    def agreed():
        bests = {node.best_share_hash() for node in pool.nodes}
        return bests.pop() if len(bests) == 1 and None not in bests else None
    def both_found_shares_and_agreed():
        # each node's miners must have a share of their own for the other to verify
        return all(node.get('/web/my_share_hashes') for node in pool.nodes) and agreed()
    pool.mine_until(both_found_shares_and_agreed, 90, 'miners of both nodes to find shares and the nodes to agree')
    best = wait_until(agreed, 30, 'both nodes to agree after the miners stopped')
    # each node verified the shares the other one's miners found
    for node, other in ((pool.a, pool.b), (pool.b, pool.a)):
        theirs = [pool.share(node, share_hash) for share_hash in other.get('/web/my_share_hashes')]
        known = [share for share in theirs if share is not None]
        assert known and all(share['local']['verified'] for share in known)
    # B assembled blocks from A's shares out of its own template (with the HogEx and MWEB data
    # once active) and sent them to its litecoind, which already had them from A's side or not
    console = pool.b.console()
    from_peer = set(re.findall(r'GOT BLOCK FROM PEER! ([0-9a-f]{64})', console))
    submitted = set(re.findall(r'Block ([0-9a-f]{64}) submitted to bitcoind over RPC: (?:accepted|duplicate)', console))
    assert from_peer & submitted, 'no block from a peer share was assembled and submitted by B'
    pool.a.stop()
    pool.start_node(pool.a)
    wait_until(lambda: pool.share(pool.a, best) is not None, 30, 'A to load its chain after the restart')
    assert pool.share(pool.a, best)['local']['verified']
