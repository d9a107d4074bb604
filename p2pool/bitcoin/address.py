"""Payout addresses of the parent chain and their output scripts (serialization.md §6).

Three encodings are handled: Base58Check (every network), bech32 (BIP173, BTC/LTC
families; bech32m is deliberately not supported, like the original) and CashAddr
(BCH/BSV families). Network-dependent functions take a "parent" object: anything
with the upper-case attributes of the network loader's `net.PARENT`:

    ADDRESS_VERSION        Base58 version of P2PKH addresses
    ADDRESS_P2SH_VERSION   Base58 version of P2SH addresses (None/absent: no P2SH)
    HUMAN_READABLE_PART    bech32 HRP, or the cashaddr prefix on cash networks
    SYMBOL                 BCH, tBCH, BSV, tBSV select cashaddr instead of bech32

`AddressParams` builds such an object from explicit values.

The one consensus-critical function is `address_to_script`, whose `padding`
flag reproduces the v34/v35 rendering quirk (§6.4): pass
`padding_for_share_version(share.VERSION)`.

Every decoding function raises AddressError (a ValueError) for bad input and
nothing else; `script_to_address` returns None for scripts it cannot render.
"""
from collections.abc import Iterable
from typing import Any, NamedTuple

from p2pool.bitcoin.hashes import hash160_bytes, sha256d
from p2pool.bitcoin.script import p2pkh_script, p2sh_script


class AddressError(ValueError):
    """A string that is not a valid address for the network in question."""


class WrongNetworkError(AddressError):
    """A well-formed address that belongs to another network (or another family)."""


CASH_SYMBOLS = frozenset({'BCH', 'tBCH', 'BSV', 'tBSV'})

#: a network's PARENT: any object with (some of) the upper-case attributes above, read with getattr
Parent = Any


class AddressParams(NamedTuple):
    ADDRESS_VERSION: int
    ADDRESS_P2SH_VERSION: int | None = None
    HUMAN_READABLE_PART: str | None = None
    SYMBOL: str = ''


def is_cash_network(parent: Parent) -> bool:
    return getattr(parent, 'SYMBOL', None) in CASH_SYMBOLS


def padding_for_share_version(share_version: int) -> bool:
    """The §6.4 rendering rule of a share: padding ON iff its version is >= 35."""
    return share_version >= 35


def _shown(text: str) -> str:
    """repr of untrusted text, shortened so error messages stay readable."""
    return repr(text if len(text) <= 100 else text[:100] + '...')


# --- Base58 / Base58Check (§6.1) --------------------------------------------

BASE58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
_BASE58_VALUES = {c: i for i, c in enumerate(BASE58_ALPHABET)}
# 25 bytes never take more than 35 characters; longer input is rejected before the
# quadratic big-number work.
_MAX_BASE58CHECK_CHARS = 50


def base58_encode(data: bytes | bytearray) -> str:
    data = bytes(data)
    zeros = len(data) - len(data.lstrip(b'\x00'))
    number = int.from_bytes(data, 'big')
    digits: list[str] = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(BASE58_ALPHABET[digit])
    return '1' * zeros + ''.join(reversed(digits))


