"""Addresses of the parent chain (serialization.md §6; vectors A4, A13-A17, B)."""
import json
import pathlib
from types import SimpleNamespace

import pytest
from hypothesis import given, strategies as st

from p2pool.bitcoin import address as ad
from p2pool.bitcoin.hashes import hash160_bytes

VECTOR_DIR = pathlib.Path(__file__).parent / 'vectors'


def load(name):
    return json.loads((VECTOR_DIR / name).read_text())


A13 = load('address_a13_roundtrips.json')
A15 = load('address_a15_bech32.json')
A16 = load('address_a16_cashaddr.json')
A17 = load('address_a17_convertbits.json')
BASE = load('address_base58_donation.json')


def parent(version, p2sh, hrp, symbol):
    return SimpleNamespace(ADDRESS_VERSION=version, ADDRESS_P2SH_VERSION=p2sh, HUMAN_READABLE_PART=hrp, SYMBOL=symbol)


NETS = {
    'bitcoin': parent(0, 5, 'bc', 'BTC'),
    'bitcoin_testnet': parent(111, 196, 'tb', 'tBTC'),
    'litecoin': parent(48, 50, 'ltc', 'LTC'),
    'litecoin_testnet': parent(111, 58, 'tltc', 'tLTC'),
    'bitcoincash': parent(0, 5, 'bitcoincash', 'BCH'),
    'bitcoincash_testnet': parent(111, 196, 'bchtest', 'tBCH'),
    'bitcoinsv': parent(0, 5, 'bitcoincash', 'BSV'),
}
BTC, BCH = NETS['bitcoin'], NETS['bitcoincash']
# [jt] btcregtest: no P2SH version, no HRP (only P2PKH works there).
REGTEST = SimpleNamespace(ADDRESS_VERSION=111, SYMBOL='rBTC')


# --- Base58 (A4) and the donation constants (B, §6.6) -----------------------

def test_a4_base58_address():
    case = BASE['base58_pubkey_hash']
    assert ad.base58_decode(case['address']).hex() == case['decoded_bytes']
    assert ad.base58check_decode(case['address']) == (case['version'], bytes.fromhex(case['hash160']))
    assert ad.address_to_pubkey_hash(case['address'], BTC) == int(case['pubkey_hash'], 16)
    assert ad.pubkey_hash_to_address(int(case['pubkey_hash'], 16), 0) == case['address']
    assert ad.base58_encode(bytes.fromhex(case['decoded_bytes'])) == case['address']


def test_donation_constants():
    donation = BASE['donation']
    assert ad.DONATION_SCRIPT.hex() == donation['script']
    assert hash160_bytes(ad.DONATION_SCRIPT[1:-1]).hex() == donation['hash160']
    assert ad.DONATION_PUBKEY_HASH == int(donation['pubkey_hash'], 16)
    assert ad.donation_address(BTC) == donation['btc_address']
    assert ad.script_to_address(ad.DONATION_SCRIPT, BTC) == donation['btc_address']
    litecoin_donation = ad.donation_address(NETS['litecoin'])
    assert litecoin_donation.startswith('L')
    assert ad.address_to_pubkey_hash(litecoin_donation, NETS['litecoin']) == ad.DONATION_PUBKEY_HASH


def test_base58_leading_zeros_and_empty():
    assert ad.base58_encode(b'') == '' and ad.base58_decode('') == b''
    assert ad.base58_encode(b'\x00\x00\x01') == '112'
    assert ad.base58_decode('112') == b'\x00\x00\x01'


@given(st.integers(min_value=0, max_value=255), st.binary(min_size=20, max_size=20))
def test_base58check_round_trip(version, hash20):
    text = ad.base58check_encode(version, hash20)
    assert ad.base58check_decode(text) == (version, hash20)


def test_base58check_errors():
    good = BASE['base58_pubkey_hash']['address']
    with pytest.raises(ad.AddressError, match='bad checksum'):
        ad.base58check_decode(good[:-1] + ('z' if good[-1] != 'z' else 'y'))
    with pytest.raises(ad.AddressError, match='invalid Base58 character'):
        ad.base58check_decode(good[:-1] + '0')
    with pytest.raises(ad.AddressError, match='expected 25'):
        ad.base58check_decode(ad.base58_encode(bytes(23) + b'\x01'))
    with pytest.raises(ad.AddressError):
        ad.base58check_decode('1' * 60)


