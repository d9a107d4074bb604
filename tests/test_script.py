"""Script pushes, builders, parsing and BIP34 read-back (serialization.md §4, vectors A3, A8, B)."""
import json
import pathlib

import pytest
from hypothesis import given, strategies as st

from p2pool.bitcoin import script as sc

VECTORS = json.loads((pathlib.Path(__file__).parent / 'vectors' / 'script_vectors.json').read_text())


@pytest.mark.parametrize('case', VECTORS['push_script'], ids=lambda c: str(c['items']))
def test_push_script_vectors(case):
    assert sc.push_script(case['items']).hex() == case['script']


def test_push_script_small_and_negative_ints():
    assert sc.push_script([-1]) == b'\x4f'
    assert sc.push_script(list(range(1, 17))) == bytes(range(0x51, 0x61))
    assert sc.push_script([17]).hex() == '0111'
    assert sc.push_script([-2]).hex() == '0182'
    assert sc.push_script([127, -127]).hex() == '017f' + '01ff'
    assert sc.push_script([-128]).hex() == '028080'
    assert sc.push_script([255]).hex() == '02ff00'


@pytest.mark.parametrize('length, prefix', [
    (0, '00'), (75, '4b'), (76, '4c4c'), (255, '4cff'), (256, '4d0001'),
    (65535, '4dffff'), (65536, '4e00000100'),
])
def test_push_data_forms(length, prefix):
    data = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    script = sc.push_data(data)
    assert script.hex().startswith(prefix)
    assert script == bytes.fromhex(prefix) + data
    assert sc.parse_script(script) == [sc.ScriptOp(script[0], data)]


@pytest.mark.parametrize('bad', ['text', 1.5, True, None, [1]])
def test_push_script_rejects_other_types(bad):
    with pytest.raises(sc.ScriptError):
        sc.push_script([bad])


def _pushed_int(op):
    return sc.decode_script_number(sc.pushed_bytes(op))


@given(st.integers(min_value=-2**80, max_value=2**80))
def test_push_int_decodes_back(value):
    ops = sc.parse_script(sc.push_script([value]))
    assert len(ops) == 1
    assert _pushed_int(ops[0]) == value
    if not (value == -1 or 1 <= value <= 16):
        assert ops[0].data == sc.encode_script_number(value)


@given(st.lists(st.one_of(st.integers(min_value=-2**40, max_value=2**40), st.binary(max_size=300)), max_size=8))
def test_mixed_push_script_parses_back(items):
    ops = sc.parse_script(sc.push_script(items))
    assert len(ops) == len(items)
    for op, item in zip(ops, items):
        if isinstance(item, bytes):
            assert op.data == item
        else:
            assert _pushed_int(op) == item


def test_bip34_height_push_and_read_back():
    assert sc.bip34_height_push(600001).hex() == '03c12709'
    assert sc.bip34_height_push(0).hex() == '00'
    assert sc.read_bip34_height(bytes.fromhex('03c12709') + b'/P2Pool/') == 600001
    assert sc.read_bip34_height(b'\x00') == 0
    assert sc.read_bip34_height(b'\x5a\x01') == 10          # OP_10: regtest heights 1..16
    with pytest.raises(sc.ScriptError):
        sc.bip34_height_push(-1)


@given(st.integers(min_value=0, max_value=2**40), st.binary(max_size=40))
def test_bip34_round_trip(height, tail):
    assert sc.read_bip34_height(sc.bip34_height_push(height) + tail) == height


def test_bip34_sign_rule_is_the_literal_one():
    # Top bit of the last byte set -> the whole little-endian value is negated
    # without clearing that bit (the original's display rule, §4.2).
    assert sc.read_bip34_height(bytes.fromhex('0181')) == -0x81
    assert sc.read_bip34_height(b'\x4f') == -0x81               # OP_1NEGATE pushes 0x81


@pytest.mark.parametrize('garbage', [b'', b'\x05ab', b'\x4c', b'\x4d\x01', b'\x76\xa9', 'text', None, 5])
def test_bip34_garbage_gives_none(garbage):
    assert sc.read_bip34_height(garbage) is None


def test_pre_bip34_coinbase_gives_none():
    # A3's coinbase (2011) starts with opcode 0x70, not a push.
    coinbase = bytes.fromhex(VECTORS['a3_coinbase']['script'])
    assert len(coinbase) == 0x53
    assert sc.read_bip34_height(coinbase) is None


@given(st.binary(max_size=120))
def test_read_bip34_height_never_raises(data):
    result = sc.read_bip34_height(data)
    assert result is None or isinstance(result, int)


