"""Parent-chain data types and the arithmetic around them (serialization.md §2, §3, §5).

Wire types are declared once with p2pool.bitcoin.serialize; records are dicts.
A transaction dict has version, tx_ins, tx_outs, lock_time and, for the segwit
form, marker (0), flag and witness (one list of stack items per input).
"""
from collections.abc import Sequence
from typing import Any

from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.hashes import hash256

#: the dict-shaped records of the wire types (keys as in the Struct declarations below)
Header = dict[str, Any]
Tx = dict[str, Any]
MerkleLink = dict[str, Any]

# --- block header -------------------------------------------------------------

header_type = s.Struct('block_header', [
    ('version', s.u32),
    ('previous_block', s.PossiblyNone(0, s.u256)),
    ('merkle_root', s.u256),
    ('timestamp', s.u32),
    ('bits', s.Bits),
    ('nonce', s.u32),
])


def header_hash(header: Header) -> int:
    """Block hash (integer) of a header dict."""
    return hash256(header_type.pack(header))


# --- transactions -------------------------------------------------------------

outpoint_type = s.Struct('outpoint', [('hash', s.u256), ('index', s.u32)])
NULL_OUTPOINT = {'hash': 0, 'index': 2**32 - 1}

tx_in_type = s.Struct('tx_in', [
    ('previous_output', s.PossiblyNone(NULL_OUTPOINT, outpoint_type)),
    ('script', s.VarStr),
    ('sequence', s.PossiblyNone(2**32 - 1, s.u32)),
])

tx_out_type = s.Struct('tx_out', [('value', s.u64), ('script', s.VarStr)])

#: stripped serialization (what the txid hashes)
tx_id_type = s.Struct('tx_id', [
    ('version', s.u32),
    ('tx_ins', s.List(tx_in_type)),
    ('tx_outs', s.List(tx_out_type)),
    ('lock_time', s.u32),
])

_tx_ins_list = s.List(tx_in_type)
_tx_outs_list = s.List(tx_out_type)
_witness_stack = s.List(s.VarStr)


class TransactionType(s.Type[Tx]):
    """Full serialization: segwit form when marker == 0 and flag >= 1, else stripped.

    Reading takes a VarInt of 0 after the version as the segwit marker, so a
    non-segwit transaction with no inputs cannot be read (the spec's quirk).
    """

    min_size = 10

    def read(self, data: bytes, pos: int) -> tuple[Tx, int]:
        version, pos = s.u32.read(data, pos)
        count_or_marker, after = s.VarInt.read(data, pos)
        if count_or_marker != 0:
            tx_ins, pos = _tx_ins_list.read(data, pos)
            tx_outs, pos = _tx_outs_list.read(data, pos)
            lock_time, pos = s.u32.read(data, pos)
            return {'version': version, 'tx_ins': tx_ins, 'tx_outs': tx_outs,
                    'lock_time': lock_time}, pos
        flag, pos = s.u8.read(data, after)
        tx_ins, pos = _tx_ins_list.read(data, pos)
        tx_outs, pos = _tx_outs_list.read(data, pos)
        witness: list[list[bytes]] = []
        for _ in tx_ins:
            stack, pos = _witness_stack.read(data, pos)
            witness.append(stack)
        lock_time, pos = s.u32.read(data, pos)
        return {'version': version, 'marker': 0, 'flag': flag, 'tx_ins': tx_ins,
                'tx_outs': tx_outs, 'witness': witness, 'lock_time': lock_time}, pos

    def write(self, out: list[bytes], tx: Tx) -> None:
        if not is_segwit_form(tx):
            tx_id_type.write(out, tx)
            return
        if len(tx['witness']) != len(tx['tx_ins']):
            raise s.EncodeError('a segwit transaction needs one witness stack per input')
        s.u32.write(out, tx['version'])
        s.u8.write(out, 0)
        s.u8.write(out, tx['flag'])
        _tx_ins_list.write(out, tx['tx_ins'])
        _tx_outs_list.write(out, tx['tx_outs'])
        for stack in tx['witness']:
            _witness_stack.write(out, stack)
        s.u32.write(out, tx['lock_time'])

    def __repr__(self) -> str:
        return 'tx'


tx_type = TransactionType()


def is_segwit_form(tx: Tx) -> bool:
    return bool(tx.get('marker') == 0 and tx.get('flag', 0) >= 1)


def txid(tx: Tx) -> int:
    return hash256(tx_id_type.pack(tx))


def wtxid(tx: Tx) -> int:
    """Hash of the full serialization when some input carries witness data, else the txid."""
    if is_segwit_form(tx) and any(tx['witness']):
        return hash256(tx_type.pack(tx))
    return txid(tx)


def tx_key(tx: Tx) -> int:
    """P2Pool's transaction key: hash of the full serialization as received."""
    return hash256(tx_type.pack(tx))


# --- blocks -------------------------------------------------------------------

block_type = s.Struct('block', [('header', header_type), ('txs', s.List(tx_type))])
stripped_block_type = s.Struct('stripped_block', [('header', header_type), ('txs', s.List(tx_id_type))])


# --- merkle trees and links (§3) ----------------------------------------------

merkle_link_type = s.Struct('merkle_link', [('branch', s.List(s.u256)), ('index', s.u32)])
share_merkle_link_type = s.Struct('share_merkle_link', [('branch', s.List(s.u256)), ('index', s.Zero)])


