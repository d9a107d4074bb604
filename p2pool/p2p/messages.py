"""P2Pool peer messages: framing (p2p.md §1) and the 13 message payloads (§4).

A frame on the wire is

    PREFIX (8) || command (12, NUL padded) || length (u32 LE) || sha256d(payload)[:4] || payload

Every payload is declared once as a p2pool.bitcoin.serialize Struct in MESSAGE_TYPES;
decoded payloads are plain dicts keyed by field name. Shares travel as raw wrapper
records {'type': int, 'contents': bytes} (shares.md §2): turning them into share
objects is the sharechain's business, not this module's.

Errors, all ValueError subclasses from p2pool.bitcoin.serialize:

* DecodeError      -- a payload that is not a valid encoding of its message
  (UnknownCommand, a DecodeError, for a command this module does not know);
* EncodeError      -- fields that cannot be written as the message
  (MessageTooLong, an EncodeError, for a payload above the maximum size).

FrameDecoder turns an untrusted byte stream into events (Frame, BadChecksum,
OversizedFrame, OverLimitFrame, SkippedGarbage). It never raises on any input and never buffers
more than one frame's worth of bytes: the length field is checked against the
maximum payload size before the payload is waited for.
"""
import functools
import struct
from collections import namedtuple
from typing import Any

from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.data import address_type, header_type, tx_type
from p2pool.bitcoin.hashes import sha256d

DecodeError = s.DecodeError
EncodeError = s.EncodeError

#: maximum payload size of the jtoomim lineage (protocol 3501), the one this project speaks
MAX_PAYLOAD_SIZE = 32_000_000
#: maximum payload size of the original lineage (protocol 1700)
MAX_PAYLOAD_SIZE_ORIGINAL = 1_000_000

PREFIX_LENGTH = 8
COMMAND_LENGTH = 12
#: prefix + command + length + checksum
HEADER_LENGTH = PREFIX_LENGTH + COMMAND_LENGTH + 4 + 4


class UnknownCommand(DecodeError):
    """A command this protocol does not define (receivers ignore such frames)."""


class MessageTooLong(EncodeError):
    """An encoded payload exceeds the maximum payload size and cannot be split to fit."""


# --- payload types (§4) ---------------------------------------------------------------

#: shares.md §2: the wrapper every share travels in; contents stay unparsed here
share_wrapper_type = s.Struct('share_wrapper', [('type', s.VarInt), ('contents', s.VarStr)])

#: one entry of an `addrs` message
addr_record_type = s.Struct('addr_record', [('timestamp', s.u64), ('address', address_type)])

version_message = s.Struct('version', [
    ('version', s.u32),
    ('services', s.u64),
    ('addr_to', address_type),
    ('addr_from', address_type),
    ('nonce', s.u64),
    ('sub_version', s.VarStr),
    ('mode', s.u32),
    ('best_share_hash', s.PossiblyNone(0, s.u256)),
])
ping_message = s.Struct('ping', [])
#: the port is little-endian here, unlike address_type's big-endian port
addrme_message = s.Struct('addrme', [('port', s.u16)])
addrs_message = s.Struct('addrs', [('addrs', s.List(addr_record_type))])
getaddrs_message = s.Struct('getaddrs', [('count', s.u32)])
shares_message = s.Struct('shares', [('shares', s.List(share_wrapper_type))])
sharereq_message = s.Struct('sharereq', [
    ('id', s.u256),
    ('hashes', s.List(s.u256)),
    ('parents', s.VarInt),
    ('stops', s.List(s.u256)),
])
SHAREREPLY_RESULTS = {0: 'good', 1: 'too long', 2: 'unk2', 3: 'unk3', 4: 'unk4', 5: 'unk5', 6: 'unk6'}
sharereply_message = s.Struct('sharereply', [
    ('id', s.u256),
    ('result', s.Enum(s.VarInt, SHAREREPLY_RESULTS)),
    ('shares', s.List(share_wrapper_type)),
])
bestblock_message = s.Struct('bestblock', [('header', header_type)])
have_tx_message = s.Struct('have_tx', [('tx_hashes', s.List(s.u256))])
losing_tx_message = s.Struct('losing_tx', [('tx_hashes', s.List(s.u256))])
remember_tx_message = s.Struct('remember_tx', [
    ('tx_hashes', s.List(s.u256)),
    ('txs', s.List(tx_type)),
])
forget_tx_message = s.Struct('forget_tx', [('tx_hashes', s.List(s.u256))])

