"""Figures for the parent-chain primitives on the hot paths (share load, verification)."""
import os
import time

from p2pool.bitcoin import data, hashes, sha256_midstate

_HEADER = bytes.fromhex('0100000082622f3d60f36d683b9b0732a7988229513cf98723b7862a8a0300000000000044bc7380c2e82d647df28'
                        '0b1aa24880060433b39465f9765b64e2e813b3aa437eddce64e68860e1a061c13da')


def _per_call_us(fn, count):
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - start) / count * 1e6


def sha256_resume_us():
    """One hash_link continuation (the per-share cost of checking a hash link)."""
    state, tail = sha256_midstate.INITIAL_STATE, os.urandom(90)
    return _per_call_us(lambda: hashes.sha256_from_state(state, 64, tail), 100000), 'us'


def header_unpack_us():
    return _per_call_us(lambda: data.header_type.unpack(_HEADER), 100000), 'us'


def merkle_link_3000_ms():
    items = [None] + list(range(1, 3000))
    return _per_call_us(lambda: data.calculate_merkle_link(items, 0), 20) / 1000, 'ms'


BENCHMARKS = {
    'sha256_resume_us': sha256_resume_us,
    'header_unpack_us': header_unpack_us,
    'merkle_link_3000_ms': merkle_link_3000_ms,
}
