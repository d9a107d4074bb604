"""sim_vs_real_stale_ratio: the simulator against real node processes (issue 14 §5).

The same scenario twice; the figure is simulated stale rate / real stale rate (goal 0.67-1.5).

(a) real (simvalid_real.py): 6 `p2pool` processes on bsv_regtest, one shared regtest
    bitcoind, one CPU miner per node paced at HASH_RATE_PER_MINER and submitting shares
    only, links through 200 ms DelayRelays in a ring with chords (node i dials i+1 and
    i+2), the nodes starting from an equilibrium history whose last share is stamped when
    the miners start; counted from SETTLE_SECONDS after the miners start to the end of
    MINING_SECONDS (about 180 shares);
(b) simulated: `p2pool simulate --net bsv_regtest --nodes 6 --latency-ms L
    --latency-spread 0 --pool-fraction 1 --topology ring2 --work-delay-ms W
    --block-propagation-ms 1`, SIM_SEEDS seeds of SIM_SECONDS each, pooled (about 2,000
    shares); it starts from its own equilibrium history (world.py).

Matched: SHARE_PERIOD and the retarget (both run at equilibrium; both share intervals are
printed), topology, share target (the real miners log in as ADDRESS/0: shares at the pool's
minimum target, as the simulator mines), the stale definition (a node's own shares that are
not in the best chain, dead or orphan as /local_stats splits them), and the delays, which
the real run measures (simvalid_real.Observer):
* W, the work delay: per block and node, from bitcoind taking the block to the node's
  Stratum job on it (long poll, template, new work, notify), its mean, plus half the paced
  miner's 5-ms batch. All nodes share one bitcoind, so the long poll is the block's whole
  propagation (hence --block-propagation-ms 1);
* L, the per-hop delay: 200 ms plus what a real node takes to build, send, verify and adopt
  a share, which the simulator does not model (it relays at once): from bitcoind taking a
  share to the second job on it at a node one hop away is 200 ms + that + W, so L = that
  mean - W. The simulation with bare 200-ms links is printed beside the figure.
Printed with the figure: both stale rates (orphan and dead), share counts, intervals, the
measured delays and the load average at the start and end of the real window.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from common import call_in_reactor, measured_once, reactor_in_thread  # noqa: E402

NODES = 6
DELAY = 0.2
HASH_RATE_PER_MINER = 10000.0
MINING_SECONDS = 350.0
SETTLE_SECONDS = 20.0
SIM_SEEDS = 6
SIM_SECONDS = 600.0
BLOCK_PROPAGATION_MS = 1.0
MINER_BATCH_MS = 5.0     # p2pool.work.cpuminer.PACED_BATCH_SECONDS: new work waits half a batch on average


def real_stale_rate():
    import simvalid_real
    return simvalid_real.run(HASH_RATE_PER_MINER, MINING_SECONDS, SETTLE_SECONDS, call_in_reactor,
                             reactor_in_thread())


def simulated_stale_rate(latency_ms, work_delay_ms, seeds=SIM_SEEDS, seconds=SIM_SECONDS):
    from p2pool.sim.world import Scenario, Simulation
    runs = []
    for seed in range(1, seeds + 1):
        simulation = Simulation(Scenario(
            net='bsv_regtest', nodes=NODES, hours=seconds / 3600, latency_ms=latency_ms, latency_spread=0.0,
            pool_fraction=1.0, topology='ring2', work_delay_ms=work_delay_ms,
            block_propagation_ms=BLOCK_PROPAGATION_MS, seed=seed))
        figures = simulation.run()
        dead_found = sum(1 for entry in simulation.record.shares.values() if entry[2])
        runs.append({'seed': seed, 'shares': figures['shares'], 'stale_rate': figures['stale_rate'],
                     'orphan_rate': figures['orphan_rate'], 'doa_rate': figures['doa_rate'],
                     'dead_found': dead_found})
    shares = sum(run['shares'] for run in runs)
    stale = sum(round(run['stale_rate'] * run['shares']) for run in runs)
    dead = sum(round(run['doa_rate'] * run['shares']) for run in runs)
    return {'latency_ms': round(latency_ms, 1), 'work_delay_ms': round(work_delay_ms, 1),
            'shares': shares, 'stale': stale, 'dead': dead, 'rate': stale / shares if shares else None,
            'interval_s': round(seeds * seconds / shares, 3) if shares else None,
            'dead_found': sum(run['dead_found'] for run in runs),
            'per_seed': [run['stale_rate'] for run in runs]}


def _both():
    real = real_stale_rate()
    one_hop = (real['share_to_work_ms'].get('1') or {}).get('mean')
    if real['work_delay_ms']['mean'] is None or one_hop is None:
        raise RuntimeError('the real run measured no delays (no Stratum jobs on its blocks): %r' % (real,))
    work_delay = real['work_delay_ms']['mean'] + MINER_BATCH_MS / 2
    processing = max(0.0, one_hop - DELAY * 1000 - work_delay)
    return {'real': real, 'simulated': simulated_stale_rate(DELAY * 1000 + processing, work_delay),
            'bare_latency': simulated_stale_rate(DELAY * 1000, work_delay)}


def sim_vs_real_stale_ratio():
    result = measured_once('sim-validation', _both)
    real, simulated = result['real'], result['simulated']
    print('real: %s/%s = %.1f %% stale (%s orphan, %s dead; %s DOA found in the logs), one share per %s s '
          'over %s s; work delay %s ms; share to work by hops %s ms; load %s -> %s' % (
              real['stale'], real['shares'], 100 * (real['rate'] or 0), real['orphan'], real['dead'],
              real['doa_logged'], real['interval_s'], real['seconds'], real['work_delay_ms'],
              real['share_to_work_ms'], real['load']['start'], real['load']['end']), file=sys.stderr)
    for label, run in (('simulated', simulated), ('simulated, bare 200 ms links', result['bare_latency'])):
        print('%s: %s/%s = %.1f %% stale (%s dead; %s DOA found), one share per %s s, latency %s ms, '
              'work delay %s ms; per seed %s; ratio %.3f' % (
                  label, run['stale'], run['shares'], 100 * (run['rate'] or 0), run['dead'], run['dead_found'],
                  run['interval_s'], run['latency_ms'], run['work_delay_ms'], run['per_seed'],
                  run['rate'] / real['rate'] if real['rate'] else float('nan')), file=sys.stderr)
    if not real['rate']:
        return float('nan'), 'ratio'
    return simulated['rate'] / real['rate'], 'ratio'


BENCHMARKS = {'sim_vs_real_stale_ratio': sim_vs_real_stale_ratio}