def test_orig_accepts_only_p2pkh_of_this_net():
    p2sh = '3P14159f73E4gFr7JterCCQh9QjiTjiZrG'
    with pytest.raises(ad.WrongNetworkError, match='not for this net'):
        ad.address_to_pubkey_hash(p2sh, BTC)
    with pytest.raises(ad.WrongNetworkError, match='not for this net'):
        ad.address_to_pubkey_hash('mtXWDB6k5yC5v7TcwKZHB89SUp85yCKshy', BTC)
    with pytest.raises(ad.AddressError):
        ad.address_to_pubkey_hash('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', BTC)


# --- A13: address <-> script on each network --------------------------------

@pytest.mark.parametrize('case', A13['address_to_script_padding_on'], ids=lambda c: c['address'][:20])
def test_a13_address_to_script(case):
    net = NETS[case['net']]
    assert ad.address_to_script(case['address'], net).hex() == case['script']
    decoded = ad.decode_address(case['address'], net)
    assert (decoded.version if decoded.family == 'base58' else -1) == case['ver']
    assert (decoded.version if decoded.family != 'base58' else -1) == case['wv']


ROUND_TRIPS = [(net, a) for net, addresses in A13['round_trip'].items() for a in addresses]


@pytest.mark.parametrize('net_name, address', ROUND_TRIPS, ids=lambda v: v[:20])
def test_a13_round_trip(net_name, address):
    net = NETS[net_name]
    decoded = ad.decode_address(address, net)
    script = ad.address_to_script(address, net)
    back = ad.script_to_address(script, net, prefer_cashaddr=decoded.family == 'cashaddr')
    expected = address if decoded.family != 'cashaddr' or ':' in address else net.HUMAN_READABLE_PART + ':' + address
    assert back == expected


def test_a13_padding_quirk():
    case = A13['padding_quirk']
    net = NETS[case['net']]
    assert ad.address_to_script(case['address'], net, padding=False).hex() == case['script_padding_off']
    assert ad.address_to_script(case['address'], net, padding=True).hex() == case['script_padding_on']
    # The v34 script pays a 19-byte "hash": it does not convert back to the address.
    off = bytes.fromhex(case['script_padding_off'])
    assert ad.script_to_address(off, net, prefer_cashaddr=True) != case['address']
    assert ad.padding_for_share_version(34) is False and ad.padding_for_share_version(35) is True


def test_padding_rules_for_long_programs():
    p2wsh = lambda first: bytes([first]) + bytes(range(0x10, 0x2f))  # noqa: E731
    # A 32-byte program starting with 00 loses it even with padding; 01..0f fails.
    assert ad.bech32_payout_script(p2wsh(0), True) == b'\x00\x1f' + p2wsh(0)[1:]
    for padding in (True, False):
        with pytest.raises(ad.AddressError, match='odd number'):
            ad.bech32_payout_script(p2wsh(0x0f), padding)
        assert ad.bech32_payout_script(p2wsh(0x10), padding) == b'\x00\x20' + p2wsh(0x10)
    # 20-byte programs are exact with padding, lose leading zero bytes without.
    program = b'\x00\x00' + bytes(range(0x10, 0x22))
    assert ad.bech32_payout_script(program, True) == b'\x00\x14' + program
    assert ad.bech32_payout_script(program, False) == b'\x00\x12' + program[2:]
    with pytest.raises(ad.AddressError):
        ad.bech32_payout_script(b'\x00\x05' + bytes(18), False)


@given(st.binary(min_size=20, max_size=20))
def test_padding_modes_agree_without_leading_zero_nibble(program):
    if program[0] >= 0x10:
        assert ad.bech32_payout_script(program, True) == ad.bech32_payout_script(program, False)
        assert ad.cashaddr_payout_script(0, program, True) == ad.cashaddr_payout_script(0, program, False)