def hash_pair(left: int, right: int) -> int:
    return hash256(left.to_bytes(32, 'little') + right.to_bytes(32, 'little'))


def merkle_hash(hashes: Sequence[int]) -> int:
    """Merkle root of integer hashes; 0 for an empty list, odd levels duplicate their last node."""
    if not hashes:
        return 0
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


class MerkleError(ValueError):
    """A merkle link that cannot be applied or built."""


def check_merkle_link(tip: int, link: MerkleLink) -> int:
    """Root reached from `tip` by following link['branch'] with link['index']."""
    branch: list[int] = link['branch']
    index: int = link['index']
    if index >= 2 ** len(branch):
        raise MerkleError('merkle link index too large')
    node = tip
    for level, sibling in enumerate(branch):
        if (index >> level) & 1:
            node = hash_pair(sibling, node)
        else:
            node = hash_pair(node, sibling)
    return node


def calculate_merkle_link(hashes: Sequence[int | None], index: int) -> MerkleLink:
    """{branch, index} proving hashes[index] (which may be None: unknown) up to merkle_hash(hashes)."""
    if not 0 <= index < len(hashes):
        raise MerkleError('merkle link index out of range')
    branch: list[int] = []
    level: list[int | None] = list(hashes)
    position = index
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        sibling = level[position ^ 1]
        if sibling is None:
            raise MerkleError('merkle sibling depends on the unknown element')
        branch.append(sibling)
        level = [_pair_if_known(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        position //= 2
    return {'branch': branch, 'index': index}


def _pair_if_known(left: int | None, right: int | None) -> int | None:
    return None if left is None or right is None else hash_pair(left, right)


# --- witness commitment (§3.4) ------------------------------------------------

P2POOL_WITNESS_RESERVED_VALUE = b'[P2Pool]' * 4
WITNESS_COMMITMENT_HEADER = bytes.fromhex('6a24aa21a9ed')


def witness_commitment_hash(wtxid_merkle_root: int, reserved_value: bytes = P2POOL_WITNESS_RESERVED_VALUE) -> int:
    return hash256(wtxid_merkle_root.to_bytes(32, 'little') + reserved_value)


def witness_commitment_script(commitment_hash: int) -> bytes:
    return WITNESS_COMMITMENT_HEADER + commitment_hash.to_bytes(32, 'little')


# --- P2P network address and merged-mining records (§2.6, §2.7) --------------

address_type = s.Struct('address', [('services', s.u64), ('address', s.IPv6Address), ('port', s.u16be)])

merkle_tx_type = s.Struct('merkle_tx', [
    ('tx', tx_id_type),
    ('block_hash', s.u256),
    ('merkle_link', merkle_link_type),
])

aux_pow_type = s.Struct('aux_pow', [
    ('merkle_tx', merkle_tx_type),
    ('merkle_link', merkle_link_type),
    ('parent_block_header', header_type),
])

aux_pow_coinbase_type = s.Struct('aux_pow_coinbase', [
    ('merkle_root', s.u256be),
    ('size', s.u32),
    ('nonce', s.u32),
])

MERGED_MINING_MAGIC = bytes.fromhex('fabe6d6d')


# --- targets, bits, difficulty, attempts (§5) ---------------------------------

_DIFF1_NUMERATOR = 0xffff0000 * 2**192 + 1


def bits_to_target(bits: int) -> int:
    """Target of a compact "nBits" value; no sign bit, no overflow check (as the original)."""
    exponent, mantissa = bits >> 24, bits & 0x00ffffff
    if exponent >= 3:
        return mantissa << (8 * (exponent - 3))
    return mantissa >> (8 * (3 - exponent))


def target_to_bits(target: int) -> int:
    """Compact encoding of `target` rounded down (from_target_upper_bound)."""
    n = target.to_bytes((target.bit_length() + 7) // 8, 'big') if target else b''
    if n and n[0] >= 0x80:
        n = b'\x00' + n
    return (len(n) << 24) | int.from_bytes((n + b'\x00\x00\x00')[:3], 'big')


def target_to_average_attempts(target: int) -> int:
    """Expected hashes to meet `target`: the "work" of a share (exact integer)."""
    return 2**256 // (target + 1)


def average_attempts_to_target(attempts: float) -> int:
    return min(int(2**256 / attempts - 1 + 0.5), 2**256 - 1)


def target_to_difficulty(target: int) -> float:
    return _DIFF1_NUMERATOR / (target + 1)


MAX_TARGET = 2**256 - 1


def difficulty_to_target(difficulty: float) -> int:
    """§5's formula, clamped to the valid targets [0, 2**256 - 1]: a difficulty so small that the
    quotient overflows a float (1e-300) is the easiest target, infinity the hardest (0).
    NaN and negative difficulties are not difficulties: ValueError."""
    if difficulty != difficulty or difficulty < 0:
        raise ValueError('a difficulty must be a non-negative number, not %r' % (difficulty,))
    if difficulty == 0:
        return MAX_TARGET
    quotient = _DIFF1_NUMERATOR / difficulty
    if quotient == float('inf'):
        return MAX_TARGET
    return max(0, min(int(quotient - 1 + 0.5), MAX_TARGET))