def test_a8_parse_and_sigops():
    case = VECTORS['a8_parse']
    script = bytes.fromhex(case['script'])
    expected = [sc.ScriptOp(op, None if data is None else bytes.fromhex(data)) for op, data in case['ops']]
    assert sc.parse_script(script) == expected
    assert sc.sigop_count(script) == case['sigop_count']
    assert sc.disassemble(script) == 'OP_DUP OP_HASH160 %s OP_EQUALVERIFY OP_CHECKSIG' % case['ops'][2][1]


def test_sigop_weights_and_truncation():
    assert sc.sigop_count(bytes([sc.OP_CHECKMULTISIG, sc.OP_CHECKSIGVERIFY, sc.OP_CHECKMULTISIGVERIFY])) == 41
    assert sc.sigop_count(b'\x01\xac') == 0                    # 0xac inside a push is data
    assert sc.sigop_count(b'\xac\xac\x05\xac') == 2            # stops at the truncated push
    with pytest.raises(sc.ScriptError):
        sc.sigop_count('ac')


@pytest.mark.parametrize('truncated', ['05abcd', '4c', '4c05ab', '4d01', '4e0100', '4e01000000'])
def test_truncated_push_raises(truncated):
    with pytest.raises(sc.ScriptError):
        sc.parse_script(bytes.fromhex(truncated))
    assert '[error:' in sc.disassemble(bytes.fromhex(truncated))


@given(st.binary(max_size=200))
def test_parse_random_bytes_raises_only_script_error(data):
    try:
        ops = sc.parse_script(data)
    except sc.ScriptError:
        return
    rebuilt = b''.join(bytes([op.opcode]) if op.data is None else
                       data_prefix(op) + op.data for op in ops)
    assert rebuilt == data
    sc.disassemble(data)


def data_prefix(op):
    size = {sc.OP_PUSHDATA1: 1, sc.OP_PUSHDATA2: 2, sc.OP_PUSHDATA4: 4}.get(op.opcode, 0)
    return bytes([op.opcode]) + len(op.data).to_bytes(size, 'little') if size else bytes([op.opcode])


def test_output_script_builders():
    a3 = VECTORS['a3_coinbase']
    assert sc.p2pkh_script(bytes.fromhex(a3['p2pkh_hash160'])).hex() == a3['p2pkh_script']
    assert sc.p2sh_script(bytes(range(20))).hex() == 'a914' + bytes(range(20)).hex() + '87'
    donation = bytes.fromhex(VECTORS['donation_script'])
    assert sc.p2pk_script(donation[1:-1]) == donation
    payload = bytes(range(40))
    assert sc.op_return_script(payload).hex() == VECTORS['gentx_op_return_prefix'] + payload.hex()
    assert sc.op_return_script(bytes(80))[:3].hex() == '6a4c50'
    for bad in (bytes(19), bytes(21), '00' * 20):
        with pytest.raises(sc.ScriptError):
            sc.p2pkh_script(bad)
        with pytest.raises(sc.ScriptError):
            sc.p2sh_script(bad)
    with pytest.raises(sc.ScriptError):
        sc.p2pk_script(b'')


def test_witness_commitment_script():
    commitment = bytes(range(32))
    expected = VECTORS['witness_commitment_prefix'] + commitment.hex()
    assert sc.witness_commitment_script(commitment).hex() == expected
    assert sc.witness_commitment_script(int.from_bytes(commitment, 'little')).hex() == expected
    for bad in (bytes(31), 1 << 256, -1):
        with pytest.raises(sc.ScriptError):
            sc.witness_commitment_script(bad)


def test_coinbase_script():
    assert sc.coinbase_script(600001, [b'/P2Pool/'], b'\xaa').hex() == '03c12709' + '08' + b'/P2Pool/'.hex() + 'aa'
    long_script = sc.coinbase_script(600001, [bytes(200)])
    assert len(long_script) == 100 and long_script.startswith(bytes.fromhex('03c127094cc8'))


def test_opcode_names():
    assert sc.opcode_name(0x51) == 'OP_1' and sc.opcode_name(0x60) == 'OP_16'
    assert sc.opcode_name(0xff) == 'OP_UNKNOWN_0xff'
    assert sc.disassemble(bytes.fromhex('00516a')) == 'OP_0 OP_1 OP_RETURN'


@pytest.mark.parametrize('height', [0, 1, 16])
def test_coinbase_script_is_at_least_two_bytes(height):
    """bitcoind's bad-cb-length and the share's 2..100 rule: low heights push as one opcode."""
    script = sc.coinbase_script(height)
    assert len(script) == 2 and script[1:] == b'\x00'
    assert sc.coinbase_script(17) == bytes.fromhex('0111')