# --- A14: script templates ----------------------------------------------------

@pytest.mark.parametrize('case', BASE['script_templates_padding_off'], ids=lambda c: c['script'][:14])
def test_a14_templates(case):
    if case['kind'] == 'bech32':
        script = ad.bech32_payout_script(bytes.fromhex(case['program']), padding=False)
    else:
        script = ad.cashaddr_payout_script(case['type'], bytes.fromhex(case['hash']), padding=False)
    assert script.hex() == case['script']


def test_a14_padding_on_widens_short_programs():
    assert ad.bech32_payout_script(bytes.fromhex('deadbeef'), True).hex() == '0014' + '00' * 16 + 'deadbeef'


@pytest.mark.parametrize('kind', BASE['cashaddr_types_without_script'])
def test_a14_other_cashaddr_types_fail(kind):
    with pytest.raises(ad.AddressError, match='cannot be turned into a script'):
        ad.cashaddr_payout_script(kind, bytes(20), True)
    address = ad.cashaddr_encode('bitcoincash', kind, bytes(range(20)))
    assert ad.address_kind(address, BCH) == 'cashaddr-type-%d' % kind
    with pytest.raises(ad.AddressError):
        ad.address_to_script(address, BCH)


@given(st.binary(min_size=20, max_size=20), st.sampled_from(sorted(NETS)))
def test_a14_base58_templates(hash20, net_name):
    net = NETS[net_name]
    p2pkh = ad.base58check_encode(net.ADDRESS_VERSION, hash20)
    p2sh = ad.base58check_encode(net.ADDRESS_P2SH_VERSION, hash20)
    for padding in (True, False):
        assert ad.address_to_script(p2pkh, net, padding) == b'\x76\xa9\x14' + hash20 + b'\x88\xac'
        assert ad.address_to_script(p2sh, net, padding) == b'\xa9\x14' + hash20 + b'\x87'
    assert ad.script_to_address(ad.address_to_script(p2pkh, net), net) == p2pkh
    assert ad.script_to_address(ad.address_to_script(p2sh, net), net) == p2sh
    assert ad.address_kind(p2pkh, net) == 'p2pkh' and ad.address_kind(p2sh, net) == 'p2sh'


# --- A15: bech32 --------------------------------------------------------------

@pytest.mark.parametrize('case', A15['polymod'])
def test_a15_polymod(case):
    assert ad.bech32_polymod(case['values']) == case['result']


def test_a15_hrp_expand_and_checksums():
    for hrp, expected in A15['hrp_expand'].items():
        assert ad.bech32_hrp_expand(hrp) == expected
    for case in A15['checksum_from_polymod']:
        assert ad.bech32_checksum_from_polymod(case['polymod']) == case['checksum']
    # The polymod table: rows 1 and 3 are hrp_expand(hrp) + data + six zeros, and
    # their checksums (the table above, looked up by P) complete rows 0 and 2.
    checksum_of = {c['polymod']: c['checksum'] for c in A15['checksum_from_polymod']}
    for hrp, row in (('tltc', A15['polymod'][1]), ('bc', A15['polymod'][3])):
        values = row['values']
        prefix_len = len(ad.bech32_hrp_expand(hrp))
        assert values[:prefix_len] == ad.bech32_hrp_expand(hrp) and values[-6:] == [0] * 6
        assert ad.bech32_create_checksum(hrp, values[prefix_len:-6]) == checksum_of[row['result']]
    completed = A15['polymod'][3]['values'][:-6] + checksum_of[A15['polymod'][3]['result']]
    assert completed == A15['polymod'][2]['values'] and ad.bech32_polymod(completed) == 1


def standard_witness_script(version, program):
    return bytes([0x50 + version if version else 0, len(program)]) + program


