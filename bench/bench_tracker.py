"""Figures for the share forest and best-chain choice on a BTC-sized chain (2 * 8640 shares)."""
import random
import time
from types import SimpleNamespace

from p2pool.sharechain.chooser import Chooser
from p2pool.sharechain.tracker import Tracker

CHAIN_LENGTH = 8640
SHARES = 2 * CHAIN_LENGTH
QUERIES = 10000
_NET = SimpleNamespace(CHAIN_LENGTH=CHAIN_LENGTH, PARENT=SimpleNamespace(BLOCK_PERIOD=600),
                       BLOCK_MAX_WEIGHT=4000000, BLOCK_MAX_SIZE=1000000)


def _chain(count, seed=1, parent=None, start_time=0):
    """Shares shaped like real ones: random 256-bit hashes, 30 s apart, a parent block every 20."""
    rng = random.Random(seed)
    shares = []
    for index in range(count):
        work = rng.randrange(10**12, 2 * 10**12)
        share = SimpleNamespace(
            hash=rng.getrandbits(256), previous_hash=parent, work=work, min_work=10**12,
            target=2**256 // work - 1, timestamp=start_time + 30 * index, time_seen=0, peer_addr=None,
            naughty=0, pow_hash=2**255, VERSION=35, header={'previous_block': index // 20, 'bits': 0x1d00ffff},
            transaction_hash_refs=[], new_transaction_hashes=[], stale_info=None)
        shares.append(share)
        parent = share.hash
    return shares


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _filled(shares):
    tracker = Tracker()
    for share in shares:
        tracker.add(share)
    return tracker


def add_forward_s():
    shares = _chain(SHARES)
    return _seconds(lambda: _filled(shares)), 's'


def add_reverse_s():
    """A syncing node: children arrive before parents, the chain grows at its tail."""
    shares = _chain(SHARES)[::-1]
    return _seconds(lambda: _filled(shares)), 's'


def add_reverse_with_height_queries_s():
    """Reverse order with get_height of the head after every add (think() after each batch)."""
    shares = _chain(SHARES)
    head = shares[-1].hash

    def run():
        tracker = Tracker()
        for share in reversed(shares):
            tracker.add(share)
            tracker.get_height(head)
    return _seconds(run), 's'


def _random_queries(query):
    shares = _chain(SHARES)
    tracker = _filled(shares)
    rng = random.Random(2)
    pairs = []
    for _ in range(QUERIES):
        top = rng.randrange(SHARES)
        pairs.append((top, rng.randrange(top + 1)))
    return _seconds(lambda: [query(tracker, shares, top, n) for top, n in pairs]), 's'


def nth_parent_10000_s():
    return _random_queries(lambda tracker, shares, top, n: tracker.get_nth_parent_hash(shares[top].hash, n))


def delta_10000_s():
    return _random_queries(lambda tracker, shares, top, n: tracker.get_delta(shares[top].hash,
                                                                               shares[top - n].hash))


def height_10000_s():
    return _random_queries(lambda tracker, shares, top, n: tracker.get_height(shares[top].hash))


def _verified_node():
    shares = _chain(SHARES + 200)
    tracker = Tracker()
    for share in shares[:SHARES]:
        tracker.add(share)
        tracker.verified.add(share)
    chooser = Chooser(tracker, _NET, lambda share: True, lambda block: block - SHARES // 20,
                      rng=random.Random(3))
    return tracker, chooser, shares[SHARES:]


def think_unchanged_ms():
    """think() when nothing changed (the 5-second path)."""
    _tracker, chooser, _more = _verified_node()
    chooser.think(now=10**9)
    runs = 200
    return _seconds(lambda: [chooser.think(now=10**9) for _ in range(runs)]) / runs * 1000, 'ms'


def new_share_think_prune_ms():
    """Steady state per new share: add a head, think, prune the oldest share, think again."""
    tracker, chooser, more = _verified_node()
    chooser.think_and_prune(now=10**9)

    def run():
        for share in more:
            tracker.add(share)
            chooser.think_and_prune(now=10**9)
    return _seconds(run) / len(more) * 1000, 'ms'


BENCHMARKS = {
    'tracker_add_forward_17280_s': add_forward_s,
    'tracker_add_reverse_17280_s': add_reverse_s,
    'tracker_add_reverse_with_height_17280_s': add_reverse_with_height_queries_s,
    'tracker_nth_parent_10000_s': nth_parent_10000_s,
    'tracker_delta_10000_s': delta_10000_s,
    'tracker_height_10000_s': height_10000_s,
    'chooser_think_unchanged_ms': think_unchanged_ms,
    'chooser_new_share_think_prune_ms': new_share_think_prune_ms,
}
