"""Bitcoin script helpers for the parent chain (serialization.md §4).

What P2Pool needs from script is small: build push sequences (the BIP34 height,
merged-mining data and coinbase text in the coinbase), build the few output
scripts a share's generation transaction contains, read the BIP34 height back
for display, and parse/count signature operations of arbitrary scripts.

Every function that is handed malformed input raises ScriptError (a ValueError),
except read_bip34_height, which is for display and returns None instead.
"""
from collections.abc import Iterable, Iterator
from typing import NamedTuple

Bytes = bytes | bytearray | memoryview


class ScriptError(ValueError):
    """A script that cannot be built or parsed."""


# Opcodes used by name in this package.
OP_0 = 0x00
OP_PUSHDATA1 = 0x4c
OP_PUSHDATA2 = 0x4d
OP_PUSHDATA4 = 0x4e
OP_1NEGATE = 0x4f
OP_1 = 0x51
OP_16 = 0x60
OP_RETURN = 0x6a
OP_DUP = 0x76
OP_EQUAL = 0x87
OP_EQUALVERIFY = 0x88
OP_HASH160 = 0xa9
OP_CHECKSIG = 0xac
OP_CHECKSIGVERIFY = 0xad
OP_CHECKMULTISIG = 0xae
OP_CHECKMULTISIGVERIFY = 0xaf

# Names for disassembly. Pushes and OP_1..OP_16 are rendered separately.
_OPCODE_NAMES = {
    0x4f: 'OP_1NEGATE', 0x50: 'OP_RESERVED', 0x61: 'OP_NOP', 0x62: 'OP_VER', 0x63: 'OP_IF',
    0x64: 'OP_NOTIF', 0x65: 'OP_VERIF', 0x66: 'OP_VERNOTIF', 0x67: 'OP_ELSE', 0x68: 'OP_ENDIF',
    0x69: 'OP_VERIFY', 0x6a: 'OP_RETURN', 0x6b: 'OP_TOALTSTACK', 0x6c: 'OP_FROMALTSTACK',
    0x6d: 'OP_2DROP', 0x6e: 'OP_2DUP', 0x6f: 'OP_3DUP', 0x70: 'OP_2OVER', 0x71: 'OP_2ROT',
    0x72: 'OP_2SWAP', 0x73: 'OP_IFDUP', 0x74: 'OP_DEPTH', 0x75: 'OP_DROP', 0x76: 'OP_DUP',
    0x77: 'OP_NIP', 0x78: 'OP_OVER', 0x79: 'OP_PICK', 0x7a: 'OP_ROLL', 0x7b: 'OP_ROT',
    0x7c: 'OP_SWAP', 0x7d: 'OP_TUCK', 0x7e: 'OP_CAT', 0x7f: 'OP_SUBSTR', 0x80: 'OP_LEFT',
    0x81: 'OP_RIGHT', 0x82: 'OP_SIZE', 0x83: 'OP_INVERT', 0x84: 'OP_AND', 0x85: 'OP_OR',
    0x86: 'OP_XOR', 0x87: 'OP_EQUAL', 0x88: 'OP_EQUALVERIFY', 0x89: 'OP_RESERVED1',
    0x8a: 'OP_RESERVED2', 0x8b: 'OP_1ADD', 0x8c: 'OP_1SUB', 0x8d: 'OP_2MUL', 0x8e: 'OP_2DIV',
    0x8f: 'OP_NEGATE', 0x90: 'OP_ABS', 0x91: 'OP_NOT', 0x92: 'OP_0NOTEQUAL', 0x93: 'OP_ADD',
    0x94: 'OP_SUB', 0x95: 'OP_MUL', 0x96: 'OP_DIV', 0x97: 'OP_MOD', 0x98: 'OP_LSHIFT',
    0x99: 'OP_RSHIFT', 0x9a: 'OP_BOOLAND', 0x9b: 'OP_BOOLOR', 0x9c: 'OP_NUMEQUAL',
    0x9d: 'OP_NUMEQUALVERIFY', 0x9e: 'OP_NUMNOTEQUAL', 0x9f: 'OP_LESSTHAN',
    0xa0: 'OP_GREATERTHAN', 0xa1: 'OP_LESSTHANOREQUAL', 0xa2: 'OP_GREATERTHANOREQUAL',
    0xa3: 'OP_MIN', 0xa4: 'OP_MAX', 0xa5: 'OP_WITHIN', 0xa6: 'OP_RIPEMD160', 0xa7: 'OP_SHA1',
    0xa8: 'OP_SHA256', 0xa9: 'OP_HASH160', 0xaa: 'OP_HASH256', 0xab: 'OP_CODESEPARATOR',
    0xac: 'OP_CHECKSIG', 0xad: 'OP_CHECKSIGVERIFY', 0xae: 'OP_CHECKMULTISIG',
    0xaf: 'OP_CHECKMULTISIGVERIFY', 0xb0: 'OP_NOP1', 0xb1: 'OP_CHECKLOCKTIMEVERIFY',
    0xb2: 'OP_CHECKSEQUENCEVERIFY', 0xb3: 'OP_NOP4', 0xb4: 'OP_NOP5', 0xb5: 'OP_NOP6',
    0xb6: 'OP_NOP7', 0xb7: 'OP_NOP8', 0xb8: 'OP_NOP9', 0xb9: 'OP_NOP10', 0xba: 'OP_CHECKSIGADD',
}

