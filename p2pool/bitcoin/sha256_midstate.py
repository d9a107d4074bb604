"""SHA-256 with an exposed chaining state (the "midstate").

The share hash_link (shares.md §8) sends the SHA-256 state after the complete
64-byte blocks of the gentx prefix; a verifier resumes from that state. hashlib
cannot be seeded with a state, so this module has two engines:

* OpenSSL's SHA256_Init/Update/Final through ctypes, seeding the SHA256_CTX
  struct directly (fast: the chain load hashes one link per share);
* a pure-Python compression function, used when libcrypto cannot be loaded and
  as the reference the tests compare the fast engine against.

A state is 32 bytes: the eight chaining words, each big-endian.
"""
import ctypes
import ctypes.util
import struct

INITIAL_STATE = bytes.fromhex(
    '6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19')

_K = (
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
)
_MASK = 0xffffffff


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _MASK


def _compress(words: list[int], block: bytes) -> list[int]:
    """One SHA-256 compression of a 64-byte block into the 8-word state."""
    w = list(struct.unpack('>16I', block))
    for i in range(16, 64):
        s0 = _rotr(w[i - 15], 7) ^ _rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
        s1 = _rotr(w[i - 2], 17) ^ _rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & _MASK)
    a, b, c, d, e, f, g, h = words
    for i in range(64):
        s1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
        ch = (e & f) ^ (~e & g)
        t1 = (h + s1 + ch + _K[i] + w[i]) & _MASK
        s0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
        maj = (a & b) ^ (a & c) ^ (b & c)
        t2 = (s0 + maj) & _MASK
        a, b, c, d, e, f, g, h = (t1 + t2) & _MASK, a, b, c, (d + t1) & _MASK, e, f, g
    return [(x + y) & _MASK for x, y in zip(words, (a, b, c, d, e, f, g, h))]


def _padding(total_length: int) -> bytes:
    return b'\x80' + b'\x00' * ((55 - total_length) % 64) + struct.pack('>Q', 8 * total_length)


def py_state_after(data: bytes) -> bytes:
    """State after compressing the complete 64-byte blocks of `data` (pure Python)."""
    words = list(struct.unpack('>8I', INITIAL_STATE))
    for start in range(0, len(data) - len(data) % 64, 64):
        words = _compress(words, data[start:start + 64])
    return struct.pack('>8I', *words)


def py_digest_from_state(state: bytes, hashed_length: int, pending: bytes) -> bytes:
    """SHA-256 digest of a message whose first `hashed_length` bytes (a multiple
    of 64) produced `state` and whose remaining bytes are `pending`."""
    if hashed_length % 64:
        raise ValueError('hashed_length must be a multiple of 64')
    words = list(struct.unpack('>8I', state))
    tail = pending + _padding(hashed_length + len(pending))
    for start in range(0, len(tail), 64):
        words = _compress(words, tail[start:start + 64])
    return struct.pack('>8I', *words)


class _SHA256_CTX(ctypes.Structure):
    _fields_ = [('h', ctypes.c_uint32 * 8), ('Nl', ctypes.c_uint32), ('Nh', ctypes.c_uint32),
                ('data', ctypes.c_uint32 * 16), ('num', ctypes.c_uint), ('md_len', ctypes.c_uint)]


def _load_libcrypto() -> ctypes.CDLL | None:
    names = [ctypes.util.find_library('crypto'), 'libcrypto.so.3', 'libcrypto.so.1.1', 'libcrypto.so']
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            for fn in (lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final):
                fn.restype = ctypes.c_int
            lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
            return lib
        except (OSError, AttributeError):
            continue
    return None


_lib = _load_libcrypto()


def _c_state_after(data: bytes) -> bytes:
    assert _lib is not None, 'only chosen when libcrypto loaded'
    ctx = _SHA256_CTX()
    _lib.SHA256_Init(ctypes.byref(ctx))
    whole = len(data) - len(data) % 64
    _lib.SHA256_Update(ctypes.byref(ctx), data[:whole], whole)
    return struct.pack('>8I', *ctx.h)


def _c_digest_from_state(state: bytes, hashed_length: int, pending: bytes) -> bytes:
    if hashed_length % 64:
        raise ValueError('hashed_length must be a multiple of 64')
    assert _lib is not None, 'only chosen when libcrypto loaded'
    ctx = _SHA256_CTX()
    _lib.SHA256_Init(ctypes.byref(ctx))
    ctx.h[:] = struct.unpack('>8I', state)
    bits = hashed_length * 8
    ctx.Nl, ctx.Nh = bits & _MASK, (bits >> 32) & _MASK
    _lib.SHA256_Update(ctypes.byref(ctx), pending, len(pending))
    out = ctypes.create_string_buffer(32)
    _lib.SHA256_Final(out, ctypes.byref(ctx))
    return out.raw


def _self_test() -> bool:
    probe = bytes(range(200))
    for n in (0, 63, 64, 65, 130, 200):
        part = probe[:n]
        whole = n - n % 64
        if _c_state_after(part) != py_state_after(part):
            return False
        if (_c_digest_from_state(_c_state_after(part), whole, part[whole:])
                != py_digest_from_state(py_state_after(part), whole, part[whole:])):
            return False
    return True


if _lib is not None:
    try:
        ENGINE = 'openssl' if _self_test() else 'python'
    except Exception:  # a libcrypto without the legacy API or with another struct layout
        ENGINE = 'python'
else:
    ENGINE = 'python'

if ENGINE == 'openssl':
    state_after, digest_from_state = _c_state_after, _c_digest_from_state
else:
    state_after, digest_from_state = py_state_after, py_digest_from_state