#: command name -> payload type, for every message of p2p.md §4
MESSAGE_TYPES = {t.name: t for t in (
    version_message, ping_message, addrme_message, addrs_message, getaddrs_message,
    shares_message, sharereq_message, sharereply_message, bestblock_message,
    have_tx_message, losing_tx_message, remember_tx_message, forget_tx_message,
)}

#: messages whose fields are all lists; a sender halves every list until each part fits
SPLITTABLE_COMMANDS = frozenset(
    name for name, t in MESSAGE_TYPES.items()
    if t.fields and all(isinstance(field_type, s.List) for _, field_type in t.fields))


def _message_type(command):
    try:
        return MESSAGE_TYPES[command]
    except (KeyError, TypeError):
        raise UnknownCommand('unknown command %r' % (command,)) from None


def decode_payload(command, payload) -> dict[str, Any]:
    """Decode the payload of `command` into a dict; raises DecodeError (or UnknownCommand)."""
    return _message_type(command).unpack(payload)


def encode_payload(command, fields) -> bytes:
    """Encode a dict of fields as the payload of `command`; raises EncodeError."""
    message_type = _message_type(command)
    try:
        return message_type.pack(fields)
    except EncodeError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
        # a malformed nested value (e.g. a transaction dict missing a key)
        raise EncodeError('%s: %s' % (command, e)) from None


# --- framing --------------------------------------------------------------------------

def checksum(payload) -> bytes:
    return sha256d(payload)[:4]


def _command_field(command):
    raw = command.encode('ascii') if isinstance(command, str) else bytes(command)
    if len(raw) >= COMMAND_LENGTH:
        raise EncodeError('command %r is longer than 11 characters' % (command,))
    return raw.ljust(COMMAND_LENGTH, b'\x00')


#: the padded command field of every known message
_COMMAND_FIELDS = {name: _command_field(name) for name in MESSAGE_TYPES}


def frame(prefix, command, payload, max_payload_size=MAX_PAYLOAD_SIZE, checksum=checksum) -> bytes:
    """Frame an encoded payload; MessageTooLong if it exceeds max_payload_size.

    `checksum` (payload -> 4 bytes) may be a memoised one, as for FrameDecoder."""
    if len(prefix) != PREFIX_LENGTH:
        raise EncodeError('the network prefix must be %d bytes' % PREFIX_LENGTH)
    if len(payload) > max_payload_size:
        raise MessageTooLong('%s payload of %d bytes exceeds the maximum of %d'
                             % (command, len(payload), max_payload_size))
    command_field = _COMMAND_FIELDS.get(command) or _command_field(command)
    return b''.join((prefix, command_field, len(payload).to_bytes(4, 'little'),
                     checksum(payload), payload))


def encode_message(prefix, command, fields, max_payload_size=MAX_PAYLOAD_SIZE) -> bytes:
    """One frame holding `fields`; MessageTooLong if it does not fit (see encode_messages)."""
    return frame(prefix, command, encode_payload(command, fields), max_payload_size)