@pytest.mark.parametrize('case', A15['valid'], ids=lambda c: c['address'][:16])
def test_a15_valid(case):
    hrp, version, program = ad.bech32_parse(case['address'])
    assert standard_witness_script(version, program).hex() == case['standard_script']
    assert ad.bech32_encode(hrp, version, program) == case['address'].lower()
    net = NETS['bitcoin' if hrp == 'bc' else 'bitcoin_testnet']
    # P2Pool's payout script always uses OP_0 (quirk), whatever the witness version.
    assert ad.address_to_script(case['address'], net) == ad.bech32_payout_script(program, True)
    assert ad.address_to_script(case['address'], net)[0] == 0
    assert ad.address_kind(case['address'], net) == (
        'witness-v%d' % version if version else {20: 'p2wpkh', 32: 'p2wsh'}[len(program)])


@pytest.mark.parametrize('address', A15['invalid'])
def test_a15_invalid(address):
    for hrp in ('bc', 'tb'):
        with pytest.raises(ad.AddressError):
            ad.bech32_decode(hrp, address)
    for net in (NETS['bitcoin'], NETS['bitcoin_testnet']):
        with pytest.raises(ad.AddressError):
            ad.address_to_script(address, net)


@given(st.integers(min_value=0, max_value=16), st.binary(min_size=2, max_size=40),
       st.sampled_from(['bc', 'tb', 'ltc', 'tltc']))
def test_bech32_round_trip(version, program, hrp):
    if version == 0:
        program = program[:20] if len(program) < 32 else program[:32]
        if len(program) != 20:
            program = program.ljust(32, b'\x00')
    address = ad.bech32_encode(hrp, version, program)
    assert ad.bech32_decode(hrp, address) == (version, program)
    assert ad.bech32_decode(hrp, address.upper()) == (version, program)


def test_bech32_network_errors():
    with pytest.raises(ad.WrongNetworkError, match='not for this net'):
        ad.address_to_script('tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx', BTC)
    with pytest.raises(ad.AddressError, match='bad checksum'):
        ad.address_to_script('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5', BTC)
    with pytest.raises(ad.AddressError):   # cash networks do not accept bech32
        ad.address_to_script('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', BCH)
    with pytest.raises(ad.AddressError):   # regtest has no HRP
        ad.address_to_script('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', REGTEST)


def test_regtest_accepts_only_p2pkh():
    p2pkh = ad.base58check_encode(111, bytes(20))
    assert ad.address_to_script(p2pkh, REGTEST) == b'\x76\xa9\x14' + bytes(20) + b'\x88\xac'
    with pytest.raises(ad.WrongNetworkError):
        ad.address_to_script(ad.base58check_encode(196, bytes(20)), REGTEST)
    assert ad.script_to_address(b'\xa9\x14' + bytes(20) + b'\x87', REGTEST) is None
    assert ad.script_to_address(b'\x00\x14' + bytes(20), REGTEST) is None


# --- A16: cashaddr ------------------------------------------------------------

@pytest.mark.parametrize('case', A16['polymod'])
def test_a16_polymod(case):
    assert ad.cashaddr_polymod(case['values']) == case['result']


def test_a16_expand_prefix():
    for prefix, expected in A16['expand_prefix'].items():
        assert ad.cashaddr_expand_prefix(prefix) == expected


@pytest.mark.parametrize('case', A16['legacy_equivalents'], ids=lambda c: c['legacy'])
def test_a16_legacy_equivalents(case):
    version, hash20 = ad.base58check_decode(case['legacy'])
    prefix, kind, hash_bytes = ad.cashaddr_decode(case['cashaddr'])
    assert (prefix, kind, hash_bytes) == ('bitcoincash', {0: 0, 5: 1}[version], hash20)
    assert ad.cashaddr_encode('bitcoincash', kind, hash20) == case['cashaddr']
    assert ad.address_to_script(case['legacy'], BCH) == ad.address_to_script(case['cashaddr'], BCH)
    script = ad.address_to_script(case['legacy'], BCH)
    assert ad.script_to_address(script, BCH) == case['legacy']
    assert ad.script_to_address(script, BCH, prefer_cashaddr=True) == case['cashaddr']


