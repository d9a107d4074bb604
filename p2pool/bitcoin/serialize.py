"""Declarative wire types (serialization.md §1).

Every wire type is described once as a Type object; packing and unpacking are
derived from the description:

    header = Struct('header', [('version', u32), ('previous_block', PossiblyNone(0, u256)), ...])
    raw = header.pack({'version': 1, ...})
    record = header.unpack(raw)          # -> dict, rejects short and trailing data

Composite values are plain dicts keyed by field name. Decoding untrusted bytes
raises only DecodeError; encoding an unrepresentable value raises EncodeError.
Both derive from ValueError.
"""
import abc
import functools
import ipaddress
import struct as _struct
from collections.abc import Iterable, Mapping
from typing import Any, Generic, Literal, TypeVar

T = TypeVar('T')


class DecodeError(ValueError):
    """Bytes that are not a valid encoding of the expected type."""


class EncodeError(ValueError):
    """A value that cannot be written as the given type."""


class Type(abc.ABC, Generic[T]):
    """Base of every wire type: subclasses implement read() and write(); T is the decoded value's type."""

    #: the fewest bytes an encoding can take; lets List refuse absurd counts early
    min_size = 0

    @abc.abstractmethod
    def read(self, data: bytes, pos: int) -> tuple[T, int]:
        """Decode one value from bytes `data` at `pos`; return (value, new_pos)."""

    @abc.abstractmethod
    def write(self, out: list[bytes], value: T) -> None:
        """Append the encoding of `value` to the list of byte strings `out`."""

    def pack(self, value: T) -> bytes:
        out: list[bytes] = []
        self.write(out, value)
        return b''.join(out)

    def unpack(self, data: bytes | bytearray | memoryview, allow_trailing: bool = False) -> T:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError('expected bytes, got %s' % type(data).__name__)
        data = bytes(data)
        try:
            value, pos = self.read(data, 0)
        except DecodeError:
            raise
        except (IndexError, ValueError, TypeError, KeyError, OverflowError, _struct.error) as e:
            raise DecodeError('malformed %s: %s' % (self, e)) from None
        if pos != len(data) and not allow_trailing:
            raise DecodeError('%d trailing bytes after %s' % (len(data) - pos, self))
        return value

    def __repr__(self) -> str:
        return self.__class__.__name__


def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    end = pos + n
    if end > len(data):
        raise DecodeError('data ends inside a field (need %d bytes at offset %d, have %d)'
                          % (n, pos, len(data) - pos))
    return data[pos:end], end


