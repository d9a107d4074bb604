"""Figures for the sharechain consensus core on a full-size Bitcoin chain.

The chain: 2 * CHAIN_LENGTH = 17,280 version-35 shares with the bitcoin
network's parameters (CHAIN_LENGTH 8640, SPREAD 3, segwit layout) but an easy
MAX_TARGET, paying 500 addresses in rotation, with a block target that makes
the PPLNS window end by weight (partial crossing share) at about 6,000 shares.
It is mined once by p2pool.testing.testchain and cached as wire bytes under
~/.cache/p2pool/bench/ (override with P2POOL_BENCH_CACHE).

    verify_shares_per_s  check_share on every share, oldest first, all shares already
                         in the tracker (a syncing node after the download)
    gentx_500_ms         one generate_transaction on top of the chain (500 payees)
    chain_load_s         Share.from_wire for the whole chain (parse, PoW, hash_link)
    chain_rss_mb         resident memory of this process with the chain in a Tracker
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cached_wires  # noqa: E402  (bench/ is not a package)

from p2pool.config import load_network  # noqa: E402
from p2pool.sharechain import generate, verify  # noqa: E402
from p2pool.testing import testchain
from p2pool.sharechain.share import Share  # noqa: E402
from p2pool.sharechain.tracker import Tracker  # noqa: E402

PAYEES = 500
BLOCK_TARGET = 2**256 // 4001 - 1           # 3 blocks' work ~ 6,000 easy shares
CACHE_FORMAT = 'v1'                         # bump when the mined chain would change


def bench_network():
    return testchain.easy_network(load_network('bitcoin'))


def chain_length(net):
    return 2 * net.CHAIN_LENGTH


def _cache_path(net):
    folder = os.environ.get('P2POOL_BENCH_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'p2pool', 'bench')
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, 'sharechain-%s-%d-%d.bin' % (CACHE_FORMAT, chain_length(net), PAYEES))


def chain_wire(net=None):
    """Wire bytes of the benchmark chain, oldest first (mined and cached on first use)."""
    net = net or bench_network()
    return cached_wires(_cache_path(net), lambda: testchain.mine_chain(
        net, chain_length(net), addresses=testchain.make_addresses(net, PAYEES), block_target=BLOCK_TARGET))


def load_chain(net, wires):
    return [Share.from_wire(net, wire) for wire in wires]


def loaded_tracker(net=None):
    net = net or bench_network()
    tracker = Tracker()
    for share in load_chain(net, chain_wire(net)):
        tracker.add(share)
    return net, tracker


def verify_shares_per_s():
    net = bench_network()
    shares = load_chain(net, chain_wire(net))
    tracker = Tracker()
    for share in shares:
        tracker.add(share)
    start = time.perf_counter()
    for share in shares:
        verify.check_share(tracker, share, now=share.timestamp)
    return len(shares) / (time.perf_counter() - start), 'shares/s'


def _work_on(tracker, net, best_hash, nonce):
    best = tracker.items[best_hash]
    share_data = {'previous_share_hash': best_hash, 'coinbase': b'\x03\x01\x02\x03bench', 'nonce': nonce,
                  'address': testchain.make_addresses(net, 1)[0], 'subsidy': 625000000, 'donation': 0,
                  'stale_info': None, 'desired_version': 35}
    return generate.generate_transaction(tracker, share_data, BLOCK_TARGET, best.timestamp + 30, net.MAX_TARGET,
                                         {'branch': [], 'index': 0}, [], net, known_txs={}, version=35)


def gentx_500_ms():
    """Median of repeated generations on the same best share (the node's steady state)."""
    net, tracker = loaded_tracker()
    best_hash = next(iter(tracker.heads))
    _share_info, gentx, _, _ = _work_on(tracker, net, best_hash, 0)
    payees = len(gentx['tx_outs']) - 3
    if payees < PAYEES:
        raise RuntimeError('only %d payees in the window' % payees)
    times = []
    for nonce in range(1, 41):
        start = time.perf_counter()
        _work_on(tracker, net, best_hash, nonce)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, 'ms'


def stored_chain_path(net):
    """An SQLite store holding the benchmark chain with every share marked verified (built once)."""
    from p2pool.store.sharestore import ShareStore
    path = _cache_path(net) + '.sqlite3'
    if not os.path.exists(path):
        store = ShareStore(path + '.tmp')
        shares = load_chain(net, chain_wire(net))
        store.add_shares(shares)
        store.mark_verified([share.hash for share in shares])
        store.close()
        os.replace(path + '.tmp', path)
    return path


def chain_load_s():
    """Cold start: a restarting node loads its SQLite store (parse, PoW and hash-link checks
    per share, verified marks) into the tracker and picks its best share."""
    from p2pool.sharechain.chain import ShareChain
    from p2pool.store.sharestore import ShareStore
    net = bench_network()
    path = stored_chain_path(net)
    start = time.perf_counter()
    chain = ShareChain(net, ShareStore(path), clock=lambda: 2_000_000_000)
    loaded = chain.load()
    elapsed = time.perf_counter() - start
    assert loaded == chain_length(net) and chain.best_share_hash.value is not None
    return elapsed, 's'


def _rss_mb():
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('VmRSS not found')


def chain_rss_mb():
    """Whole-process RSS (interpreter included) with the chain in a Tracker; the wire bytes are dropped."""
    _net, tracker = loaded_tracker()
    tracker.get_height(next(iter(tracker.heads)))     # fill the tracker's height caches too
    return _rss_mb(), 'MB'


BENCHMARKS = {
    'verify_shares_per_s': verify_shares_per_s,
    'gentx_500_ms': gentx_500_ms,
    'chain_load_s': chain_load_s,
    'chain_rss_mb': chain_rss_mb,
}

if __name__ == '__main__':
    for bench_name, bench_fn in BENCHMARKS.items():
        value, unit = bench_fn()
        print('%s %.6g %s' % (bench_name, value, unit), flush=True)