@pytest.mark.parametrize('case', A16['valid'], ids=lambda c: c['address'][:24])
def test_a16_valid(case):
    prefix, kind, hash_bytes = ad.cashaddr_decode(case['address'])
    assert hash_bytes.hex() == case['hash']
    assert ad.cashaddr_encode(prefix, kind, hash_bytes) == case['address']
    assert ad.cashaddr_decode(case['address'].upper()) == (prefix, kind, hash_bytes)
    payload = case['address'].split(':')[1]
    assert ad.cashaddr_decode(payload, default_prefix=prefix) == (prefix, kind, hash_bytes)


def test_a16_valid_on_networks():
    for case in A16['valid']:
        prefix, kind, hash_bytes = ad.cashaddr_decode(case['address'])
        if prefix not in ('bitcoincash', 'bchtest') or kind > 1:
            continue
        net = NETS['bitcoincash' if prefix == 'bitcoincash' else 'bitcoincash_testnet']
        script = ad.address_to_script(case['address'], net)
        assert script == ad.cashaddr_payout_script(kind, hash_bytes, True)
        assert ad.script_to_address(script, net, prefer_cashaddr=True) == case['address']


@pytest.mark.parametrize('address', A16['invalid'])
def test_a16_invalid(address):
    with pytest.raises(ad.AddressError):
        ad.cashaddr_decode(address, 'bitcoincash')
    with pytest.raises(ad.AddressError):
        ad.address_to_script(address, BCH)


def test_cashaddr_network_errors():
    testnet_address = 'bchtest:qz8tg3hcp86jd7ehqkdr9nuz2hzvks7jmg6lv9mkup'
    with pytest.raises(ad.WrongNetworkError, match='not for this net'):
        ad.address_to_script(testnet_address, BCH)
    with pytest.raises(ad.AddressError):   # bitcoin does not accept cashaddr
        ad.address_to_script('bitcoincash:qzzxswqlwze7c0gj8mwel8l4q3wqk0krlu7jch88gv', BTC)
    with pytest.raises(ad.AddressError, match='mixes upper and lower case'):
        ad.cashaddr_decode('BITCOINCASH:qzzxswqlwze7c0gj8mwel8l4q3wqk0krlu7jch88gv')
    upper = 'BITCOINCASH:QZZXSWQLWZE7C0GJ8MWEL8L4Q3WQK0KRLU7JCH88GV'
    assert ad.address_to_script(upper, NETS['bitcoinsv']) == ad.address_to_script(upper.lower(), BCH)
    with pytest.raises(ad.AddressError, match='without prefix'):
        ad.cashaddr_decode('qzzxswqlwze7c0gj8mwel8l4q3wqk0krlu7jch88gv')


@given(st.integers(min_value=0, max_value=15), st.sampled_from(ad.CASHADDR_HASH_SIZES),
       st.binary(min_size=64, max_size=64), st.sampled_from(['bitcoincash', 'bchtest', 'pref']))
def test_cashaddr_round_trip(kind, size, data, prefix):
    hash_bytes = data[:size]
    address = ad.cashaddr_encode(prefix, kind, hash_bytes)
    assert ad.cashaddr_decode(address) == (prefix, kind, hash_bytes)


@given(st.sampled_from(ad.CASHADDR_HASH_SIZES), st.binary(min_size=64, max_size=64), st.sampled_from([0, 1]))
def test_cashaddr_script_round_trip(size, data, kind):
    hash_bytes = bytes([0x80]) + data[1:size]          # no leading zero: renders the same in both modes
    address = ad.cashaddr_encode('bitcoincash', kind, hash_bytes)
    script = ad.address_to_script(address, BCH)
    assert ad.script_to_address(script, BCH, prefer_cashaddr=True) == address
    assert ad.address_kind(address, BCH) == ('cashaddr-p2pkh', 'cashaddr-p2sh')[kind]


# --- A17: convertbits -------------------------------------------------------

@pytest.mark.parametrize('case', A17['cases'],
                         ids=lambda c: '%s %d>%d %s' % (c['data'], c['frombits'], c['tobits'], c['pad']))
def test_a17_convertbits(case):
    assert ad.convertbits(case['data'], case['frombits'], case['tobits'], case['pad']) == case['result']


def test_convertbits_rejects_out_of_range_values():
    assert ad.convertbits([32], 5, 8, True) is None
    assert ad.convertbits([-1], 8, 5, True) is None


