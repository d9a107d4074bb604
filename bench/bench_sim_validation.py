"""sim_vs_real_stale_ratio: the simulator against real node processes (issue 14 §5).

The same scenario twice: (a) 6 real `p2pool` processes on bsv_regtest with one real
regtest bitcoind and one CPU miner each (p2pool/work/cpuminer.py), every P2Pool link
going through a DelayRelay (p2pool/testing/delay_relay.py) that holds every byte
200 ms in each direction; node i dials nodes i+1 and i+2 (a ring with chords) and
nothing else (--outgoing-conns 0, no advertising). The real stale rate is
sum(orphan + dead) / sum(total) over the nodes' /local_stats, counted from
SETTLE_SECONDS after the miners start to the end. (b) `p2pool simulate
--net bsv_regtest --nodes 6 --latency-ms 200 --latency-spread 0 --pool-fraction 1`
for the same time (every share a block, as on regtest). The figure is
simulated / real; the goal is 0.67 to 1.5.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from common import call_in_reactor, measured_once, reactor_in_thread  # noqa: E402

NODES = 6
DELAY = 0.2
MINING_SECONDS = 240.0
#: a fresh regtest chain starts at MAX_TARGET and its retarget needs a few dozen shares to reach
#: SHARE_PERIOD; the real stale rate is counted after this (the simulator starts in equilibrium)
SETTLE_SECONDS = 80.0


def _get(port, path):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/%s' % (port, path), timeout=5) as reply:
            return json.loads(reply.read())
    except (OSError, ValueError):
        return None


def _counts(worker_ports):
    """(shares, orphan + dead shares) of all nodes' miners so far."""
    total = stale = 0
    for port in worker_ports:
        shares = (_get(port, 'local_stats') or {}).get('shares') or {}
        total += shares.get('total', 0)
        stale += shares.get('orphan', 0) + shares.get('dead', 0)
    return total, stale


def real_stale_rate():
    from p2pool.testing import regtest
    from p2pool.testing.delay_relay import DelayRelay
    root = tempfile.mkdtemp(prefix='p2pool-simval-')
    bitcoind = regtest.RegtestBitcoind().start(datadir=os.path.join(root, 'bitcoind'))
    children = []
    try:
        bitcoind.mine(101)
        ports = regtest.free_ports(2 * NODES)
        p2p_ports, worker_ports = ports[:NODES], ports[NODES:]
        reactor = reactor_in_thread()
        relay_ports = {}
        for i in range(NODES):
            for step in (1, 2):
                j = (i + step) % NODES
                relay = DelayRelay(p2p_ports[j], DELAY, reactor)
                relay_ports[(i, j)] = call_in_reactor(relay.listen)
        addresses = [bitcoind.rpc('getnewaddress') for _ in range(NODES)]
        for i in range(NODES):
            folder = os.path.join(root, 'node%d' % i)
            os.makedirs(folder)
            args = [sys.executable, '-m', 'p2pool.app.main', '--net', 'bsv_regtest', '--datadir', folder,
                    '--p2pool-port', str(p2p_ports[i]), '-w', '127.0.0.1:%d' % worker_ports[i], '--disable-upnp',
                    '--disable-advertise', '--outgoing-conns', '0', '-a', addresses[i]]
            for step in (1, 2):
                args += ['-n', '127.0.0.1:%d' % relay_ports[(i, (i + step) % NODES)]]
            args += bitcoind.cli_args()
            log = open(os.path.join(folder, 'console.log'), 'w')
            children.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + 120
        while any(_get(port, 'uptime') is None for port in worker_ports):
            if time.monotonic() > deadline:
                raise RuntimeError('the nodes did not start; see %s' % root)
            time.sleep(0.5)
        time.sleep(10)   # connections through the relays
        for i in range(NODES):
            children.append(subprocess.Popen(
                [sys.executable, '-m', 'p2pool.work.cpuminer', '127.0.0.1:%d' % worker_ports[i], addresses[i],
                 str(MINING_SECONDS)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(SETTLE_SECONDS)
        started, before = time.monotonic(), _counts(worker_ports)
        time.sleep(MINING_SECONDS - SETTLE_SECONDS - 5)
        seconds, after = time.monotonic() - started, _counts(worker_ports)
        total, stale = after[0] - before[0], after[1] - before[1]
        return {'shares': total, 'stale': stale, 'rate': stale / total if total else None, 'seconds': seconds}
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        bitcoind.close()


def simulated_stale_rate():
    from p2pool.sim.world import Scenario, Simulation
    figures = Simulation(Scenario(net='bsv_regtest', nodes=NODES, hours=(MINING_SECONDS - SETTLE_SECONDS) / 3600,
                                  latency_ms=DELAY * 1000,
                                  latency_spread=0.0, pool_fraction=1.0, block_propagation_ms=100.0,
                                  outgoing_conns=2)).run()
    return {'shares': figures['shares'], 'rate': figures['stale_rate']}


def _both():
    return {'real': real_stale_rate(), 'simulated': simulated_stale_rate()}


def sim_vs_real_stale_ratio():
    result = measured_once('sim-validation', _both)
    real, simulated = result['real']['rate'], result['simulated']['rate']
    print('real %s, simulated %s' % (result['real'], result['simulated']), file=sys.stderr)
    if not real:
        return float('nan'), 'ratio'
    return simulated / real, 'ratio'


BENCHMARKS = {'sim_vs_real_stale_ratio': sim_vs_real_stale_ratio}
