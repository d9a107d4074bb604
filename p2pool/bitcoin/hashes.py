"""Hash functions of the parent chain.

hash256 returns the integer form used everywhere in the spec (sha256d digest read
little-endian); sha256d returns raw bytes. sha256_from_state continues a SHA-256
computation from a midstate, which the share hash_link needs (shares.md §8).
"""
import hashlib
from collections.abc import Callable

from p2pool.bitcoin import sha256_midstate


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash256(data: bytes) -> int:
    """sha256d(data) as a little-endian integer (block hash, txid, share hash...)."""
    return int.from_bytes(hashlib.sha256(hashlib.sha256(data).digest()).digest(), 'little')


def hash160_bytes(data: bytes) -> bytes:
    return hashlib.new('ripemd160', hashlib.sha256(data).digest()).digest()


def scrypt_pow(header: bytes) -> int:
    """Litecoin proof of work: scrypt(N=1024, r=1, p=1) of the 80-byte header as an integer."""
    digest = hashlib.scrypt(header, salt=header, n=1024, r=1, p=1, dklen=32)
    return int.from_bytes(digest, 'little')


def sha256d_pow(header: bytes) -> int:
    return hash256(header)


POW_FUNCTIONS: dict[str, Callable[[bytes], int]] = {'sha256d': sha256d_pow, 'scrypt': scrypt_pow}


# SHA-256 with an explicit state, for the hash_link.
sha256_state_after = sha256_midstate.state_after
sha256_from_state = sha256_midstate.digest_from_state
