"""Hash functions of the parent chain.

hash256 returns the integer form used everywhere in the spec (sha256d digest read
little-endian); sha256d returns raw bytes. sha256_from_state continues a SHA-256
computation from a midstate, which the share hash_link needs (shares.md §8).

The Litecoin proof of work, scrypt(N=1024, r=1, p=1), comes from the C accelerator
p2pool/bitcoin/_scrypt.c when the install could build it (SCRYPT_IMPLEMENTATION says which),
else from hashlib.scrypt (OpenSSL). pow_hashes hashes a batch of headers, scrypt ones on a few
threads: both implementations release the GIL while they hash.
"""
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import ModuleType

from p2pool.bitcoin import sha256_midstate

_accelerator: ModuleType | None
try:
    from p2pool.bitcoin import _scrypt as _accelerator
except ImportError:  # not built (no compiler at install time): hashlib does the work
    _accelerator = None


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash256(data: bytes) -> int:
    """sha256d(data) as a little-endian integer (block hash, txid, share hash...)."""
    return int.from_bytes(hashlib.sha256(hashlib.sha256(data).digest()).digest(), 'little')


def hash160_bytes(data: bytes) -> bytes:
    return hashlib.new('ripemd160', hashlib.sha256(data).digest()).digest()


def scrypt_pow_hashlib(header: bytes) -> int:
    """Litecoin proof of work: scrypt(N=1024, r=1, p=1) of the 80-byte header as an integer (OpenSSL)."""
    digest = hashlib.scrypt(header, salt=header, n=1024, r=1, p=1, dklen=32)
    return int.from_bytes(digest, 'little')


def scrypt_pow(header: bytes) -> int:
    """Litecoin proof of work: scrypt(N=1024, r=1, p=1) of the 80-byte header as an integer."""
    if _accelerator is None:
        return scrypt_pow_hashlib(header)
    return int.from_bytes(_accelerator.scrypt(header), 'little')


#: 'c-sse2' or 'c-portable' (the accelerator and its Salsa20/8 core), or 'hashlib'
SCRYPT_IMPLEMENTATION = 'hashlib' if _accelerator is None else 'c-' + _accelerator.SALSA_CORE


def sha256d_pow(header: bytes) -> int:
    return hash256(header)


POW_FUNCTIONS: dict[str, Callable[[bytes], int]] = {'sha256d': sha256d_pow, 'scrypt': scrypt_pow}


def _scrypt_batch(headers: Sequence[bytes]) -> list[int]:
    """scrypt_pow of each header; the accelerator takes 80-byte headers two at a time (see _scrypt.c)."""
    if _accelerator is None or any(len(header) != 80 for header in headers):
        return [scrypt_pow(header) for header in headers]
    digests = _accelerator.scrypt_many(b''.join(headers), 80)
    return [int.from_bytes(digests[offset:offset + 32], 'little') for offset in range(0, len(digests), 32)]


#: PoW functions slow enough, and GIL-free enough, for a batch to be split among threads
THREADED_POW_FUNCS = frozenset({'scrypt'})
#: a thread gets at least this many headers of a batch: fewer are not worth the hand-over
MIN_HEADERS_PER_THREAD = 8
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def pow_threads() -> int:
    """Threads that hash a batch, the calling one included: one per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _worker_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, pow_threads() - 1), thread_name_prefix='pow-hash')
        return _pool


def pow_hashes(pow_func: str, headers: Sequence[bytes]) -> list[int]:
    """POW_FUNCTIONS[pow_func] of each header, in order.

    A batch of scrypt headers is cut into one slice per CPU: the calling thread hashes the first
    slice while pool threads hash the others (the hashing releases the GIL, so they run on the
    other cores). Small batches, and cheap functions such as sha256d, stay on the calling thread.
    """
    if pow_func not in THREADED_POW_FUNCS:
        function = POW_FUNCTIONS[pow_func]
        return [function(header) for header in headers]
    slices = min(pow_threads(), len(headers) // MIN_HEADERS_PER_THREAD)
    if slices <= 1:
        return _scrypt_batch(headers)
    size = -(-len(headers) // slices)
    pool = _worker_pool()
    others: list[Future[list[int]]] = [pool.submit(_scrypt_batch, headers[start:start + size])
                                       for start in range(size, len(headers), size)]
    hashes = _scrypt_batch(headers[:size])
    for future in others:
        hashes.extend(future.result())
    return hashes


# SHA-256 with an explicit state, for the hash_link.
sha256_state_after = sha256_midstate.state_after
sha256_from_state = sha256_midstate.digest_from_state
