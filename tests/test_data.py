"""Parent-chain data: headers, transactions, merkle, targets, hashes (vectors A1-A3, A5, A7, A10-A12, B)."""
import hashlib
import os
import random

import pytest
from hypothesis import given, settings, strategies as st

from p2pool.bitcoin import data, hashes, sha256_midstate

VECTORS = os.path.join(os.path.dirname(__file__), 'vectors')

A1_HEADER = ('0100000082622f3d60f36d683b9b0732a7988229513cf98723b7862a8a0300000000000044bc7380c2e82d647df280b1aa24880'
             '060433b39465f9765b64e2e813b3aa437eddce64e68860e1a061c13da')


def test_a1_header_hash():
    header = data.header_type.unpack(bytes.fromhex(A1_HEADER))
    assert header == {
        'version': 1,
        'previous_block': 0x000000000000038a2a86b72387f93c51298298a732079b3b686df3603d2f6282,
        'merkle_root': 0x37a43a3b812e4eb665975f46393b4360008824aab180f27d642de8c28073bc44,
        'timestamp': 1323752685, 'bits': 0x1a0e8668, 'nonce': 3658685446}
    assert data.header_type.pack(header).hex() == A1_HEADER
    assert data.header_hash(header) == 0x000000000000003aaaf7638f9f9c0d0c60e8b0eb817dcdb55fd2b1964efc5175
    assert '%064x' % data.bits_to_target(0x1a0e8668) == \
        '0000000000000e86680000000000000000000000000000000000000000000000'


def test_a2_scrypt_pow():
    raw = bytes.fromhex('0100000073009584100e64c11ee87789693ceffe1bd2cd10584d42ddc9d1136606d328d9165f399f54c51b8f46aa00'
                        'b6528a3ca9b3e725e4022b184a59668ab546b6f403daba244f6fb5011d00510000')
    pow_hash = hashes.scrypt_pow(raw)
    assert pow_hash == 0x00000001312dc20ce5aa3ee622f5562dfb2593ec51436aab739ef0d02189e18f
    assert pow_hash < 2**256 // 2**30


A3_TX = ('01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff5370736a0468860e1a0452389500'  # noqa: E501 (vector)
         '522cfabe6d6d2b2f33cf8f6291b184f1b291d24d82229463fcec239afea0ee34b4bfc622f62401000000000000004d696e656420627920'
         '425443204775696c6420ac1eeeed88ffffffff013a27412a010000001976a914ca975b00a8c203b8692f5a18d92dc5c2d2ebc57b88ac'
         '00000000')


def test_a3_coinbase_txid():
    tx = data.tx_type.unpack(bytes.fromhex(A3_TX))
    assert tx['tx_ins'][0]['previous_output'] is None and tx['tx_ins'][0]['sequence'] is None
    assert tx['tx_outs'] == [{'value': 5003880250,
                              'script': bytes.fromhex('76a914ca975b00a8c203b8692f5a18d92dc5c2d2ebc57b88ac')}]
    assert data.txid(tx) == 0xb53802b2333e828d6532059f46ecf6b313a42d79f97925e457fbbfda45367e5c
    assert data.wtxid(tx) == data.txid(tx) == data.tx_key(tx)
    assert data.tx_type.pack(tx).hex() == A3_TX


def test_segwit_transaction_ids():
    tx = data.tx_type.unpack(bytes.fromhex(A3_TX))
    segwit = dict(tx, marker=0, flag=1, witness=[[b'\x01' * 32]])
    full = data.tx_type.pack(segwit)
    assert full[4:6] == b'\x00\x01'
    assert data.tx_type.unpack(full) == segwit
    assert data.txid(segwit) == data.txid(tx)
    assert data.wtxid(segwit) == hashes.hash256(full) != data.txid(tx)
    empty_witness = dict(segwit, witness=[[]])
    assert data.wtxid(empty_witness) == data.txid(tx)
    # a record read with flag 0 re-serializes stripped
    flag0 = dict(segwit, flag=0)
    assert data.tx_type.pack(flag0) == data.tx_id_type.pack(tx)


def test_zero_input_quirk():
    """A non-segwit transaction with no inputs cannot be read back (its count 0 is taken as the marker)."""
    tx = {'version': 1, 'tx_ins': [], 'tx_outs': [{'value': 1, 'script': b''}], 'lock_time': 0}
    raw = data.tx_type.pack(tx)
    with pytest.raises(data.s.DecodeError):
        data.tx_type.unpack(raw)


def test_a5_merkle_root():
    leaves = [int(line, 16) for line in open(os.path.join(VECTORS, 'merkle_a5_leaves.txt'))]
    assert len(leaves) == 30
    assert data.merkle_hash(leaves) == 0x37a43a3b812e4eb665975f46393b4360008824aab180f27d642de8c28073bc44


def test_a7_header_hash():
    header = {'version': 1, 'previous_block': 0x00000000000000a70da499fe72c35cdca1581c476483d611c4c6c02e9673ce82,
              'merkle_root': 0x050c0c09521b82406e85ccae5d13d8a8821ed9583093df6ae727ba46d908c21a,
              'timestamp': 1351658517, 'bits': 0x1a0513c5, 'nonce': 1853158954}
    assert data.header_hash(header) == 0x000000000000016c169477c25421250ec5d32cf9c6d38538b5de970a2355fd89


