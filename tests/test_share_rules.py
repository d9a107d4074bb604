"""Share consensus against shares.md: edge cases the other share tests do not pin down."""
import pytest

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin import sha256_midstate
from p2pool.bitcoin.data import bits_to_target, target_to_average_attempts, target_to_bits
from p2pool.config import load_network
from p2pool.sharechain import generate, share as sharemod, verify
from p2pool.testing import testchain
from p2pool.sharechain.share import (
    GENTX_BEFORE_REFHASH, HashLinkError, Share, ShareDecodeError, check_hash_link, layout_for)
from p2pool.sharechain.tracker import Tracker

BTC = testchain.easy_network(load_network('bitcoin'), CHAIN_LENGTH=20, REAL_CHAIN_LENGTH=20, TARGET_LOOKBEHIND=10)
BLOCK_BITS = target_to_bits(BTC.MAX_TARGET // 1000)


def share_data(previous_hash, address, **extra):
    data = {'previous_share_hash': previous_hash, 'coinbase': b'\x02ok', 'nonce': 1, 'address': address,
            'subsidy': 625000000, 'donation': 0, 'stale_info': None, 'desired_version': 35}
    data.update(extra)
    return data


def plan_on(tracker, previous_hash, address, timestamp, version=35, **extra):
    return generate.plan_share(tracker, BTC, generate.ShareTerms(
        share_data(previous_hash, address, **extra), bits_to_target(BLOCK_BITS), timestamp, BTC.MAX_TARGET,
        known_txs={}, version=version))


# --- §8 hash_link ---------------------------------------------------------------------------

@pytest.mark.parametrize('length', [2**61 - 1, 2**61 - 44, 2**61 - 43])
def test_hash_link_length_whose_bit_count_overflows_is_rejected(monkeypatch, length):
    """8·(L + 44) must fit the 64-bit SHA-256 length field; the pure-Python engine crashed."""
    monkeypatch.setattr(sharemod, 'sha256_from_state', sha256_midstate.py_digest_from_state)
    link = {'state': sha256_midstate.INITIAL_STATE, 'extra_data': b'', 'length': length}
    with pytest.raises(HashLinkError):
        check_hash_link(link, b'\x00' * 44, GENTX_BEFORE_REFHASH)


def test_share_with_overflowing_hash_link_length_is_a_decode_error(monkeypatch):
    monkeypatch.setattr(sharemod, 'sha256_from_state', sha256_midstate.py_digest_from_state)
    share = testchain.mine_chain(BTC, 1)[0]
    layout = layout_for(35, BTC)
    contents, _, _ = sharemod._decode_contents(layout, share.contents_bytes)
    contents['hash_link'] = dict(contents['hash_link'], length=2**61 - 1)
    with pytest.raises(ShareDecodeError):
        Share(BTC, 35, layout.contents_type.pack(contents))


def test_largest_acceptable_hash_link_length_still_hashes():
    link = {'state': sha256_midstate.INITIAL_STATE, 'extra_data': b'', 'length': 2**61 - 45}
    for engine in (sha256_midstate.py_digest_from_state, sharemod.sha256_from_state):
        old = sharemod.sha256_from_state
        sharemod.sha256_from_state = engine
        try:
            assert 0 <= check_hash_link(link, b'\x00' * 44, GENTX_BEFORE_REFHASH) < 2**256
        finally:
            sharemod.sha256_from_state = old


def test_every_prefix_remainder_including_zero_verifies():
    tracker = Tracker()
    shares = testchain.mine_chain(BTC, 2, tracker=tracker)
    address = testchain.make_addresses(BTC, 1)[0]
    remainders = set()
    for coinbase_length in range(2, 101):
        plan = plan_on(tracker, shares[-1].hash, address, shares[-1].timestamp + 30,
                       coinbase=b'\x01' * coinbase_length)
        share = testchain.solve_plan(plan, BLOCK_BITS, plan.share_info['timestamp'])
        remainders.add(share.hash_link['length'] % 64)
        assert share.gentx_hash == plan.stripped_gentx(share.ref_hash, 0)[1]
    assert 0 in remainders


# --- §6/§11.6 output order -----------------------------------------------------------------

def test_equal_amounts_are_ordered_by_address_text_not_by_script():
    """P2PKH '1…' < P2SH '3…' < bech32 'bc1…' as text, but 0014… < 76a9… < a914… as scripts."""
    tracker = Tracker()
    p2pkh = testchain.make_addresses(BTC, 1, 'p2pkh', seed=b'a')[0]
    p2sh = testchain.make_addresses(BTC, 1, 'p2sh', seed=b'b')[0]
    bech32 = testchain.make_addresses(BTC, 1, 'bech32', seed=b'c')[0]
    finder = testchain.make_addresses(BTC, 1, 'p2pkh', seed=b'finder')[0]
    shares = testchain.mine_chain(BTC, 4, addresses=[bech32, p2sh, p2pkh, finder], tracker=tracker)
    _, gentx, _, _ = generate.generate_transaction(
        tracker, share_data(shares[-1].hash, finder), bits_to_target(BLOCK_BITS), shares[-1].timestamp + 30,
        BTC.MAX_TARGET, {'branch': [], 'index': 0}, [], BTC, known_txs={}, version=35)
    finder_script = bitcoin_address.address_to_script(finder, BTC.PARENT)
    # no commitment/donation/OP_RETURN
    outs = [out for out in gentx['tx_outs'][1:-2] if out['script'] != finder_script]
    expected = [bitcoin_address.address_to_script(a, BTC.PARENT) for a in sorted([p2pkh, p2sh, bech32])]
    assert [out['script'] for out in outs] == expected
    assert expected != sorted(expected) and len({out['value'] for out in outs}) == 1


def test_donation_output_is_emitted_with_zero_value():
    tracker = Tracker()
    shares = testchain.mine_chain(BTC, 3, tracker=tracker)
    _, gentx, _, _ = generate.generate_transaction(
        tracker, share_data(shares[-1].hash, testchain.make_addresses(BTC, 1)[0], subsidy=200 * 10**6),
        bits_to_target(BLOCK_BITS), shares[-1].timestamp + 30, BTC.MAX_TARGET, {'branch': [], 'index': 0},
        [], BTC, known_txs={}, version=35)
    donation, op_return = gentx['tx_outs'][-2:]
    assert donation == {'value': 0, 'script': bitcoin_address.DONATION_SCRIPT}
    assert op_return['script'][:2] == b'\x6a\x28' and op_return['value'] == 0


# --- §11.8 absheight / abswork wraparound ------------------------------------------------------

def test_absheight_and_abswork_wrap_around():
    tracker = Tracker()
    address = testchain.make_addresses(BTC, 1)[0]
    first_plan = plan_on(tracker, None, address, 10**9)
    first_plan.share_info['absheight'] = 2**32 - 1
    first_plan.share_info['abswork'] = 2**128 - 1
    first = testchain.solve_plan(first_plan, BLOCK_BITS, 10**9)
    tracker.add(first)
    plan = plan_on(tracker, first.hash, address, 10**9 + 30)
    assert plan.share_info['absheight'] == 0
    work = target_to_average_attempts(bits_to_target(plan.share_info['bits']))
    assert plan.share_info['abswork'] == work - 1
    child = testchain.solve_plan(plan, BLOCK_BITS, 10**9 + 30)
    tracker.add(child)
    verify.check_share(tracker, child, now=child.timestamp)


# --- §12 step 1: the share_info timestamp, not the header's --------------------------------------

def test_future_check_reads_share_info_timestamp_not_header():
    tracker = Tracker()
    shares = testchain.mine_chain(BTC, 3, tracker=tracker)
    prev = shares[-1]
    address = testchain.make_addresses(BTC, 1)[0]
    now = prev.timestamp + 30
    plan = plan_on(tracker, prev.hash, address, now)
    late_header = testchain.solve_plan(plan, BLOCK_BITS, now + 10**6)       # header far ahead
    assert late_header.header['timestamp'] == now + 10**6 and late_header.timestamp == now
    verify.check_share(tracker, late_header, now=now)
    future = plan_on(tracker, prev.hash, address, now + 601)
    early_header = testchain.solve_plan(future, BLOCK_BITS, now)
    with pytest.raises(sharemod.ShareInvalid, match='future'):
        verify.check_share(tracker, early_header, now=now)


# --- §1 / §4 [jt] v17 on bitcoin: no segwit_data --------------------------------------------------

def test_jt_v17_bitcoin_share_info_bytes_have_no_segwit_data():
    tracker = Tracker()
    v17 = testchain.mine_chain(BTC, 2, version=17, tracker=tracker)[-1]
    info = v17.share_info
    assert 'segwit_data' not in info
    fields = [name for name, _ in layout_for(17, BTC).share_info_type.fields]
    assert fields == ['share_data', 'new_transaction_hashes', 'transaction_hash_refs', 'far_share_hash',
                      'max_bits', 'bits', 'timestamp', 'absheight', 'abswork']
    testnet = load_network('bitcoin_testnet')
    assert [n for n, _ in layout_for(17, testnet).share_info_type.fields][1] == 'segwit_data'
    # header merkle root uses merkle_link (no segwit txid link) for this layout
    assert v17.header['merkle_root'] == bitcoin_data.check_merkle_link(v17.gentx_hash, dict(v17.merkle_link))


# --- §1 segwit layout table ([jt] columns) and §4 field order ---------------------------------------

SEGWIT_TABLE = {   # network -> versions with segwit_data
    'bitcoin': {33, 34, 35},
    'bitcoin_testnet': {17, 32, 33, 34, 35},
    'bitcoin_regtest': {17, 32, 33, 34, 35},
    'litecoin': {17, 32, 33, 34, 35},
    'litecoin_testnet': {17, 32, 33, 34, 35},
    'bitcoincash': set(),
    'bitcoinsv': set(),
}


@pytest.mark.parametrize('name', sorted(SEGWIT_TABLE))
def test_segwit_layout_table_and_field_order(name):
    net = load_network(name)
    for version in (17, 32, 33, 34, 35):
        layout = layout_for(version, net)
        segwit = version in SEGWIT_TABLE[name]
        payee = ['address'] if version >= 34 else ['pubkey_hash']
        assert [n for n, _ in layout.share_data_type.fields] == (
            ['previous_share_hash', 'coinbase', 'nonce'] + payee
            + ['subsidy', 'donation', 'stale_info', 'desired_version'])
        assert [n for n, _ in layout.share_info_type.fields] == (
            ['share_data'] + (['segwit_data'] if segwit else [])
            + (['new_transaction_hashes', 'transaction_hash_refs'] if version < 34 else [])
            + ['far_share_hash', 'max_bits', 'bits', 'timestamp', 'absheight', 'abswork'])
