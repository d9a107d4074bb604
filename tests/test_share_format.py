"""Share wire format, layouts, derived values and constructor checks (shares.md §1-§10, vectors A18, B)."""
import copy
import os

import pytest
from hypothesis import given, settings, strategies as st

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.hashes import hash256
from p2pool.bitcoin.serialize import VarInt, VarStr
from p2pool.config import load_network
from p2pool.sharechain import share as sharemod
from p2pool.testing import testchain
from p2pool.sharechain.share import (
    GENTX_BEFORE_REFHASH, SHARE_VERSIONS, Share, ShareDecodeError, ShareMisbehaviour, ShareObsolete,
    check_hash_link, is_segwit_layout, layout_for, prefix_to_hash_link, share_from_type_and_contents)
from p2pool.sharechain.tracker import Tracker

# vectors.md B
GENTX_BEFORE_REFHASH_HEX = ('434104ffd03de44a6e11b9917f3a29f9443283d9871c9d743ef30d5eddcd37094b64d1b3d8090496b5325678'
                            '6bf5c82932ec23c3b74d9f05a6f95a8b5529352656664bac00000000000000002a6a28')
DONATION_SCRIPT_HEX = ('4104ffd03de44a6e11b9917f3a29f9443283d9871c9d743ef30d5eddcd37094b64d1b3d8090496b53256786bf5c8'
                       '2932ec23c3b74d9f05a6f95a8b5529352656664bac')


def small(net):
    return testchain.easy_network(net, CHAIN_LENGTH=20, REAL_CHAIN_LENGTH=20, TARGET_LOOKBEHIND=10)


BTC = small(load_network('bitcoin'))
TESTNET = small(load_network('bitcoin_testnet'))


@pytest.fixture(scope='module')
def btc_chain():
    return testchain.mine_chain(BTC, 6, addresses=testchain.make_addresses(BTC, 3))


def rebuild(share, mutate):
    """A share from `share`'s contents after `mutate(contents)`; re-encoded and decoded."""
    contents = copy.deepcopy(share.contents)
    mutate(contents)
    raw = layout_for(share.VERSION, share.net).contents_type.pack(contents)
    return Share(share.net, share.VERSION, raw)


# --- constants, versions, layouts ----------------------------------------------------

def test_gentx_before_refhash_vector():
    assert GENTX_BEFORE_REFHASH.hex() == GENTX_BEFORE_REFHASH_HEX
    assert bitcoin_address.DONATION_SCRIPT.hex() == DONATION_SCRIPT_HEX


def test_version_table():
    assert sharemod.SUPPORTED_VERSIONS == (17, 32, 33, 34, 35)
    assert all(sharemod.voting_version(v) == 35 for v in sharemod.SUPPORTED_VERSIONS)
    assert [SHARE_VERSIONS[v].SUCCESSOR for v in (17, 32, 33, 34, 35)] == [35, 35, 35, 35, None]
    assert [SHARE_VERSIONS[v].MINIMUM_PROTOCOL_VERSION for v in (17, 32, 33, 34, 35)] == [1400, 1400, 3300, 3300, 3500]


def field_names(struct):
    return [name for name, _ in struct.fields]


@pytest.mark.parametrize('net, version, segwit', [
    (BTC, 17, False), (BTC, 32, False), (BTC, 33, True), (BTC, 34, True), (BTC, 35, True),
    (TESTNET, 17, True), (TESTNET, 35, True)])
def test_segwit_layout_per_network(net, version, segwit):
    assert is_segwit_layout(version, net) is segwit
    layout = layout_for(version, net)
    info = field_names(layout.share_info_type)
    assert ('segwit_data' in info) is segwit
    assert ('new_transaction_hashes' in info) is (version < 34)
    assert ('address' in field_names(layout.share_data_type)) is (version >= 34)
    assert info[-6:] == ['far_share_hash', 'max_bits', 'bits', 'timestamp', 'absheight', 'abswork']
    assert field_names(layout.contents_type) == ['min_header', 'share_info', 'ref_merkle_link', 'last_txout_nonce',
                                                 'hash_link', 'merkle_link']


def test_unsupported_version_layout():
    with pytest.raises(ShareDecodeError):
        layout_for(18, BTC)


# --- round trip and derived values -----------------------------------------------------

def test_round_trip_and_derived_values(btc_chain):
    for share in btc_chain:
        wire = share.to_wire()
        again = Share.from_wire(BTC, wire, time_seen=5.0, peer_addr=('1.2.3.4', 9333))
        assert again.to_wire() == wire
        assert again.contents == share.contents
        assert (again.time_seen, again.peer_addr, again.naughty) == (5.0, ('1.2.3.4', 9333), 0)
        assert wire[0] == 35 and VarStr.unpack(wire[1:]) == share.contents_bytes
        header_bytes = bitcoin_data.header_type.pack(again.header)
        assert header_bytes == again.header_bytes
        assert again.hash == hash256(header_bytes) == again.pow_hash
        assert again.target == bitcoin_data.bits_to_target(again.share_info['bits'])
        assert again.work == bitcoin_data.target_to_average_attempts(again.target)
        assert again.pow_hash <= again.target <= BTC.MAX_TARGET
        assert again.segwit_data is not None
        assert again.merkle_link == {'branch': [], 'index': 0}
        assert again.payout_script == bitcoin_address.address_to_script(again.payout_address, BTC.PARENT)
    assert btc_chain[0].previous_hash is None
    assert [s.previous_hash for s in btc_chain[1:]] == [s.hash for s in btc_chain[:-1]]
    assert [s.absheight for s in btc_chain] == list(range(1, 7))


