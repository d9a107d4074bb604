"""Litecoin end to end (issue 15): two p2pool nodes on a real Litecoin Core 0.21.2.1 regtest pair.

Node A works for litecoind `first`, node B for `second` (peered with each other); A's
operator address is legacy, B's bech32. A stratum scrypt CPU miner on A pays a P2SH-segwit
username, a getwork scrypt miner on B a bech32 one, and a miner on each node with a username
that is no address pays that node's operator. On litecoin regtest nearly every share
is also a block (block target 2**255), so the parent chain grows with the sharechain.

The test runs on the session's litecoind pair, whose chain only grows: it must stay below
MWEB activation (height 432), so pseudoshares are submitted only at share difficulty (every
hash under 2**255 is a regtest block, and a vardiff pseudoshare stream would cross 432 in
under a minute).
"""
import pytest

from litecoin_pool import V35
from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.address import address_to_script

pytestmark = [pytest.mark.litecoind, pytest.mark.slow]

WITNESS_COMMITMENT_HEAD = '6a24aa21a9ed'


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
        return paid >= {'stratum', 'getwork', 'operator_a', 'operator_b'} and paid
    pool.mine_until(paid_everyone_on_v35, 240, 'version-35 blocks paying the legacy, P2SH and bech32 payees',
                    operator_miner=True)

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
