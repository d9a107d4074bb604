"""Golden shares: real shares of formats 17 and 35, fixed to the byte (tests/vectors/golden_shares.json).

The shares were mined once by this code on the real parameters of the Litecoin
testnet sharechain (scrypt, MAX_TARGET 2**256//20, segwit layout for 35) and of
the Bitcoin regtest sharechain (SHA256d, MAX_TARGET 2**255), as short chains paying several
addresses, and stored with their wire bytes, hash, PoW hash, gentx and payouts
to the satoshi. The suite decodes every stored share and checks all of these,
and verifies each share against its ancestors (which regenerates the gentx), so
any change to decoding, hashing, PPLNS weights, amounts, output order or the
gentx layout fails here. No capture of the original P2Pool's shares exists in
tests/vectors; these vectors pin this implementation's own consensus output.

Regenerate (only after a deliberate consensus change, and say so in the commit):
    .venv/bin/python tests/test_golden_shares.py --write
"""
import json
import os
import sys

import pytest

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin import data as bitcoin_data
from p2pool.config import load_network
from p2pool.sharechain import verify
from p2pool.sharechain.share import Share
from p2pool.sharechain.tracker import Tracker

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'vectors', 'golden_shares.json')

#: (network, share format, block bits, subsidy): bits and subsidies as those networks' blocks have them
CHAINS = [
    ('litecoin_testnet', 17, 0x1e0ffff0, 1_250_000_000),
    ('litecoin_testnet', 35, 0x1e0ffff0, 1_250_000_000),
    ('bitcoin_regtest', 17, 0x207fffff, 5_000_000_000),
    ('bitcoin_regtest', 35, 0x207fffff, 5_000_000_000),
]
CHAIN_SHARES = 6
FIRST_TIMESTAMP = 1_700_000_000


def _load():
    with open(VECTORS) as f:
        return json.load(f)


def _chain(network, version):
    (chain,) = [chain for chain in _load()['chains'] if (chain['network'], chain['version']) == (network, version)]
    return chain


def _gentx_record(gentx):
    return {'hex': bitcoin_data.tx_type.pack(gentx).hex(), 'txid': '%064x' % bitcoin_data.txid(gentx)}


def _payouts(gentx, addresses, version, parent):
    """{address or 'donation': satoshis} read back from the gentx outputs."""
    padding = bitcoin_address.padding_for_share_version(version)
    by_script = {bitcoin_address.address_to_script(address, parent, padding=padding): address for address in addresses}
    by_script[bitcoin_address.DONATION_SCRIPT] = 'donation'
    paid = {}
    for out in gentx['tx_outs']:
        if out['script'].startswith(b'\x6a'):    # the witness commitment and the ref_hash OP_RETURN
            assert out['value'] == 0
            continue
        paid[by_script[out['script']]] = out['value']
    return paid


@pytest.mark.parametrize('network, version', [(network, version) for network, version, _, _ in CHAINS])
def test_golden_shares_decode_verify_and_pay_to_the_satoshi(network, version):
    chain = _chain(network, version)
    net = load_network(network)
    tracker = Tracker()
    for record in chain['shares']:
        share = Share.from_wire(net, bytes.fromhex(record['wire']))
        assert share.VERSION == chain['version']
        assert '%064x' % share.hash == record['hash']
        assert '%064x' % share.pow_hash == record['pow_hash']
        assert share.pow_hash <= share.target <= net.MAX_TARGET
        assert share.payout_address == record['address']
        assert share.new_transaction_hashes == [int(key, 16) for key in record['new_transaction_hashes']]
        tracker.add(share)
        gentx = verify.check_share(tracker, share, now=share.timestamp).tx()
        assert _gentx_record(gentx) == record['gentx']
        merkle_root = bitcoin_data.check_merkle_link(bitcoin_data.txid(gentx), share.merkle_link)
        assert merkle_root == share.header['merkle_root']
        assert _payouts(gentx, chain['addresses'], share.VERSION, net.PARENT) == record['payouts']
        assert sum(record['payouts'].values()) == share.subsidy
    last = chain['shares'][-1]['payouts']
    assert len([address for address in last if address != 'donation']) >= 3   # a real PPLNS split


def test_the_golden_vectors_cover_both_formats_on_both_proofs_of_work():
    chains = _load()['chains']
    assert {(chain['network'], chain['version']) for chain in chains} == {
        (network, version) for network, version, _, _ in CHAINS}
    assert all(len(chain['shares']) == CHAIN_SHARES for chain in chains)


# --- regeneration -----------------------------------------------------------------------------

def _transactions(index, count):
    """Distinct plausible one-input transactions for share `index`."""
    return [{'version': 2, 'tx_ins': [{'previous_output': {'hash': 0x1000 * (index + 1) + n, 'index': n},
                                       'script': b'\x47' + bytes([0x30 + n]) * 71, 'sequence': 0xfffffffe}],
             'tx_outs': [{'value': 100_000 * (n + 1), 'script': b'\x00\x14' + bytes([index, n]) * 10}],
             'lock_time': 0} for n in range(count)]


def _mine_chain(network, version, block_bits, subsidy):
    from p2pool.testing import testchain
    net = load_network(network)
    # format 17 pays P2PKH addresses only (a pubkey_hash); format 35 any address text, here a
    # bech32 one where the parent network has bech32 (the Bitcoin regtest sharechain has not)
    kind = 'bech32' if version >= 34 and net.PARENT.HUMAN_READABLE_PART else 'p2pkh'
    addresses = testchain.make_addresses(net, 3, seed=b'golden') + testchain.make_addresses(
        net, 1, kind=kind, seed=b'golden-4')
    tracker, previous, records = Tracker(), None, []
    for index in range(CHAIN_SHARES):
        address = addresses[index % len(addresses)]
        share = testchain.mine_share(
            tracker, net, previous, address, FIRST_TIMESTAMP + net.SHARE_PERIOD * index, version, block_bits,
            nonce=index, transactions=_transactions(index, index % 3), subsidy=subsidy,
            donation=655 if index % 2 else 0,
            coinbase=b'\x03' + (2_500_000 + index).to_bytes(3, 'little') + b'/golden/')
        tracker.add(share)
        previous = share.hash
        gentx = verify.check_share(tracker, share, now=share.timestamp).tx()
        records.append({
            'wire': share.to_wire().hex(),
            'hash': '%064x' % share.hash, 'pow_hash': '%064x' % share.pow_hash, 'address': address,
            'new_transaction_hashes': ['%064x' % key for key in share.new_transaction_hashes],
            'gentx': _gentx_record(gentx), 'payouts': _payouts(gentx, addresses, version, net.PARENT)})
    return {'network': network, 'version': version, 'block_bits': '%08x' % block_bits, 'subsidy': subsidy,
            'addresses': addresses, 'shares': records}


def write_vectors():
    chains = [_mine_chain(*chain) for chain in CHAINS]
    with open(VECTORS, 'w') as f:
        json.dump({'source': 'mined by tests/test_golden_shares.py (--write) on the networks named',
                   'chains': chains}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    if sys.argv[1:] != ['--write']:
        sys.exit('usage: python tests/test_golden_shares.py --write')
    write_vectors()