def test_gentx_hash_matches_the_real_gentx(btc_chain):
    tracker = Tracker()
    from p2pool.sharechain import verify
    for share in btc_chain:
        tracker.add(share)
        gentx = verify.check_share(tracker, share, now=share.timestamp).tx()
        assert bitcoin_data.txid(gentx) == share.gentx_hash
        stripped = bitcoin_data.tx_id_type.pack(gentx)
        assert stripped[-44:-12] == share.ref_hash.to_bytes(32, 'little')
        assert stripped[:-44].endswith(GENTX_BEFORE_REFHASH)
        assert share.hash_link['length'] == len(stripped) - 44
        root = bitcoin_data.check_merkle_link(share.gentx_hash, share.segwit_data['txid_merkle_link'])
        assert root == share.header['merkle_root']


def test_v17_on_bitcoin_has_no_segwit_and_pays_pubkey_hash():
    shares = testchain.mine_chain(BTC, 3, version=17)
    for share in shares:
        assert share.segwit_data is None and 'segwit_data' not in share.share_info
        assert 'pubkey_hash' in share.share_data
        assert share.payout_address == bitcoin_address.pubkey_hash_to_address(share.share_data['pubkey_hash'], 0)
        pubkey_hash = share.share_data['pubkey_hash'].to_bytes(20, 'little')
        assert share.payout_script == b'\x76\xa9\x14' + pubkey_hash + b'\x88\xac'
        assert Share.from_wire(BTC, share.to_wire()).hash == share.hash


def test_v17_on_testnet_has_segwit_data():
    shares = testchain.mine_chain(TESTNET, 2, version=17)
    assert all(share.segwit_data is not None for share in shares)


def test_v34_and_v35_padding_rules():
    program = b'\x00' + bytes(range(0x10, 0x23))
    address = bitcoin_address.bech32_encode('bc', 0, program)
    v35 = testchain.mine_chain(BTC, 1, addresses=[address], version=35)[0]
    v34 = testchain.mine_chain(BTC, 1, addresses=[address], version=34)[0]
    assert v35.payout_script == b'\x00\x14' + program
    assert v34.payout_script == b'\x00\x13' + program[1:]


# --- wrapper errors -----------------------------------------------------------------------