# Legacy (pre-segwit) signature-operation weights, as bitcoind counts them
# without looking at the preceding push: a bare multisig costs the maximum 20.
_SIGOP_WEIGHTS = {OP_CHECKSIG: 1, OP_CHECKSIGVERIFY: 1, OP_CHECKMULTISIG: 20, OP_CHECKMULTISIGVERIFY: 20}


# --- building ---------------------------------------------------------------

def push_data(data: bytes | bytearray) -> bytes:
    """One data push of `data` with the shortest of the four push forms (§4.1)."""
    if not isinstance(data, (bytes, bytearray)):
        raise ScriptError('can only push bytes, got %s' % type(data).__name__)
    n = len(data)
    if n < OP_PUSHDATA1:
        prefix = bytes([n])
    elif n <= 0xff:
        prefix = bytes([OP_PUSHDATA1, n])
    elif n <= 0xffff:
        prefix = bytes([OP_PUSHDATA2]) + n.to_bytes(2, 'little')
    elif n <= 0xffffffff:
        prefix = bytes([OP_PUSHDATA4]) + n.to_bytes(4, 'little')
    else:
        raise ScriptError('push of %d bytes is too long' % n)
    return prefix + bytes(data)


def encode_script_number(value: int) -> bytes:
    """Minimal signed little-endian encoding (sign in bit 7 of the last byte); 0 -> b''."""
    magnitude = abs(value)
    big_endian = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, 'big')
    if big_endian and big_endian[0] & 0x80:
        big_endian = b'\x00' + big_endian   # keep the sign bit free
    if value < 0:
        big_endian = bytes([big_endian[0] | 0x80]) + big_endian[1:]
    return big_endian[::-1]


def decode_script_number(data: Bytes) -> int:
    """Inverse of encode_script_number (also accepts non-minimal encodings)."""
    data = bytes(data)
    if not data:
        return 0
    magnitude = int.from_bytes(data[:-1] + bytes([data[-1] & 0x7f]), 'little')
    return -magnitude if data[-1] & 0x80 else magnitude


def push_int(value: int) -> bytes:
    """Push of an integer: OP_1NEGATE / OP_1..OP_16 when possible, else a data push."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScriptError('expected an int, got %s' % type(value).__name__)
    if value == -1 or 1 <= value <= 16:
        return bytes([0x50 + value])
    return push_data(encode_script_number(value))


def push_script(items: Iterable[int | bytes | bytearray]) -> bytes:
    """Concatenated pushes of `items` (ints and byte strings), serialization.md §4.1."""
    out: list[bytes] = []
    for item in items:
        if isinstance(item, (bytes, bytearray)):
            out.append(push_data(item))
        else:
            out.append(push_int(item))
    return b''.join(out)


def bip34_height_push(height: int) -> bytes:
    """The BIP34 block-height push that starts every coinbase script."""
    if isinstance(height, bool) or not isinstance(height, int) or height < 0:
        raise ScriptError('block height must be a non-negative int, got %r' % (height,))
    return push_int(height)


MIN_COINBASE_SIZE = 2


def coinbase_script(height: int, extra_pushes: Iterable[int | bytes | bytearray] = (), flags: bytes = b'',
                    max_size: int = 100) -> bytes:
    """Coinbase input script (worker.md §2.3): height push, extra pushes, then the
    template's coinbase flags, truncated to `max_size` bytes even if that cuts a push."""
    if not isinstance(flags, (bytes, bytearray)):
        raise ScriptError('coinbase flags must be bytes')
    script = (bip34_height_push(height) + push_script(extra_pushes) + bytes(flags))[:max_size]
    # Consensus (bitcoind's bad-cb-length, the share's 2..100 rule) wants at least two
    # bytes; heights 1-16 push as a single opcode, so pad with OP_0.
    return script + b'\x00' * (MIN_COINBASE_SIZE - len(script)) if len(script) < MIN_COINBASE_SIZE else script


