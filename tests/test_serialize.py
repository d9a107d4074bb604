"""Wire types: known answers, round trips and hostile input (serialization.md §1, vectors A11, A18)."""
import enum
import functools

import pytest
from hypothesis import given, settings, strategies as st

from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.data import address_type, header_type, tx_type, tx_id_type, aux_pow_type
from p2pool.bitcoin.serialize import DecodeError, EncodeError


@pytest.mark.parametrize('value, hex_', [
    (0, '00'), (0xfc, 'fc'), (0xfd, 'fdfd00'), (0xffff, 'fdffff'), (0x10000, 'fe00000100'),
    (0xffffffff, 'feffffffff'), (0x100000000, 'ff0000000001000000'), (2**64 - 1, 'ffffffffffffffffff'),
])
def test_varint_encodings(value, hex_):
    assert s.VarInt.pack(value).hex() == hex_
    assert s.VarInt.unpack(bytes.fromhex(hex_)) == value


@pytest.mark.parametrize('hex_', ['fd0000', 'fdfc00', 'fe0000000000', 'feffff0000', 'ff0000000000000000',
                                  'ffffffffff00000000'])
def test_non_canonical_varint_rejected(hex_):
    with pytest.raises(DecodeError, match='canonical'):
        s.VarInt.unpack(bytes.fromhex(hex_))


def test_varint_round_trip_ranges():
    # vector A18: 0 .. 2**20 and 2**36 .. 2**36 + 24 (sampled densely: every value below 2**17)
    for value in list(range(0, 2**17)) + list(range(2**20 - 64, 2**20 + 1)) + list(range(2**36, 2**36 + 25)):
        assert s.VarInt.unpack(s.VarInt.pack(value)) == value


def test_varint_too_large():
    with pytest.raises(EncodeError):
        s.VarInt.pack(2**64)


def test_u256_vectors():
    # vector A11
    assert s.u256.pack(1).hex() == '01' + '00' * 31
    big = 68477375576518660443919654926385967974392894630013268634844705859790497799846
    raw = 'a65eca63d46a38919454e69b2c7870aad67ec760895c32620d9fabb632d26497'
    assert s.u256.pack(big).hex() == raw
    assert s.u256.unpack(bytes.fromhex(raw)) == big


def test_int_range_checked():
    with pytest.raises(EncodeError):
        s.u8.pack(256)
    with pytest.raises(EncodeError):
        s.u32.pack(-1)
    assert s.u16be.pack(0x1234) == b'\x12\x34'


def test_zero_type():
    assert s.Zero.pack(0) == b''
    assert s.Zero.unpack(b'') == 0


def test_possibly_none():
    t = s.PossiblyNone(0, s.u256)
    assert t.pack(None) == b'\x00' * 32
    assert t.unpack(b'\x00' * 32) is None
    with pytest.raises(EncodeError):
        t.pack(0)


def test_fixed_str():
    assert s.FixedStr(2).unpack(b'ab') == b'ab'
    with pytest.raises(EncodeError):
        s.FixedStr(2).pack(b'abc')
    with pytest.raises(DecodeError):
        s.FixedStr(3).unpack(b'ab')


def test_list_mul2():
    t = s.List(s.VarInt, mul=2)
    assert t.pack([1, 2, 3, 4]).hex() == '0201020304'
    assert t.unpack(bytes.fromhex('0201020304')) == [1, 2, 3, 4]
    with pytest.raises(EncodeError):
        t.pack([1, 2, 3])


def test_list_count_larger_than_data_rejected_early():
    with pytest.raises(DecodeError):
        s.List(s.u256).unpack(bytes.fromhex('feffffffff'))


STALE_INFO = s.Enum(s.u8, {**{k: 'unk%d' % k for k in range(256)}, 0: None, 253: 'orphan', 254: 'doa'})


def test_enum():
    assert STALE_INFO.unpack(b'\xfd') == 'orphan'
    assert STALE_INFO.unpack(b'\x07') == 'unk7'
    assert STALE_INFO.pack('unk7') == b'\x07'
    with pytest.raises(EncodeError):
        STALE_INFO.pack('bogus')
    result = s.Enum(s.VarInt, {0: 'good', 1: 'too long'})
    with pytest.raises(DecodeError):
        result.unpack(b'\x05')


def test_ipv6_address():
    assert s.IPv6Address.pack('1.2.3.4').hex() == '00000000000000000000ffff01020304'
    assert s.IPv6Address.unpack(bytes.fromhex('00000000000000000000ffff01020304')) == '1.2.3.4'
    assert s.IPv6Address.unpack(bytes.fromhex('20010db8000000000000000000000001')) == \
        '2001:0db8:0000:0000:0000:0000:0000:0001'
    with pytest.raises(EncodeError):
        s.IPv6Address.pack('not an address')


def test_trailing_bytes_rejected():
    with pytest.raises(DecodeError, match='trailing'):
        s.u32.unpack(b'\x00' * 5)
    assert s.u32.unpack(b'\x00' * 5, allow_trailing=True) == 0


def test_struct_missing_field():
    with pytest.raises(EncodeError, match='missing field'):
        header_type.pack({'version': 1})


class _Kind(enum.IntEnum):
    SEVEN = 7


class _Record(dict):
    pass


def _outcome(write, value):
    out = []
    try:
        write(out, value)
    except Exception as e:
        return type(e), str(e)
    return b''.join(out)


