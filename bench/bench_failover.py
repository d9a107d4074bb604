"""failover_s: seconds from the active bitcoind's death to work on the fallback's next block (goal < 5).

Three regtest bitcoinds: the primary, the fallback and a peer of the fallback (Bitcoin
SV serves templates only to a node with a peer). A BitcoindGroup (p2pool.bitcoin.failover)
runs in a reactor thread. The clock starts when the primary is killed with SIGKILL; a
block is mined on the fallback right away, and the clock stops when the group's source
publishes a template on top of that block (what the work bridge turns into new work).
ROUNDS kills; the figure is the slowest.
"""
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from common import reactor_in_thread  # noqa: E402  (bench/ is not a package)

ROUNDS = 3


def measure(rounds=ROUNDS):
    from twisted.internet.threads import blockingCallFromThread

    from p2pool.bitcoin.daemon import BitcoindBridge
    from p2pool.bitcoin.failover import BitcoindGroup
    from p2pool.bitcoin.rpc import check_bitcoind
    from p2pool.config import load_network
    from p2pool.testing import regtest

    net = load_network('bsv_regtest')
    reactor = reactor_in_thread()
    seen, arrived = {}, threading.Condition()

    def on_template(template):
        with arrived:
            seen.setdefault(template.previous_block, time.perf_counter())
            arrived.notify_all()

    peer = regtest.RegtestBitcoind(regtest.bitcoind_path())
    with regtest.RegtestNetwork(regtest.bitcoind_path()) as network:
        primary, fallback = network.first, network.second
        peer.start(connect_to=fallback)
        regtest.wait_until(lambda: peer.rpc('getblockcount') == fallback.rpc('getblockcount'), 60, 'the peer')

        def bridge(node):
            return BitcoindBridge('127.0.0.1', node.rpc_port, node.p2p_port, node.user, node.password, net,
                                  reactor=reactor)
        group = BitcoindGroup([('primary', bridge(primary)), ('fallback', bridge(fallback))], net)
        blockingCallFromThread(reactor, group.start, lambda rpc: check_bitcoind(rpc, net))
        blockingCallFromThread(reactor, group.source.changed.watch, on_template)
        address = fallback.wallet_address()
        worst = 0.0
        try:
            for _ in range(rounds):
                try:
                    regtest.wait_until(lambda: group.active.name == 'primary', 60, 'the primary to be active')
                except regtest.RegtestError:
                    raise RuntimeError('the primary did not come back: %r' % group.states()) from None
                os.kill(primary.pid, signal.SIGKILL)
                killed = time.perf_counter()
                primary.stop()
                block_hash = int(fallback.rpc('generatetoaddress', 1, address)[0], 16)
                with arrived:
                    if not arrived.wait_for(lambda block_hash=block_hash: block_hash in seen, timeout=30):
                        raise RuntimeError('no work on the fallback within 30 s')
                worst = max(worst, seen[block_hash] - killed)
                primary.start()
                # killed, the primary lost what it had not flushed and missed the fallback's block:
                # hand the blocks over instead of waiting for the peers to find each other
                for height in range(primary.rpc('getblockcount') + 1, fallback.rpc('getblockcount') + 1):
                    primary.rpc('submitblock', fallback.rpc('getblock', fallback.rpc('getblockhash', height), 0))
        finally:
            blockingCallFromThread(reactor, group.stop)
            peer.close()
    return worst


def failover_s():
    return round(measure(), 3), 's'


BENCHMARKS = {'failover_s': failover_s}


if __name__ == '__main__':
    print('failover_s %.3f s' % measure())