@pytest.mark.parametrize('text, digest', [
    (b'', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'),
    (b'a', 'ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb'),
    (b'b', '3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d'),
    (b'abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'),
    (b'abc' * 50, '97ca5175ac60b081b919120849da7d71fb00456ac6c32ebe96581ce34cfe2596'),
    (b'hello world', 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9'),
])
@pytest.mark.parametrize('engine', ['fast', 'python'])
def test_a10_sha256_with_state(text, digest, engine):
    state_after = hashes.sha256_state_after if engine == 'fast' else sha256_midstate.py_state_after
    from_state = hashes.sha256_from_state if engine == 'fast' else sha256_midstate.py_digest_from_state
    whole = len(text) - len(text) % 64
    assert from_state(state_after(text), whole, text[whole:]).hex() == digest


def test_a10_random_lengths_and_continued_state():
    rng = random.Random(1)
    for length in range(150):
        message = bytes(rng.randrange(256) for _ in range(length))
        whole = length - length % 64
        for engine in ((hashes.sha256_state_after, hashes.sha256_from_state),
                       (sha256_midstate.py_state_after, sha256_midstate.py_digest_from_state)):
            state = engine[0](message)
            copied = bytes(state)
            assert engine[1](copied, whole, message[whole:]) == hashlib.sha256(message).digest()


def test_a11_sha256d():
    assert hashes.sha256d(b'foobar').hex() == '3f2c7ccae98af81e44c0ec419659f50d8b7d48c681e5d57fc747d0461e42dda1'
    assert hashes.sha256d(b'The quick brown fox jumped over the lazy dog.').hex() == \
        '522ce8431fa64392b98edd1d3f5334d44a503b39c273a70eef53ffe0eb017c7c'


@pytest.mark.parametrize('hashes_, branch', [
    ([None], []), ([None, 1], [1]), ([1], []), ([1, 2], [2]),
    ([None, 1, 2, 3, 4, 5], [1, 94864150206590526235965722633721835315983130322594944160453736056914236592459,
                             59849171046155764382219583444308915046617550355436344310681675321029813555762]),
    ([None] + list(range(1, 11)), [1, 94864150206590526235965722633721835315983130322594944160453736056914236592459,
                                   72494757060291235084519934761016282559218743148805001002098588078214939771139,
                                   18012755156996779427190686631173143337082707813254112256638152524170454035843]),
])
def test_a12_merkle_links(hashes_, branch):
    link = data.calculate_merkle_link(hashes_, 0)
    assert link == {'branch': branch, 'index': 0}
    if hashes_[0] is not None or len(hashes_) == 1:
        tip = hashes_[0] if hashes_[0] is not None else 7
        full = [tip] + hashes_[1:]
        assert data.check_merkle_link(tip, link) == data.merkle_hash(full)


def test_a12_large_merkle_link():
    lines = open(os.path.join(VECTORS, 'merkle_links10.txt')).read().split()
    assert lines[0] == 'None'
    items = [None] + [int(x) for x in lines[1:]]
    assert len(items) == 2837
    link = data.calculate_merkle_link(items, 0)
    assert link['index'] == 0
    expected = [int(x) for x in open(os.path.join(VECTORS, 'merkle_links10_branch.txt')).read().split()]
    assert link['branch'] == expected


@given(leaves=st.lists(st.integers(0, 2**256 - 1), min_size=1, max_size=40), data_=st.data())
@settings(max_examples=100, deadline=None)
def test_merkle_link_proves_every_index(leaves, data_):
    index = data_.draw(st.integers(0, len(leaves) - 1))
    link = data.calculate_merkle_link(leaves, index)
    assert data.check_merkle_link(leaves[index], link) == data.merkle_hash(leaves)


def test_merkle_link_index_too_large():
    with pytest.raises(data.MerkleError):
        data.check_merkle_link(1, {'branch': [2], 'index': 2})


def test_merkle_hash_edge_cases():
    assert data.merkle_hash([]) == 0
    assert data.merkle_hash([5]) == 5


@pytest.mark.parametrize('target, bits', [
    (2**256 // 2**32 - 1, 0x1d00ffff), (2**256 // 2**20 - 1, 0x1e0fffff), (2**256 - 1, 0x2100ffff), (0, 0),
])
def test_target_to_bits(target, bits):
    assert data.target_to_bits(target) == bits


def test_b_targets_and_difficulty():
    diff1 = 0x00000000ffff0000000000000000000000000000000000000000000000000000
    assert data.bits_to_target(0x1d00ffff) == diff1
    assert data.bits_to_target(0x1e0fffff) == 0x00000fffff000000000000000000000000000000000000000000000000000000
    assert data.target_to_difficulty(diff1) == 1.0
    assert data.target_to_difficulty(2**256 // 2**32 - 1) == 0.9999847412109375
    assert data.target_to_average_attempts(diff1) == 4295032833
    assert data.difficulty_to_target(1) == diff1
    assert data.difficulty_to_target(1024) == 0x00000000003fffc0000000000000000000000000000000000000000000000000
    assert data.difficulty_to_target(0) == 2**256 - 1


@given(target=st.integers(0, 2**256 - 1))
def test_bits_round_down(target):
    bits = data.target_to_bits(target)
    assert data.bits_to_target(bits) <= target
    assert data.target_to_bits(data.bits_to_target(bits)) == bits


@given(attempts=st.integers(1, 2**256))
def test_average_attempts_to_target_is_bounded(attempts):
    target = data.average_attempts_to_target(attempts)
    assert 0 <= target <= 2**256 - 1


def test_witness_commitment():
    assert data.P2POOL_WITNESS_RESERVED_VALUE.hex() == \
        '5b5032506f6f6c5d5b5032506f6f6c5d5b5032506f6f6c5d5b5032506f6f6c5d'
    commitment = data.witness_commitment_hash(0)
    script = data.witness_commitment_script(commitment)
    assert script[:6].hex() == '6a24aa21a9ed' and len(script) == 38