def test_wrapper_errors(btc_chain):
    share = btc_chain[1]
    wire = share.to_wire()
    with pytest.raises(ShareObsolete):
        Share.from_wire(BTC, VarInt.pack(16) + wire[1:])
    assert issubclass(ShareObsolete, ShareMisbehaviour) and issubclass(ShareMisbehaviour, ShareDecodeError)
    with pytest.raises(ShareDecodeError):
        Share.from_wire(BTC, VarInt.pack(18) + wire[1:])
    with pytest.raises(ShareDecodeError, match='trailing'):
        Share.from_wire(BTC, wire + b'\x00')
    for cut in (0, 1, 2, len(wire) // 2, len(wire) - 1):
        with pytest.raises(ShareDecodeError):
            Share.from_wire(BTC, wire[:cut])
    with pytest.raises(ShareDecodeError, match='trailing'):
        share_from_type_and_contents(BTC, 35, share.contents_bytes + b'\x00')


# --- constructor checks (shares.md §10) ---------------------------------------------------

def set_info(**fields):
    def mutate(contents):
        contents['share_info'].update(fields)
    return mutate


def set_data(**fields):
    def mutate(contents):
        contents['share_info']['share_data'].update(fields)
    return mutate


#: a share target no test share's header meets (about 1 in 2**50)
HARD_BITS = 0x1b0404cb


def fails_only_at_pow(share, mutate):
    """Assert that `share` changed by `mutate` passes every decode check before the last
    one, the PoW: the target is made hard, so the PoW check fails whatever the new hash is."""
    with pytest.raises(ShareMisbehaviour, match='PoW'):
        rebuild(share, lambda contents: (mutate(contents), set_info(bits=HARD_BITS)(contents)))


@pytest.mark.parametrize('coinbase, ok', [(b'x', False), (b'xy', True), (b'x' * 100, True), (b'x' * 101, False)])
def test_coinbase_length(btc_chain, coinbase, ok):
    if ok:
        fails_only_at_pow(btc_chain[1], set_data(coinbase=coinbase))
    else:
        with pytest.raises(ShareDecodeError, match='coinbase') as info:
            rebuild(btc_chain[1], set_data(coinbase=coinbase))
        assert not isinstance(info.value, ShareMisbehaviour)


@pytest.mark.parametrize('address', [b'\xff\xfe', b'not an address', b'', b'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx',
                                     bitcoin_address.bech32_encode('bc', 0, b'\x05' + bytes(31)).encode()])
def test_unusable_address_is_a_decode_error(btc_chain, address):
    with pytest.raises(ShareDecodeError, match='address') as info:
        rebuild(btc_chain[1], set_data(address=address))
    assert not isinstance(info.value, ShareMisbehaviour)


def test_hardfork_check_only_on_bitcoin(btc_chain):
    with pytest.raises(ShareDecodeError, match='hardfork'):
        rebuild(btc_chain[1], lambda c: (set_info(absheight=3927801)(c), set_data(desired_version=16)(c)))
    for mutate in (lambda c: (set_info(absheight=3927800)(c), set_data(desired_version=16)(c)),
                   set_info(absheight=3927801)):
        fails_only_at_pow(btc_chain[1], mutate)


@pytest.fixture(scope='module')
def v17_share():
    return testchain.mine_chain(BTC, 2, version=17)[1]


@pytest.mark.parametrize('hashes, refs, ok', [
    ([], [], True),
    ([7, 8], [0, 0, 0, 1], True),
    ([7, 8], [0, 1, 0, 0, 0, 1, 109, 5], True),
    ([7, 8], [0, 0], False),                 # tx 1 of this share never referenced
    ([7], [0, 0, 0, 1], False),              # reference past the own list
    ([], [110, 0], False),                   # too far back
])
def test_transaction_reference_checks(v17_share, hashes, refs, ok):
    mutate = set_info(new_transaction_hashes=hashes, transaction_hash_refs=refs)
    if ok:
        fails_only_at_pow(v17_share, mutate)
    else:
        with pytest.raises(ShareDecodeError, match='reference') as info:
            rebuild(v17_share, mutate)
        assert not isinstance(info.value, ShareMisbehaviour)


def test_target_above_max_target_is_misbehaviour(btc_chain):
    with pytest.raises(ShareMisbehaviour, match='target'):
        rebuild(btc_chain[1], set_info(bits=0x2100ffff))


def test_bad_pow_is_misbehaviour(btc_chain):
    share = btc_chain[1]
    for nonce in range(100):
        def mutate(contents, nonce=nonce):
            contents['min_header']['nonce'] = nonce
        try:
            rebuild(share, mutate)
        except ShareMisbehaviour as e:
            assert 'PoW' in str(e)
            return
    pytest.fail('no nonce failed the PoW at a 1/2 target')


def test_segwit_share_without_segwit_data(btc_chain):
    with pytest.raises(ShareDecodeError, match='segwit'):
        rebuild(btc_chain[1], set_info(segwit_data=None))


def test_header_version_must_fit_32_bits(btc_chain):
    def mutate(contents):
        contents['min_header']['version'] = 2**32
    with pytest.raises(ShareDecodeError, match='32 bits'):
        rebuild(btc_chain[1], mutate)


def test_misbehaviour_classes_are_checked_last(btc_chain):
    # A short coinbase together with a bad target is still only a decode error (check 1 before 7).
    with pytest.raises(ShareDecodeError) as info:
        rebuild(btc_chain[1], lambda c: (set_info(bits=0x2100ffff)(c), set_data(coinbase=b'x')(c)))
    assert not isinstance(info.value, ShareMisbehaviour)


# --- hash_link (vectors.md A18) -------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048), st.binary(max_size=200), st.binary(max_size=300))
def test_hash_link_properties(d, d2, d3):
    assert check_hash_link(prefix_to_hash_link(d), b'') == hash256(d)
    assert check_hash_link(prefix_to_hash_link(d), d2) == hash256(d + d2)
    link = prefix_to_hash_link(d + d2, const_ending=d2)
    assert check_hash_link(link, d3, const_ending=d2) == hash256(d + d2 + d3)
    if len(d2) >= 63:
        assert link['extra_data'] == b''


def test_hash_link_of_a_gentx_prefix_keeps_no_extra_data():
    for length in range(0, 130):
        prefix = os.urandom(length) + GENTX_BEFORE_REFHASH
        link = prefix_to_hash_link(prefix, GENTX_BEFORE_REFHASH)
        assert link['extra_data'] == b'' and link['length'] == len(prefix)
        tail = os.urandom(44)
        assert check_hash_link(link, tail, GENTX_BEFORE_REFHASH) == hash256(prefix + tail)


def test_hash_link_errors():
    with pytest.raises(sharemod.HashLinkError):
        prefix_to_hash_link(b'abc', const_ending=b'xyz')
    with pytest.raises(sharemod.HashLinkError):
        check_hash_link({'state': bytes(32), 'extra_data': b'', 'length': 70}, b'', const_ending=b'abc')
    with pytest.raises(sharemod.HashLinkError):
        check_hash_link({'state': bytes(32), 'extra_data': b'', 'length': 2**62}, b'')