def test_fixed_size_structs_write_as_field_by_field():
    inner = s.Struct('inner', [('port', s.u16be), ('ip', s.IPv6Address), ('hash', s.u256)])
    record = s.Struct('record', [('time', s.u64), ('inner', inner), ('small', s.u8), ('word', s.Int(32, 'big'))])
    assert 'write' in vars(record) and 'write' in vars(inner) and 'write' in vars(address_type)
    assert 'write' not in vars(header_type)           # PossiblyNone: field by field only
    good = {'time': 2**64 - 1, 'inner': {'port': 0x1234, 'ip': '1.2.3.4', 'hash': 2**255}, 'small': 7, 'word': 9}

    def variant(path, replacement):
        value = {**good, 'inner': dict(good['inner'])}
        holder = value if len(path) == 1 else value['inner']
        if replacement is KeyError:
            del holder[path[-1]]
        else:
            holder[path[-1]] = replacement
        return value
    cases = [good, _Record(good), [], None, variant(('inner',), []), variant(('inner',), _Record(good['inner']))]
    for path in [('time',), ('small',), ('word',), ('inner', 'port'), ('inner', 'hash')]:
        cases += [variant(path, bad) for bad in (True, -1, 2**256, 1.0, None, '1', _Kind.SEVEN, KeyError)]
    cases += [variant(('inner', 'ip'), bad) for bad in ('::1', 'nope', b'\x01' * 16, b'\x01' * 4, 5, [], KeyError)]
    for value in cases:
        assert _outcome(record.write, value) == _outcome(functools.partial(s.Struct.write, record), value), value
    assert record.pack(good) == (b'\xff' * 8 + b'\x12\x34' + bytes(10) + b'\xff\xff\x01\x02\x03\x04'
                                 + (2**255).to_bytes(32, 'little') + b'\x07' + b'\x00\x00\x00\x09')


# --- hypothesis: unpack(pack(x)) == x for every wire type ---------------------

u256s = st.integers(0, 2**256 - 1)
u32s = st.integers(0, 2**32 - 1)
scripts = st.binary(max_size=80)

headers = st.fixed_dictionaries({
    'version': u32s, 'previous_block': st.one_of(st.none(), st.integers(1, 2**256 - 1)),
    'merkle_root': u256s, 'timestamp': u32s, 'bits': u32s, 'nonce': u32s})
tx_ins = st.fixed_dictionaries({
    'previous_output': st.one_of(st.none(), st.fixed_dictionaries({'hash': st.integers(1, 2**256 - 1),
                                                                    'index': st.integers(0, 2**32 - 2)})),
    'script': scripts, 'sequence': st.one_of(st.none(), st.integers(0, 2**32 - 2))})
tx_outs = st.fixed_dictionaries({'value': st.integers(0, 2**64 - 1), 'script': scripts})
stripped_txs = st.fixed_dictionaries({'version': u32s, 'tx_ins': st.lists(tx_ins, min_size=1, max_size=3),
                                      'tx_outs': st.lists(tx_outs, max_size=3), 'lock_time': u32s})


@st.composite
def segwit_txs(draw):
    tx = draw(stripped_txs)
    tx.update(marker=0, flag=draw(st.integers(1, 255)),
              witness=[draw(st.lists(st.binary(max_size=40), max_size=3)) for _ in tx['tx_ins']])
    return tx


CASES = [
    (s.VarInt, st.integers(0, 2**64 - 1)),
    (s.VarStr, st.binary(max_size=300)),
    (s.u8, st.integers(0, 255)), (s.u16, st.integers(0, 2**16 - 1)), (s.u32, u32s),
    (s.u64, st.integers(0, 2**64 - 1)), (s.u128, st.integers(0, 2**128 - 1)),
    (s.u160, st.integers(0, 2**160 - 1)), (s.u256, u256s), (s.u16be, st.integers(0, 2**16 - 1)),
    (s.u256be, u256s), (s.Int(24, 'big'), st.integers(0, 2**24 - 1)),
    (s.FixedStr(5), st.binary(min_size=5, max_size=5)),
    (s.List(s.u256), st.lists(u256s, max_size=10)),
    (s.List(s.VarInt, mul=2), st.lists(st.integers(0, 2**40), max_size=5).map(lambda items: items + items)),
    (s.PossiblyNone(0, s.u256), st.one_of(st.none(), st.integers(1, 2**256 - 1))),
    (STALE_INFO, st.sampled_from([None, 'orphan', 'doa', 'unk1', 'unk252', 'unk255'])),
    (s.IPv6Address, st.one_of(st.ip_addresses(v=4).map(str),
                              st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(
                                  lambda a: ':'.join(a.packed[i:i + 2].hex() for i in range(0, 16, 2))))),
    (header_type, headers),
    (tx_id_type, stripped_txs),
    (tx_type, st.one_of(stripped_txs, segwit_txs())),
    (address_type, st.fixed_dictionaries({'services': st.integers(0, 2**64 - 1),
                                          'address': st.ip_addresses(v=4).map(str),
                                          'port': st.integers(0, 65535)})),
]


@pytest.mark.parametrize('wire_type, values', CASES, ids=[repr(c[0]) for c in CASES])
@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_round_trip(wire_type, values, data):
    value = data.draw(values)
    raw = wire_type.pack(value)
    assert wire_type.unpack(raw) == value
    assert wire_type.pack(wire_type.unpack(raw)) == raw
    if raw:
        with pytest.raises(DecodeError):
            wire_type.unpack(raw + b'\x00')
        with pytest.raises(DecodeError):
            wire_type.unpack(raw[:-1])


@pytest.mark.parametrize('wire_type', [c[0] for c in CASES] + [aux_pow_type], ids=repr)
@given(raw=st.binary(max_size=400))
@settings(max_examples=80, deadline=None)
def test_random_bytes_only_raise_decode_error(wire_type, raw):
    try:
        wire_type.unpack(raw)
    except DecodeError:
        pass