def base58_decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise AddressError('address must be text, got %s' % type(text).__name__)
    number = 0
    for char in text:
        value = _BASE58_VALUES.get(char)
        if value is None:
            raise AddressError('invalid Base58 character %r' % char)
        number = number * 58 + value
    zeros = len(text) - len(text.lstrip('1'))
    return b'\x00' * zeros + number.to_bytes((number.bit_length() + 7) // 8, 'big')


def base58check_encode(version: int, hash20: bytes | bytearray) -> str:
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= 255:
        raise AddressError('Base58 version must be an int 0..255, got %r' % (version,))
    if not isinstance(hash20, (bytes, bytearray)) or len(hash20) != 20:
        raise AddressError('Base58Check payload must be 20 bytes')
    body = bytes([version]) + bytes(hash20)
    return base58_encode(body + sha256d(body)[:4])


def base58check_decode(text: str) -> tuple[int, bytes]:
    """(version, 20 hash bytes) of a Base58Check address."""
    if isinstance(text, str) and len(text) > _MAX_BASE58CHECK_CHARS:
        raise AddressError('too long for a Base58Check address')
    raw = base58_decode(text)
    if len(raw) != 25:
        raise AddressError('Base58 data is %d bytes, expected 25' % len(raw))
    if sha256d(raw[:21])[:4] != raw[21:]:
        raise AddressError('bad checksum')
    return raw[0], raw[1:21]


def pubkey_hash_to_address(pubkey_hash: int, version: int) -> str:
    """Base58 P2PKH address of a pubkey_hash integer (hash160 bytes read little-endian)."""
    if isinstance(pubkey_hash, bool) or not isinstance(pubkey_hash, int) or not 0 <= pubkey_hash < 1 << 160:
        raise AddressError('pubkey_hash must be an int below 2**160')
    return base58check_encode(version, pubkey_hash.to_bytes(20, 'little'))


# --- shared by bech32 and cashaddr ------------------------------------------

BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'
_BECH32_VALUES = {c: i for i, c in enumerate(BECH32_CHARSET)}


def convertbits(data: Iterable[int], frombits: int, tobits: int, pad: bool = True) -> list[int] | None:
    """Regroup a sequence of `frombits`-bit values into `tobits`-bit values (§6.3).

    Returns a list, or None if a value is out of range or (without `pad`) the
    leftover bits are too many or not all zero."""
    accumulator = 0
    held_bits = 0
    out: list[int] = []
    out_mask = (1 << tobits) - 1
    # Only the bits not yet emitted matter; masking keeps the accumulator small.
    keep_mask = (1 << (frombits + tobits - 1)) - 1
    for value in data:
        if value < 0 or value >> frombits:
            return None
        accumulator = ((accumulator << frombits) | value) & keep_mask
        held_bits += frombits
        while held_bits >= tobits:
            held_bits -= tobits
            out.append((accumulator >> held_bits) & out_mask)
    if pad:
        if held_bits:
            out.append((accumulator << (tobits - held_bits)) & out_mask)
    elif held_bits >= frombits or (accumulator << (tobits - held_bits)) & out_mask:
        return None
    return out


def _bytes_to_groups_of_five(data: bytes) -> list[int]:
    groups = convertbits(data, 8, 5, True)
    assert groups is not None, 'bytes always regroup into padded 5-bit groups'
    return groups


def _check_text(address: str) -> str:
    """Common first checks of bech32 and cashaddr: printable ASCII, one case. Returns lower case."""
    if not isinstance(address, str):
        raise AddressError('address must be text, got %s' % type(address).__name__)
    if any(not 33 <= ord(c) <= 126 for c in address):
        raise AddressError('address contains a character outside printable ASCII')
    if address.lower() != address and address.upper() != address:
        raise AddressError('address mixes upper and lower case')
    return address.lower()


def _values_of(text: str) -> list[int]:
    values: list[int] = []
    for char in text:
        value = _BECH32_VALUES.get(char)
        if value is None:
            raise AddressError('invalid character %r in data part' % char)
        values.append(value)
    return values


def _groups_of_five(value: int, count: int) -> list[int]:
    """`count` 5-bit groups of `value`, most significant first."""
    return [(value >> 5 * (count - 1 - i)) & 31 for i in range(count)]


# --- bech32 (BIP173, §6.3) --------------------------------------------------

_BECH32_GENERATOR = (0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3)


def bech32_polymod(values: Iterable[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = ((checksum & 0x1ffffff) << 5) ^ value
        for i in range(5):
            if (top >> i) & 1:
                checksum ^= _BECH32_GENERATOR[i]
    return checksum


def bech32_hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_checksum_from_polymod(polymod_value: int) -> list[int]:
    """The six checksum values for a polymod result over data followed by six zeros."""
    return _groups_of_five(polymod_value ^ 1, 6)


def bech32_create_checksum(hrp: str, data: Iterable[int]) -> list[int]:
    return bech32_checksum_from_polymod(bech32_polymod(bech32_hrp_expand(hrp) + list(data) + [0] * 6))


def _check_witness_program(witness_version: int, program: bytes) -> None:
    if not 0 <= witness_version <= 16:
        raise AddressError('witness version %d is above 16' % witness_version)
    if not 2 <= len(program) <= 40:
        raise AddressError('witness program of %d bytes (must be 2..40)' % len(program))
    if witness_version == 0 and len(program) not in (20, 32):
        raise AddressError('version 0 witness program of %d bytes (must be 20 or 32)' % len(program))


def bech32_encode(hrp: str, witness_version: int, program: bytes | bytearray) -> str:
    """Segwit address (bech32 checksum) for a witness version and program."""
    program = bytes(program)
    _check_witness_program(witness_version, program)
    if not hrp or any(not 33 <= ord(c) <= 126 for c in hrp) or hrp.lower() != hrp:
        raise AddressError('invalid human-readable part %r' % (hrp,))
    data = [witness_version] + _bytes_to_groups_of_five(program)
    address = hrp + '1' + ''.join(BECH32_CHARSET[v] for v in data + bech32_create_checksum(hrp, data))
    if len(address) > 90:
        raise AddressError('bech32 address would exceed 90 characters')
    return address


def bech32_parse(address: str) -> tuple[str, int, bytes]:
    """(hrp, witness version, program) of any well-formed segwit address."""
    text = _check_text(address)
    if len(text) > 90:
        raise AddressError('bech32 address longer than 90 characters')
    separator = text.rfind('1')
    if separator < 1:
        raise AddressError('no bech32 separator or empty human-readable part')
    if len(text) - separator - 1 < 6:
        raise AddressError('bech32 data part shorter than 6 characters')
    hrp = text[:separator]
    values = _values_of(text[separator + 1:])
    if bech32_polymod(bech32_hrp_expand(hrp) + values) != 1:
        raise AddressError('bad checksum')
    data = values[:-6]
    if not data:
        raise AddressError('bech32 address without witness version')
    regrouped = convertbits(data[1:], 5, 8, False)
    if regrouped is None:
        raise AddressError('bad padding in witness program')
    program = bytes(regrouped)
    _check_witness_program(data[0], program)
    return hrp, data[0], program


def bech32_decode(hrp: str, address: str) -> tuple[int, bytes]:
    """(witness version, program) of a segwit address that must use `hrp`."""
    address_hrp, witness_version, program = bech32_parse(address)
    if address_hrp != hrp:
        raise WrongNetworkError('address not for this net (bech32 prefix %r, expected %r)' % (address_hrp, hrp))
    return witness_version, program


# --- CashAddr (§6.3) --------------------------------------------------------

_CASHADDR_GENERATOR = (0x98f2bc8e61, 0x79b76d99e2, 0xf33e5fb3c4, 0xae2eabe2a8, 0x1e4f43e470)
CASHADDR_HASH_SIZES = (20, 24, 28, 32, 40, 48, 56, 64)   # indexed by the 3 size bits


def cashaddr_polymod(values: Iterable[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 35
        checksum = ((checksum & 0x07ffffffff) << 5) ^ value
        for i in range(5):
            if (top >> i) & 1:
                checksum ^= _CASHADDR_GENERATOR[i]
    return checksum ^ 1


def cashaddr_expand_prefix(prefix: str) -> list[int]:
    return [ord(c) & 31 for c in prefix] + [0]


def cashaddr_encode(prefix: str, kind: int, hash_bytes: bytes | bytearray) -> str:
    """'prefix:payload' for a type (0 = P2PKH, 1 = P2SH, up to 15) and a hash."""
    hash_bytes = bytes(hash_bytes)
    if not 0 <= kind <= 15:
        raise AddressError('cashaddr type must be 0..15')
    if len(hash_bytes) not in CASHADDR_HASH_SIZES:
        raise AddressError('cashaddr hash of %d bytes is not a standard size' % len(hash_bytes))
    if not prefix or any(not 33 <= ord(c) <= 126 for c in prefix) or prefix.lower() != prefix or ':' in prefix:
        raise AddressError('invalid cashaddr prefix %r' % (prefix,))
    version_byte = kind << 3 | CASHADDR_HASH_SIZES.index(len(hash_bytes))
    payload = _bytes_to_groups_of_five(bytes([version_byte]) + hash_bytes)
    checksum = _groups_of_five(cashaddr_polymod(cashaddr_expand_prefix(prefix) + payload + [0] * 8), 8)
    return prefix + ':' + ''.join(BECH32_CHARSET[v] for v in payload + checksum)


def cashaddr_decode(address: str, default_prefix: str | None = None) -> tuple[str, int, bytes]:
    """(prefix, type, hash bytes) of a cashaddr; `default_prefix` applies when none is written."""
    text = _check_text(address)
    if ':' in text:
        prefix, payload_text = text.rsplit(':', 1)
    elif default_prefix:
        prefix, payload_text = default_prefix, text
    else:
        raise AddressError('cashaddr without prefix')
    if not prefix:
        raise AddressError('empty cashaddr prefix')
    if not 8 < len(payload_text) <= 112:
        raise AddressError('cashaddr payload of %d characters (must be 9..112)' % len(payload_text))
    values = _values_of(payload_text)
    if cashaddr_polymod(cashaddr_expand_prefix(prefix) + values) != 0:
        raise AddressError('bad checksum')
    raw = convertbits(values[:-8], 5, 8, False)
    if not raw:
        raise AddressError('bad cashaddr payload padding')
    kind = (raw[0] & 0x78) >> 3
    hash_bytes = bytes(raw[1:])
    if len(hash_bytes) != CASHADDR_HASH_SIZES[raw[0] & 7]:
        raise AddressError('cashaddr hash length %d does not match its size bits' % len(hash_bytes))
    return prefix, kind, hash_bytes


# --- addresses of one parent network (§6.2-§6.4) ----------------------------

class DecodedAddress(NamedTuple):
    """kind: see address_kind; family: 'base58' | 'bech32' | 'cashaddr';
    version: Base58 version byte, witness version or cashaddr type; payload: hash/program bytes."""
    kind: str
    family: str
    version: int
    payload: bytes


def _witness_kind(witness_version: int, program: bytes) -> str:
    if witness_version == 0:
        return 'p2wpkh' if len(program) == 20 else 'p2wsh'
    return 'witness-v%d' % witness_version


def _cashaddr_kind(kind: int) -> str:
    return {0: 'cashaddr-p2pkh', 1: 'cashaddr-p2sh'}.get(kind, 'cashaddr-type-%d' % kind)


def decode_address(address: str, parent: Parent) -> DecodedAddress:
    """Decode in the [jt] order: Base58Check, then bech32 or (cash networks) cashaddr."""
    if not isinstance(address, str):
        raise AddressError('address must be text, got %s' % type(address).__name__)
    p2sh_version = getattr(parent, 'ADDRESS_P2SH_VERSION', None)
    hrp = getattr(parent, 'HUMAN_READABLE_PART', None)
    failures: list[str] = []
    try:
        version, hash20 = base58check_decode(address)
    except AddressError as e:
        failures.append('not Base58Check (%s)' % e)
    else:
        if version == getattr(parent, 'ADDRESS_VERSION', None):
            return DecodedAddress('p2pkh', 'base58', version, hash20)
        if p2sh_version is not None and version == p2sh_version:
            return DecodedAddress('p2sh', 'base58', version, hash20)
        raise WrongNetworkError('address not for this net (Base58 version %d)' % version)
    if hrp and is_cash_network(parent):
        try:
            prefix, kind, hash_bytes = cashaddr_decode(address, hrp)
        except AddressError as e:
            failures.append('not cashaddr (%s)' % e)
        else:
            if prefix != hrp:
                raise WrongNetworkError('address not for this net (cashaddr prefix %r, expected %r)'
                                        % (prefix, hrp))
            return DecodedAddress(_cashaddr_kind(kind), 'cashaddr', kind, hash_bytes)
    elif hrp:
        try:
            witness_version, program = bech32_decode(hrp, address)
        except WrongNetworkError:
            raise
        except AddressError as e:
            failures.append('not bech32 (%s)' % e)
        else:
            return DecodedAddress(_witness_kind(witness_version, program), 'bech32', witness_version, program)
    raise AddressError('invalid address %s: %s' % (_shown(address), '; '.join(failures)))


def address_kind(address: str, parent: Parent) -> str:
    """'p2pkh', 'p2sh', 'p2wpkh', 'p2wsh', 'witness-vN', 'cashaddr-p2pkh', 'cashaddr-p2sh'
    or 'cashaddr-type-N' (the last two kinds of address cannot be paid by P2Pool)."""
    return decode_address(address, parent).kind


def _rerender(payload: bytes, padding: bool) -> bytes:
    """The §6.4 quirk: bytes -> big-endian integer -> hex text -> bytes."""
    number = int.from_bytes(payload, 'big')
    text = '{:040x}'.format(number) if padding else '{:x}'.format(number)
    if len(text) % 2:
        raise AddressError('program %s has an odd number of hex digits when rendered %s padding'
                           % (payload.hex(), 'with' if padding else 'without'))
    return bytes.fromhex(text)


def bech32_payout_script(program: bytes | bytearray, padding: bool) -> bytes:
    """[jt] script for a bech32 address: always OP_0 <re-rendered program> (quirk)."""
    rendered = _rerender(bytes(program), padding)
    return b'\x00' + bytes([len(rendered)]) + rendered


def cashaddr_payout_script(kind: int, hash_bytes: bytes | bytearray, padding: bool) -> bytes:
    """[jt] script for a cashaddr of type 0 (P2PKH-style) or 1 (P2SH-style)."""
    if kind not in (0, 1):
        raise AddressError('cashaddr type %d cannot be turned into a script' % kind)
    rendered = _rerender(bytes(hash_bytes), padding)
    push = bytes([len(rendered)]) + rendered
    return b'\x76\xa9' + push + b'\x88\xac' if kind == 0 else b'\xa9' + push + b'\x87'


def address_to_script(address: str, parent: Parent, padding: bool = True) -> bytes:
    """Output script paying `address` ([jt] rules, §6.4; consensus-critical for v34/v35).

    padding: True for shares of version >= 35, False for version 34."""
    decoded = decode_address(address, parent)
    if decoded.family == 'base58':
        return p2pkh_script(decoded.payload) if decoded.kind == 'p2pkh' else p2sh_script(decoded.payload)
    if decoded.family == 'bech32':
        return bech32_payout_script(decoded.payload, padding)
    return cashaddr_payout_script(decoded.version, decoded.payload, padding)


def address_to_pubkey_hash(address: str, parent: Parent) -> int:
    """[orig] payout address -> pubkey_hash integer; only Base58 P2PKH of this network (§6.2)."""
    version, hash20 = base58check_decode(address)
    if version != getattr(parent, 'ADDRESS_VERSION', None):
        raise WrongNetworkError('address not for this net (Base58 version %d)' % version)
    return int.from_bytes(hash20, 'little')


def _matches(script: bytes, head: bytes, tail: bytes) -> bytes | None:
    """The bytes between `head`+<length byte> and `tail` if `script` has that shape, else None."""
    inner_start = len(head) + 1
    if len(script) < inner_start + len(tail) or not script.startswith(head) or not script.endswith(tail):
        return None
    inner = script[inner_start:len(script) - len(tail)]
    return inner if script[len(head)] == len(inner) else None


def script_to_address(script: bytes | bytearray | memoryview, parent: Parent,
                      prefer_cashaddr: bool = False) -> str | None:
    """Address text for an output script, or None (§6.5, display only).

    P2PK (33/65-byte key) -> P2PKH address of hash160(key); P2PKH / P2SH -> Base58
    (or cashaddr on cash networks when `prefer_cashaddr`, or when the hash is not
    20 bytes); OP_0 with a 20/32-byte program -> bech32 on non-cash networks."""
    if not isinstance(script, (bytes, bytearray, memoryview)):
        return None
    script = bytes(script)
    cash = is_cash_network(parent)
    hrp = getattr(parent, 'HUMAN_READABLE_PART', None)
    try:
        pubkey = _matches(script, b'', b'\xac')
        if pubkey is not None and len(pubkey) in (33, 65):
            return base58check_encode(parent.ADDRESS_VERSION, hash160_bytes(pubkey))
        for head, tail, kind, version in ((b'\x76\xa9', b'\x88\xac', 0, getattr(parent, 'ADDRESS_VERSION', None)),
                                          (b'\xa9', b'\x87', 1, getattr(parent, 'ADDRESS_P2SH_VERSION', None))):
            hash_bytes = _matches(script, head, tail)
            if hash_bytes is None:
                continue
            if len(hash_bytes) == 20 and version is not None and not (cash and prefer_cashaddr):
                return base58check_encode(version, hash_bytes)
            if cash and hrp and len(hash_bytes) in CASHADDR_HASH_SIZES:
                return cashaddr_encode(hrp, kind, hash_bytes)
            return None
        program = _matches(script, b'\x00', b'')
        if program is not None and not cash and hrp and len(program) in (20, 32):
            return bech32_encode(hrp, 0, program)
    except AddressError:
        return None
    return None


# --- donation (§6.6) --------------------------------------------------------

DONATION_SCRIPT = bytes.fromhex(
    '4104ffd03de44a6e11b9917f3a29f9443283d9871c9d743ef30d5eddcd37094b64d1b3d8090496b532'
    '56786bf5c82932ec23c3b74d9f05a6f95a8b5529352656664bac')
DONATION_PUBKEY_HASH = int.from_bytes(hash160_bytes(DONATION_SCRIPT[1:-1]), 'little')


def donation_address(parent: Parent) -> str:
    """[jt] payout-map key of the donation: P2PKH address of the donation key's hash."""
    return pubkey_hash_to_address(DONATION_PUBKEY_HASH, parent.ADDRESS_VERSION)
