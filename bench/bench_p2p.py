"""Figures of the P2Pool peer network on loopback (p2p.md §6).

* propagation_p99_ms -- a share added at one end of a line of 4 nodes becomes the
  best share at the other end (3 hops: receive, parse, add, verify, choose, relay);
  the 99th percentile over SHARES shares, in milliseconds (goal < 100 ms).
* sync_shares_per_s  -- a fresh node connects to one peer holding a complete
  CHAIN_LENGTH chain of the BTC network (8640 shares) and downloads and verifies
  all of it; shares per second from connect until the whole chain is verified
  (goal >= 2000).

Every node is a real P2PNode with its own ShareChain (p2pool/sharechain/chain.py), listening
on 127.0.0.1; all of them share one reactor running in a background thread, so
the figures include every node's processing, serialised on that thread.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from common import call_in_reactor, percentile  # noqa: E402  (bench/ is not a package)

SHARES = 200
LINE = 4




def _mine(net, count, tracker=None, previous=None):
    from p2pool.testing import testchain
    start = int(time.time()) - (count + 50) * net.SHARE_PERIOD
    return testchain.mine_chain(net, count, tracker=tracker, start_time=start,
                                previous_hash=previous.hash if previous is not None else None)


def _copies(net, shares):
    from p2pool.sharechain.share import Share
    return [Share.from_wire(net, share.to_wire()) for share in shares]


def _node(net, shares=(), fixed_peers=()):
    from p2pool.sharechain.chain import ShareChain
    from p2pool.p2p.peerset import NodeConfig, P2PNode
    chain = ShareChain(net, None, clock=time.time)
    if shares:
        chain.add_shares(_copies(net, shares))
    node = P2PNode(chain, None, NodeConfig(port=0, listen_interface='127.0.0.1', outgoing_target=0,
                                           use_bootstrap=False, fixed_peers=tuple(fixed_peers)))
    node.start()
    return node


def _wait(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not call_in_reactor(predicate):
        if time.monotonic() > deadline:
            raise RuntimeError('condition not met within %s s' % timeout)
        time.sleep(0.005)


def measure_propagation(count=SHARES):
    """Latencies (ms) of `count` shares from one end of a line of LINE nodes to the other."""
    from p2pool.config import load_network
    from p2pool.testing import testchain
    from p2pool.sharechain.tracker import Tracker

    net = testchain.easy_network(load_network('bsv_regtest'))
    miner = Tracker()
    chain = _mine(net, net.CHAIN_LENGTH + 10, tracker=miner)
    new = testchain.mine_chain(net, count, tracker=miner, previous_hash=chain[-1].hash)
    line = [call_in_reactor(_node, net, chain)]
    for _ in range(LINE - 1):
        line.append(call_in_reactor(_node, net, (), [('127.0.0.1', line[-1].listening_port)]))
    _wait(lambda: all(node.chain.best_share_hash.value == chain[-1].hash for node in line))

    arrived = {}

    def on_best(share_hash):
        arrived.setdefault(share_hash, time.perf_counter())
    call_in_reactor(line[-1].chain.best_share_hash.changed.watch, on_best)
    latencies = []
    try:
        for share in _copies(net, new):
            def add(share=share):
                started = time.perf_counter()
                line[0].chain.add_shares([share])
                return started
            started = call_in_reactor(add)
            _wait(lambda share=share: share.hash in arrived)
            latencies.append((arrived[share.hash] - started) * 1000)
    finally:
        for node in line:
            call_in_reactor(node.stop)
    return latencies


def measure_sync():
    """(shares, seconds) for a fresh node to download and verify a full BTC CHAIN_LENGTH chain."""
    from p2pool.config import load_network
    from p2pool.testing import testchain

    net = testchain.easy_network(load_network('bitcoin'))
    chain = _mine(net, net.CHAIN_LENGTH)
    holder = call_in_reactor(_node, net, chain)
    started = time.perf_counter()
    fresh = call_in_reactor(_node, net, (), [('127.0.0.1', holder.listening_port)])
    try:
        _wait(lambda: fresh.chain.sync_progress() == (net.CHAIN_LENGTH, net.CHAIN_LENGTH)
              and fresh.chain.best_share_hash.value == chain[-1].hash, timeout=300)
        elapsed = time.perf_counter() - started
    finally:
        call_in_reactor(fresh.stop)
        call_in_reactor(holder.stop)
    return len(chain), elapsed


def propagation_p99_ms():
    return percentile(measure_propagation(), 0.99), 'ms'


def sync_shares_per_s():
    shares, seconds = measure_sync()
    return shares / seconds, 'shares/s'


BENCHMARKS = {
    'propagation_p99_ms': propagation_p99_ms,
    'sync_shares_per_s': sync_shares_per_s,
}

if __name__ == '__main__':
    for name, fn in BENCHMARKS.items():
        value, unit = fn()
        print('%s %.6g %s' % (name, value, unit))