def split_fields(command, fields, max_payload_size=MAX_PAYLOAD_SIZE) -> list[bytes]:
    """The payloads that carry `fields`, halving list messages until each part fits (§1).

    Returns a list of encoded payloads. Raises MessageTooLong when the message is not
    splittable or a single list item alone is too long.
    """
    payload = encode_payload(command, fields)
    if len(payload) <= max_payload_size:
        return [payload]
    if command not in SPLITTABLE_COMMANDS:
        raise MessageTooLong('%s payload of %d bytes exceeds the maximum of %d'
                             % (command, len(payload), max_payload_size))
    names = [name for name, _ in MESSAGE_TYPES[command].fields]
    if all(len(fields[name]) <= 1 for name in names):
        if sum(len(fields[name]) for name in names) <= 1:
            raise MessageTooLong('a single %s item of %d bytes exceeds the maximum of %d'
                                 % (command, len(payload), max_payload_size))
        # Halving would reproduce the message itself: give each item its own message.
        parts = [{other: (fields[name] if other == name else []) for other in names}
                 for name in names if fields[name]]
    else:
        parts = [{name: list(fields[name][:len(fields[name]) // 2]) for name in names},
                 {name: list(fields[name][len(fields[name]) // 2:]) for name in names}]
    return [p for part in parts for p in split_fields(command, part, max_payload_size)]


def encode_messages(prefix, command, fields, max_payload_size=MAX_PAYLOAD_SIZE, checksum=checksum) -> list[bytes]:
    """The frames that carry `fields`, split as the spec's senders do; see split_fields."""
    return [frame(prefix, command, payload, max_payload_size, checksum)
            for payload in split_fields(command, fields, max_payload_size)]


@functools.lru_cache(maxsize=64)
def fieldless_frames(prefix, command) -> tuple[bytes, ...]:
    """The frames of a message without fields (ping): the same bytes every time, made once."""
    return tuple(encode_messages(prefix, command, {}))


# --- receiving ------------------------------------------------------------------------

#: a complete frame with a correct checksum (payload not decoded yet)
Frame = namedtuple('Frame', 'command payload')
#: a complete frame whose checksum did not match; its bytes were dropped
BadChecksum = namedtuple('BadChecksum', 'command length')
#: a header announcing more than the maximum payload; only the 24 bytes up to the
#: length field were dropped and scanning resumed (§1)
OversizedFrame = namedtuple('OversizedFrame', 'command length')
#: a header announcing more than the receiver's limit for that command (FrameDecoder's
#: payload_limit); dropped like an OversizedFrame, before any of its payload is buffered
OverLimitFrame = namedtuple('OverLimitFrame', 'command length limit')
#: bytes skipped while scanning for the prefix
SkippedGarbage = namedtuple('SkippedGarbage', 'count')


def _command_name(raw):
    return raw.rstrip(b'\x00').decode('latin-1')


#: prefix, command field, payload length, checksum: a frame header in one unpack
_HEADER = struct.Struct('<%ds%dsI4s' % (PREFIX_LENGTH, COMMAND_LENGTH))
#: the padded command field of every known message -> its name (the others go the slow way)
_KNOWN_COMMAND_FIELDS = {field: name for name, field in _COMMAND_FIELDS.items()}


@functools.lru_cache(maxsize=64)
def _fixed_frame_table(limits: tuple[tuple[str, int], ...], max_payload_size: int) -> dict[bytes, tuple[str, int]]:
    """whole_frame's table: the padded command field -> (command, its limit within max_payload_size).
    One dict for every connection with the same limits (made at each handshake otherwise): never changed."""
    return {_COMMAND_FIELDS[command]: (command, min(limit, max_payload_size))
            for command, limit in limits if command in _COMMAND_FIELDS}


#: the messages without fields (ping): each is one frame, the same bytes on every connection of a network
_FIELDLESS_COMMANDS = tuple(name for name, message_type in MESSAGE_TYPES.items() if not message_type.fields)


@functools.lru_cache(maxsize=64)
def _fieldless_frame_table(prefix: bytes, checksum: Any) -> dict[bytes, str]:
    """whole_frame's table of the frames of the fieldless messages -> their command (one per prefix
    and checksum function; never changed). Such a frame has an empty payload, within every limit."""
    return {frame(prefix, command, b'', checksum=checksum): command for command in _FIELDLESS_COMMANDS}


class FrameDecoder:
    """Incremental, resynchronising frame reader for one connection.

        decoder = FrameDecoder(prefix)
        decoder.feed(chunk)
        while (event := decoder.next_event()) is not None:
            ...

    Buffered bytes never exceed one header, one payload of at most max_payload_size
    bytes (or of payload_limit(command), when given: a receiver's per-command limit,
    asked when a header arrives) and the last chunk fed.
    """

    def __init__(self, prefix, max_payload_size=MAX_PAYLOAD_SIZE, payload_limit=None, checksum=checksum) -> None:
        if len(prefix) != PREFIX_LENGTH:
            raise ValueError('the network prefix must be %d bytes' % PREFIX_LENGTH)
        self.prefix = bytes(prefix)
        self.max_payload_size = max_payload_size
        self.payload_limit = payload_limit
        self.fixed_limits = {}
        self.checksum = checksum    # payload -> its 4 checksum bytes (a memoised one may be given)
        self._fieldless_frames = _fieldless_frame_table(self.prefix, checksum)
        self._buffer = bytearray()
        self.garbage_bytes = 0  # total skipped so far, for logs

    @property
    def fixed_limits(self) -> dict[str, int]:
        """command -> limit for the commands whose limit is fixed now (asked before payload_limit)."""
        return self._fixed_limits

    @fixed_limits.setter
    def fixed_limits(self, limits: dict[str, int]) -> None:
        self._fixed_limits = limits
        self._fixed_frames = _fixed_frame_table(tuple(limits.items()), self.max_payload_size)

    def feed(self, data) -> None:
        self._buffer += data

    def whole_frame(self, data: bytes) -> tuple[str, bytes] | None:
        """(command, payload) of `data` when nothing is buffered and `data` is exactly one frame
        of a known command, within the limits and with a matching checksum; None otherwise,
        and then the caller feeds `data` and reads the events (which say what is wrong).

        A peer's bytes mostly come one whole message per read: this takes such a read without
        copying it through the buffer."""
        if self._buffer or type(data) is not bytes:
            return None
        length = len(data) - HEADER_LENGTH
        if length <= 0:
            if length < 0:
                return None
            # a ping (about a fifth of all messages): known bytes, so no header to unpack, no checksum to compute
            command = self._fieldless_frames.get(data)
            if command is not None:
                return command, b''
        prefix, command_field, announced, expected = _HEADER.unpack_from(data)
        fixed = self._fixed_frames.get(command_field)
        if fixed is not None:   # one lookup for the command and its limit, past the handshake
            command, limit = fixed
        else:
            known = _KNOWN_COMMAND_FIELDS.get(command_field)
            if known is None:
                return None
            command, limit = known, self.max_payload_size
            if self.payload_limit is not None:
                limit = min(limit, self.payload_limit(command))
        if prefix != self.prefix or announced != length or length > limit:
            return None
        payload = data[HEADER_LENGTH:]
        if self.checksum(payload) != expected:
            return None
        return command, payload

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_event(self) -> Any:
        """The next event the buffered bytes allow, or None when more bytes are needed."""
        buffer = self._buffer
        if not buffer:
            return None
        start = buffer.find(self.prefix)
        if start != 0:
            # Keep a tail that may be the beginning of a prefix split across chunks.
            skip = start if start > 0 else max(0, len(buffer) - (PREFIX_LENGTH - 1))
            if skip == 0:
                return None
            del buffer[:skip]
            self.garbage_bytes += skip
            return SkippedGarbage(skip)
        if len(buffer) < PREFIX_LENGTH + COMMAND_LENGTH + 4:
            return None
        command = _command_name(buffer[PREFIX_LENGTH:PREFIX_LENGTH + COMMAND_LENGTH])
        length = int.from_bytes(buffer[PREFIX_LENGTH + COMMAND_LENGTH:HEADER_LENGTH - 4], 'little')
        if length > self.max_payload_size:
            del buffer[:HEADER_LENGTH - 4]
            return OversizedFrame(command, length)
        if self.payload_limit is not None:
            limit = self.payload_limit(command)
            if length > limit:
                del buffer[:HEADER_LENGTH - 4]
                return OverLimitFrame(command, length, limit)
        end = HEADER_LENGTH + length
        if len(buffer) < end:
            return None
        payload = bytes(buffer[HEADER_LENGTH:end])
        expected = bytes(buffer[HEADER_LENGTH - 4:HEADER_LENGTH])
        del buffer[:end]
        if self.checksum(payload) != expected:
            return BadChecksum(command, length)
        return Frame(command, payload)

    def events(self, data=b'') -> list[Any]:
        """Feed `data` and return every event now available, as a list."""
        self.feed(data)
        found = []
        while (event := self.next_event()) is not None:
            found.append(event)
        return found
