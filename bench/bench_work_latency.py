"""Latency from a new block at bitcoind to fresh work in the node (goal: p99 < 50 ms on loopback).

Two peered regtest bitcoinds (p2pool.testing.regtest); the node's bitcoind bridge
(RPC + long polling + Bitcoin P2P, p2pool.bitcoin.daemon) runs in a reactor
thread. For each of BLOCKS blocks the clock starts right before
`generatetoaddress 1` is sent to bitcoind and stops when the TemplateSource
publishes a template on top of that block, so the figure includes bitcoind's own
block creation and both notification paths racing (long poll, P2P inv).

bench/run.py runs every figure in a fresh process; the two figures come from one
measurement, cached on disk for the lifetime of the run.py process that asked.
"""
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from common import measured_once, percentile, reactor_in_thread  # noqa: E402  (bench/ is not a package)

BLOCKS = 60
WARMUP_BLOCKS = 3




def measure(blocks=BLOCKS):
    """Per-block latencies in milliseconds."""
    from twisted.internet.threads import blockingCallFromThread

    from p2pool.testing import regtest
    from p2pool.config import load_network
    from p2pool.bitcoin.daemon import BitcoindBridge

    reactor = reactor_in_thread()
    ready_at, arrived = {}, threading.Condition()

    def on_template(template):
        with arrived:
            ready_at.setdefault(template.previous_block, time.perf_counter())
            arrived.notify_all()

    with regtest.RegtestNetwork(regtest.bitcoind_path()) as network:
        node = network.first
        bridge = BitcoindBridge('127.0.0.1', node.rpc_port, node.p2p_port, node.user, node.password,
                                load_network('bsv_regtest'), reactor=reactor)
        blockingCallFromThread(reactor, bridge.start)
        blockingCallFromThread(reactor, bridge.source.changed.watch, on_template)
        address = node.wallet_address()
        latencies = []
        try:
            for number in range(WARMUP_BLOCKS + blocks):
                started = time.perf_counter()
                block_hash = int(node.rpc('generatetoaddress', 1, address)[0], 16)
                with arrived:
                    if not arrived.wait_for(lambda block_hash=block_hash: block_hash in ready_at, timeout=30):
                        raise RuntimeError('no work for block %064x within 30 s' % block_hash)
                if number >= WARMUP_BLOCKS:
                    latencies.append((ready_at[block_hash] - started) * 1000)
        finally:
            blockingCallFromThread(reactor, bridge.stop)
    return latencies


def _cached_latencies():
    return measured_once('work-latency', measure)


def work_latency_p50_ms():
    return round(percentile(_cached_latencies(), 0.50), 3), 'ms'


def work_latency_p99_ms():
    return round(percentile(_cached_latencies(), 0.99), 3), 'ms'


BENCHMARKS = {
    'work_latency_p50_ms': work_latency_p50_ms,
    'work_latency_p99_ms': work_latency_p99_ms,
}


if __name__ == '__main__':
    results = measure()
    print('work_latency_p50_ms %.3f ms' % percentile(results, 0.50))
    print('work_latency_p99_ms %.3f ms' % percentile(results, 0.99))
    print('blocks %d, max %.3f ms' % (len(results), max(results)))