def _exact_hash(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise ScriptError('%s must be %d bytes' % (what, size))
    return bytes(value)


def p2pkh_script(hash20: bytes) -> bytes:
    """OP_DUP OP_HASH160 <20 bytes> OP_EQUALVERIFY OP_CHECKSIG."""
    return b'\x76\xa9\x14' + _exact_hash(hash20, 20, 'P2PKH hash') + b'\x88\xac'


def p2sh_script(hash20: bytes) -> bytes:
    """OP_HASH160 <20 bytes> OP_EQUAL."""
    return b'\xa9\x14' + _exact_hash(hash20, 20, 'P2SH hash') + b'\x87'


def p2pk_script(pubkey: bytes) -> bytes:
    """<pubkey> OP_CHECKSIG (the donation output's form)."""
    if not isinstance(pubkey, (bytes, bytearray)) or not pubkey:
        raise ScriptError('public key must be non-empty bytes')
    return push_data(pubkey) + bytes([OP_CHECKSIG])


def op_return_script(data: bytes) -> bytes:
    """OP_RETURN <data>: the share commitment output is op_return_script(ref_hash || nonce)."""
    return bytes([OP_RETURN]) + push_data(data)


WITNESS_COMMITMENT_PREFIX = bytes.fromhex('6a24aa21a9ed')


def witness_commitment_script(commitment32: bytes | int) -> bytes:
    """BIP141 commitment output: 6a24aa21a9ed || 32 commitment bytes.

    Accepts the raw 32 bytes or the hash256-style integer (packed little-endian)."""
    if isinstance(commitment32, int) and not isinstance(commitment32, bool):
        if not 0 <= commitment32 < 1 << 256:
            raise ScriptError('witness commitment out of range')
        commitment32 = commitment32.to_bytes(32, 'little')
    return WITNESS_COMMITMENT_PREFIX + _exact_hash(commitment32, 32, 'witness commitment')


# --- parsing ----------------------------------------------------------------

class ScriptOp(NamedTuple):
    """One operation: `data` is the pushed bytes for 0x00..0x4e, None otherwise."""
    opcode: int
    data: bytes | None


def iter_script(script: Bytes) -> Iterator[ScriptOp]:
    """Yield the ScriptOps of `script`; raise ScriptError at a push that runs off the end."""
    if not isinstance(script, (bytes, bytearray, memoryview)):
        raise ScriptError('script must be bytes, got %s' % type(script).__name__)
    script = bytes(script)
    pos = 0
    while pos < len(script):
        opcode = script[pos]
        pos += 1
        if opcode > OP_PUSHDATA4:
            yield ScriptOp(opcode, None)
            continue
        if opcode < OP_PUSHDATA1:
            length = opcode
        else:
            size_len = {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2, OP_PUSHDATA4: 4}[opcode]
            if pos + size_len > len(script):
                raise ScriptError('push length field runs past the end of the script')
            length = int.from_bytes(script[pos:pos + size_len], 'little')
            pos += size_len
        if pos + length > len(script):
            raise ScriptError('push of %d bytes runs past the end of the script' % length)
        yield ScriptOp(opcode, script[pos:pos + length])
        pos += length


def parse_script(script: Bytes) -> list[ScriptOp]:
    """All operations of `script` as a list of ScriptOp (vector A8)."""
    return list(iter_script(script))


def pushed_bytes(op: ScriptOp) -> bytes | None:
    """The bytes an operation puts on the stack if it is a push, else None.

    OP_1NEGATE and OP_1..OP_16 count as pushes of their script-number encodings
    (b'\\x81' and bytes([n])), which is how the original reads a BIP34 height."""
    if op.data is not None:
        return op.data
    if op.opcode == OP_1NEGATE:
        return b'\x81'
    if OP_1 <= op.opcode <= OP_16:
        return bytes([op.opcode - 0x50])
    return None


def sigop_count(script: Bytes) -> int:
    """Legacy signature-operation count; counting stops at a malformed push, as in bitcoind."""
    if not isinstance(script, (bytes, bytearray, memoryview)):
        raise ScriptError('script must be bytes, got %s' % type(script).__name__)
    count = 0
    try:
        for op in iter_script(script):
            count += _SIGOP_WEIGHTS.get(op.opcode, 0)
    except ScriptError:
        pass
    return count


def read_bip34_height(coinbase_script_bytes: Bytes) -> int | None:
    """Block height from the first push of a coinbase script, or None (§4.2, display only).

    The pushed bytes are read little-endian and the result negated if the top bit of
    the last byte is set; the sign bit is *not* cleared first, reproducing the
    original display (irrelevant for real, positive heights)."""
    try:
        first = next(iter_script(coinbase_script_bytes), None)
    except ScriptError:
        return None
    if first is None:
        return None
    data = pushed_bytes(first)
    if data is None:
        return None
    if not data:
        return 0
    value = int.from_bytes(data, 'little')
    return -value if data[-1] & 0x80 else value


def opcode_name(opcode: int) -> str:
    """Conventional name of a non-push opcode ('OP_UNKNOWN_0xNN' when unassigned)."""
    if OP_1 <= opcode <= OP_16:
        return 'OP_%d' % (opcode - 0x50)
    if opcode == OP_0:
        return 'OP_0'
    return _OPCODE_NAMES.get(opcode, 'OP_UNKNOWN_0x%02x' % opcode)


def disassemble(script: Bytes) -> str:
    """Human-readable script text for the inspector; never raises on bytes input."""
    words: list[str] = []
    try:
        for op in iter_script(script):
            if op.data is None:
                words.append(opcode_name(op.opcode))
            elif op.data:
                words.append(op.data.hex())
            else:
                words.append('OP_0')
    except ScriptError as e:
        words.append('[error: %s]' % e)
    return ' '.join(words)