class Int(Type[int]):
    """Unsigned integer of `bits` bits (a multiple of 8, or 0 for Zero)."""

    _FORMATS = {8: 'B', 16: 'H', 32: 'I', 64: 'Q'}

    def __init__(self, bits: int, endian: Literal['little', 'big'] = 'little') -> None:
        if bits % 8 or bits < 0 or endian not in ('little', 'big'):
            raise ValueError('bad Int(%r, %r)' % (bits, endian))
        self.bits, self.endian, self.size, self.min_size = bits, endian, bits // 8, bits // 8
        self.limit = 1 << bits
        fmt = self._FORMATS.get(bits)
        self._struct = _struct.Struct(('<' if endian == 'little' else '>') + fmt) if fmt else None

    def read(self, data: bytes, pos: int) -> tuple[int, int]:
        end = pos + self.size
        if end > len(data):
            raise DecodeError('data ends inside a %d-bit integer at offset %d' % (self.bits, pos))
        if self._struct is not None:
            value: int = self._struct.unpack_from(data, pos)[0]
            return value, end
        return int.from_bytes(data[pos:end], self.endian), end

    def write(self, out: list[bytes], value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < self.limit:
            raise EncodeError('%r does not fit in %s' % (value, self))
        if self.size:
            out.append(value.to_bytes(self.size, self.endian))

    def __repr__(self) -> str:
        return 'u%d%s' % (self.bits, '' if self.endian == 'little' else 'be')


class ZeroType(Int):
    """Zero-width integer: nothing on the wire, always 0 (the index of share merkle links)."""

    def __init__(self) -> None:
        super().__init__(0)

    def read(self, data: bytes, pos: int) -> tuple[int, int]:
        return 0, pos

    def write(self, out: list[bytes], value: int) -> None:
        pass

    def __repr__(self) -> str:
        return 'Zero'


u8, u16, u32, u64 = Int(8), Int(16), Int(32), Int(64)
u128, u160, u256 = Int(128), Int(160), Int(256)
u16be = Int(16, 'big')
u256be = Int(256, 'big')
Zero = ZeroType()


#: the one-byte VarInts, made once
_ONE_BYTE = [bytes((value,)) for value in range(0xfd)]


class VarIntType(Type[int]):
    """Bitcoin CompactSize; non-canonical (over-long) encodings are rejected."""

    min_size = 1

    def read(self, data: bytes, pos: int) -> tuple[int, int]:
        if pos >= len(data):
            raise DecodeError('data ends before a VarInt at offset %d' % pos)
        first = data[pos]
        if first < 0xfd:
            return first, pos + 1
        size, minimum = {0xfd: (2, 0xfd), 0xfe: (4, 0x10000), 0xff: (8, 0x100000000)}[first]
        raw, end = _take(data, pos + 1, size)
        value = int.from_bytes(raw, 'little')
        if value < minimum:
            raise DecodeError('VarInt not canonically packed')
        return value, end

    def write(self, out: list[bytes], value: int) -> None:
        if type(value) is int and 0 <= value < 0xfd:    # every list count and short string
            out.append(_ONE_BYTE[value])
            return
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise EncodeError('VarInt needs a non-negative integer, got %r' % (value,))
        if value < 0xfd:
            out.append(bytes((value,)))
        elif value <= 0xffff:
            out.append(b'\xfd' + value.to_bytes(2, 'little'))
        elif value <= 0xffffffff:
            out.append(b'\xfe' + value.to_bytes(4, 'little'))
        elif value < 1 << 64:
            out.append(b'\xff' + value.to_bytes(8, 'little'))
        else:
            raise EncodeError('VarInt value %d is too large' % value)

    def __repr__(self) -> str:
        return 'VarInt'


VarInt = VarIntType()


class VarStrType(Type[bytes]):
    """VarInt length followed by that many raw bytes."""

    min_size = 1

    def read(self, data: bytes, pos: int) -> tuple[bytes, int]:
        length, pos = VarInt.read(data, pos)
        return _take(data, pos, length)

    def write(self, out: list[bytes], value: bytes) -> None:
        if not isinstance(value, (bytes, bytearray)):
            raise EncodeError('VarStr needs bytes, got %s' % type(value).__name__)
        VarInt.write(out, len(value))
        out.append(bytes(value))

    def __repr__(self) -> str:
        return 'VarStr'


VarStr = VarStrType()


class FixedStr(Type[bytes]):
    """Exactly `length` raw bytes."""

    def __init__(self, length: int) -> None:
        self.length = self.min_size = length

    def read(self, data: bytes, pos: int) -> tuple[bytes, int]:
        return _take(data, pos, self.length)

    def write(self, out: list[bytes], value: bytes) -> None:
        if not isinstance(value, (bytes, bytearray)) or len(value) != self.length:
            raise EncodeError('FixedStr(%d) needs exactly %d bytes, got %r'
                              % (self.length, self.length, value))
        out.append(bytes(value))

    def __repr__(self) -> str:
        return 'FixedStr(%d)' % self.length


class List(Type[list[T]]):
    """VarInt count then the items; with mul=2 the VarInt holds half the item count."""

    min_size = 1

    def __init__(self, item: Type[T], mul: int = 1) -> None:
        self.item, self.mul = item, mul

    def read(self, data: bytes, pos: int) -> tuple[list[T], int]:
        count, pos = VarInt.read(data, pos)
        count *= self.mul
        remaining = len(data) - pos
        # Refuse counts the remaining bytes cannot hold before allocating anything.
        if count * max(self.item.min_size, 1) > remaining and not (count and self.item.min_size == 0
                                                                   and count <= remaining):
            raise DecodeError('list of %d %s cannot fit in %d bytes' % (count, self.item, remaining))
        items: list[T] = []
        read = self.item.read
        for _ in range(count):
            value, pos = read(data, pos)
            items.append(value)
        return items, pos

    def write(self, out: list[bytes], value: list[T]) -> None:
        if not isinstance(value, (list, tuple)):
            raise EncodeError('List needs a list, got %s' % type(value).__name__)
        if len(value) % self.mul:
            raise EncodeError('List(mul=%d) needs a multiple of %d items' % (self.mul, self.mul))
        VarInt.write(out, len(value) // self.mul)
        write = self.item.write
        for item in value:
            write(out, item)

    def __repr__(self) -> str:
        return 'List(%r%s)' % (self.item, '' if self.mul == 1 else ', mul=%d' % self.mul)


class PossiblyNone(Type[T | None]):
    """`inner` on the wire; the value equal to `none_value` stands for None."""

    def __init__(self, none_value: T, inner: Type[T]) -> None:
        self.none_value, self.inner, self.min_size = none_value, inner, inner.min_size

    def read(self, data: bytes, pos: int) -> tuple[T | None, int]:
        value, pos = self.inner.read(data, pos)
        return (None if value == self.none_value else value), pos

    def write(self, out: list[bytes], value: T | None) -> None:
        if value is None:
            value = self.none_value
        elif value == self.none_value:
            raise EncodeError('%r is the None marker of this field and cannot be written as a value'
                              % (value,))
        self.inner.write(out, value)

    def __repr__(self) -> str:
        return 'PossiblyNone(%r)' % (self.inner,)


class Enum(Type[Any]):
    """`inner` on the wire, decoded through `mapping` (wire value -> label)."""

    def __init__(self, inner: Type[Any], mapping: Mapping[Any, Any]) -> None:
        self.inner, self.mapping, self.min_size = inner, dict(mapping), inner.min_size
        self.reverse = {label: key for key, label in self.mapping.items()}
        if len(self.reverse) != len(self.mapping):
            raise ValueError('Enum labels must be distinct')

    def read(self, data: bytes, pos: int) -> tuple[Any, int]:
        key, pos = self.inner.read(data, pos)
        try:
            return self.mapping[key], pos
        except KeyError:
            raise DecodeError('%r is not a known value of this enum' % (key,)) from None

    def write(self, out: list[bytes], value: Any) -> None:
        try:
            key = self.reverse[value]
        except (KeyError, TypeError):
            raise EncodeError('%r is not a label of this enum' % (value,)) from None
        self.inner.write(out, key)


class IPv6AddressType(Type[str]):
    """16 bytes; IPv4 as IPv4-mapped IPv6 (decoded to dotted quad), else 8 groups of 4 hex digits."""

    min_size = 16
    _V4_PREFIX = b'\x00' * 10 + b'\xff\xff'

    def read(self, data: bytes, pos: int) -> tuple[str, int]:
        raw, pos = _take(data, pos, 16)
        if raw[:12] == self._V4_PREFIX:
            return '%d.%d.%d.%d' % (raw[12], raw[13], raw[14], raw[15]), pos
        return ':'.join(raw[i:i + 2].hex() for i in range(0, 16, 2)), pos

    def write(self, out: list[bytes], value: str) -> None:
        packed = self.wire_bytes(value)
        if packed is None:
            raise EncodeError('%r is not an IP address' % (value,))
        out.append(packed)

    @staticmethod
    def wire_bytes(value: Any) -> bytes | None:
        """The 16 bytes of an address (text, or the 4 or 16 packed bytes), None for a non-address."""
        return _packed_address(value) if isinstance(value, str) else _packed_address.__wrapped__(value)

    def __repr__(self) -> str:
        return 'IPv6Address'


IPv6Address = IPv6AddressType()


@functools.lru_cache(maxsize=4096)
def _packed_address(value: Any) -> bytes | None:
    """The 16 wire bytes of an IP address text, None if it is none (gossip writes the same few
    addresses over and over, and parsing one costs ~10 us)."""
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    return IPv6AddressType._V4_PREFIX + addr.packed if addr.version == 4 else addr.packed

#: compact target ("nBits") as its raw u32; see data.bits_to_target
Bits = u32


class Struct(Type[dict[str, Any]]):
    """Fields in order, nothing between them; decodes to a dict."""

    def __init__(self, name: str, fields: Iterable[tuple[str, Type[Any]]]) -> None:
        self.name = name
        self.fields = [(field_name, field_type) for field_name, field_type in fields]
        self.min_size = sum(t.min_size for _, t in self.fields)
        fast_write = _compile_fixed_writer(self)
        if fast_write is not None:
            self.write = fast_write  # type: ignore[method-assign]

    def read(self, data: bytes, pos: int) -> tuple[dict[str, Any], int]:
        record: dict[str, Any] = {}
        for name, field_type in self.fields:
            record[name], pos = field_type.read(data, pos)
        return record, pos

    def write(self, out: list[bytes], value: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise EncodeError('%s needs a dict, got %s' % (self.name, type(value).__name__))
        for name, field_type in self.fields:
            try:
                field_value = value[name]
            except KeyError:
                raise EncodeError('%s is missing field %r' % (self.name, name)) from None
            try:
                field_type.write(out, field_value)
            except EncodeError as e:
                raise EncodeError('%s.%s: %s' % (self.name, name, e)) from None

    def __repr__(self) -> str:
        return self.name


# --- fast path for fixed-size structs ---------------------------------------------------
#
# Gossip writes the same small fixed-size records (an address: u64, IPv6Address, u16be) tens
# of thousands of times an hour, and a field-by-field write costs a Python call and its checks
# per field. A Struct whose fields are all fixed-size integers, addresses or such Structs gets,
# derived from its field list, a writer that fetches every leaf value, checks the types
# Int.write wants (a dict per struct, an exact int per integer) and packs them with one
# struct.Struct per run of fields in the same byte order. Anything it does not take (a wrong
# type, a missing key, a value out of range) goes to Struct.write, which gives the same bytes or
# the precise EncodeError; the fast path never accepts what Struct.write refuses.

def _fixed_leaves(field_type: Type[Any], path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Type[Any]]] | None:
    """The (key path, leaf type) of every value of a fixed-size struct in wire order, or None."""
    if isinstance(field_type, Struct):
        leaves: list[tuple[tuple[str, ...], Type[Any]]] = []
        for name, inner in field_type.fields:
            found = _fixed_leaves(inner, path + (name,))
            if found is None:
                return None
            leaves += found
        return leaves
    if (type(field_type) is Int and field_type.size) or field_type is IPv6Address:
        return [(path, field_type)]
    return None


def _compile_fixed_writer(struct_type: Struct) -> Any:
    """Struct.write for `struct_type`'s values made fast (see above), or None if it is not fixed-size."""
    leaves = _fixed_leaves(struct_type, ())
    if not leaves:
        return None
    namespace: dict[str, Any] = {'slow': functools.partial(Struct.write, struct_type),
                                 'ip': IPv6AddressType.wire_bytes}
    lines, dicts, ints = ['def write(out, value):', '    try:'], ['value'], []
    variables: dict[tuple[str, ...], str] = {(): 'value'}
    runs: list[tuple[str, list[tuple[str, str]]]] = []    # (byte order, [(format, argument)])
    for index, (path, leaf) in enumerate(leaves):
        for depth in range(1, len(path)):      # the enclosing dicts, fetched once each
            if path[:depth] not in variables:
                variables[path[:depth]] = name = 'd%d_%d' % (index, depth)
                lines.append('        %s = %s[%r]' % (name, variables[path[:depth - 1]], path[depth - 1]))
                dicts.append(name)
        variable = 'v%d' % index
        lines.append('        %s = %s[%r]' % (variable, variables[path[:-1]], path[-1]))
        order = ''                              # '': bytes, fit in a run of either order
        if not isinstance(leaf, Int):
            code, argument = '16s', 'ip(%s)' % variable
        elif leaf._struct is not None:
            order, code, argument = leaf._struct.format[0], leaf._struct.format[1:], variable
        else:
            code, argument = '%ds' % leaf.size, '%s.to_bytes(%d, %r)' % (variable, leaf.size, leaf.endian)
        if isinstance(leaf, Int):
            ints.append(variable)
        if not runs or (order and runs[-1][0] and order != runs[-1][0]):
            runs.append((order, []))
        runs[-1] = (runs[-1][0] or order, runs[-1][1] + [(code, argument)])
    packs = []
    for number, (order, items) in enumerate(runs):
        namespace['pack%d' % number] = _struct.Struct((order or '<') + ''.join(code for code, _ in items)).pack
        packs.append('pack%d(%s)' % (number, ', '.join(argument for _, argument in items)))
    checks = ['type(%s) is dict' % name for name in dicts] + ['type(%s) is int' % name for name in ints]
    lines += ['        if %s:' % ' and '.join(checks),
              '            out.append(%s)' % ' + '.join(packs),
              '            return',
              '    except Exception:',
              '        pass',
              '    slow(out, value)']
    exec('\n'.join(lines), namespace)
    return namespace['write']