# --- script -> address (§6.5) -------------------------------------------------

def test_script_to_address_forms():
    pubkey = bytes([2]) + bytes(range(32))
    p2pk = bytes([33]) + pubkey + b'\xac'
    assert ad.script_to_address(p2pk, BTC) == ad.base58check_encode(0, hash160_bytes(pubkey))
    assert ad.script_to_address(p2pk, BCH, prefer_cashaddr=True) == ad.base58check_encode(0, hash160_bytes(pubkey))
    assert ad.script_to_address(b'\x00\x14' + bytes(20), BCH) is None            # no bech32 on cash nets
    assert ad.script_to_address(b'\x00\x13' + bytes(19), BTC) is None            # not a v0 program size
    assert ad.script_to_address(b'\x6a\x04abcd', BTC) is None
    assert ad.script_to_address(b'', BTC) is None
    assert ad.script_to_address('76a9', BTC) is None
    # P2PKH-style scripts with non-20-byte hashes only exist as cashaddr.
    assert ad.script_to_address(b'\x76\xa9\x18' + bytes(24) + b'\x88\xac', BTC) is None
    assert ad.script_to_address(b'\x76\xa9\x18' + bytes(24) + b'\x88\xac', BCH).startswith('bitcoincash:q')


@given(st.binary(max_size=80))
def test_script_to_address_never_raises(script):
    for net in (BTC, BCH, REGTEST):
        result = ad.script_to_address(script, net)
        assert result is None or isinstance(result, str)


# --- robustness: any text gives an address or AddressError -----------------

def _exercise(text):
    for net in (BTC, BCH, NETS['litecoin_testnet'], REGTEST):
        for call in (lambda: ad.address_to_script(text, net, True), lambda: ad.address_to_script(text, net, False),
                     lambda: ad.address_kind(text, net), lambda: ad.address_to_pubkey_hash(text, net)):
            try:
                call()
            except ad.AddressError:
                pass
    for call in (lambda: ad.bech32_parse(text), lambda: ad.cashaddr_decode(text, 'bitcoincash'),
                 lambda: ad.base58check_decode(text)):
        try:
            call()
        except ad.AddressError:
            pass


@given(st.text(max_size=120))
def test_random_text_raises_only_address_error(text):
    _exercise(text)


@given(st.sampled_from(['bc1', 'tb1q', 'bitcoincash:', 'bchtest:q', 'BC1', '1', '3', '']),
       st.text(alphabet=ad.BECH32_CHARSET + ad.BASE58_ALPHABET + ':1', max_size=110))
def test_near_miss_text_raises_only_address_error(prefix, body):
    _exercise(prefix + body)


@given(st.sampled_from([a for _, a in ROUND_TRIPS]), st.integers(min_value=0), st.characters(max_codepoint=0x2ff))
def test_mutated_addresses_raise_only_address_error(address, position, char):
    position %= len(address)
    _exercise(address[:position] + char + address[position + 1:])


def test_non_text_input():
    for bad in (None, b'1KUCp7YP5FP8ViRxhfszSUJCTAajK6viGy', 5):
        with pytest.raises(ad.AddressError):
            ad.address_to_script(bad, BTC)
        with pytest.raises(ad.AddressError):
            ad.address_to_pubkey_hash(bad, BTC)


def test_error_messages_are_clear():
    with pytest.raises(ad.AddressError) as info:
        ad.address_to_script('hello world', BTC)
    assert 'not Base58Check' in str(info.value) and 'not bech32' in str(info.value)
    with pytest.raises(ad.WrongNetworkError, match='not for this net'):
        ad.address_to_script('Lf3iRHmfbLcZry4Y28esSJ9ASAfGJtBiyf', BTC)


def test_address_params_is_a_parent():
    params = ad.AddressParams(ADDRESS_VERSION=0, ADDRESS_P2SH_VERSION=5, HUMAN_READABLE_PART='bc', SYMBOL='BTC')
    address = 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4'
    assert ad.address_to_script(address, params) == ad.address_to_script(address, BTC)
    assert not ad.is_cash_network(params) and ad.is_cash_network(BCH)
