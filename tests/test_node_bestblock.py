"""A running node tells its peers about bitcoind's new tip with `bestblock` (p2p.md §4.9)."""
import pytest

from p2pool.bitcoin.data import header_hash
from p2p_helpers import RawClient
from node_processes import node_factory  # noqa: F401 (fixture)

pytestmark = pytest.mark.bitcoind


def test_a_new_block_at_bitcoind_is_announced_to_peers(node_factory, regtest_node):  # noqa: F811
    node = node_factory(regtest_node, name='bestblock', address=regtest_node.wallet_address()).start().wait_ready()
    peer = RawClient(node.p2p_port, timeout=20)
    try:
        peer.handshake()
        block_hash = regtest_node.mine(1)[0]
        while True:   # the first announcement may still be the tip from before our block
            announced = peer.read_until('bestblock')['header']
            if '%064x' % header_hash(announced) == block_hash:
                break
        assert regtest_node.rpc('getblockheader', block_hash)['bits'] == '%08x' % announced['bits']
    finally:
        peer.close()
