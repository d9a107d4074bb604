"""`p2pool simulate` (p2pool/sim/): the node's real sharechain and peer code on one virtual clock."""
import json
import random

import pytest

from p2pool.sim import cli
from p2pool.sim.clock import VirtualClock
from p2pool.sim.world import Scenario, Simulation


def simulate(**changes):
    return Simulation(Scenario(**changes)).run()


def without_timing(figures):
    return {key: value for key, value in figures.items() if key not in ('wall_s', 'rss_mb')}


def test_clock_runs_calls_in_time_order_and_honours_reset_and_cancel():
    clock, ran = VirtualClock(100.0), []
    clock.callLater(2, ran.append, 'b')
    late = clock.callLater(1, ran.append, 'reset to 3')
    clock.callLater(1, ran.append, 'a')
    gone = clock.callLater(1.5, ran.append, 'cancelled')
    early = clock.callLater(10, ran.append, 'reset to 0.5')
    late.reset(3)
    gone.cancel()
    early.reset(0.5)
    clock.run_until(105)
    assert ran == ['reset to 0.5', 'a', 'b', 'reset to 3']
    assert clock.seconds() == 105 and clock.pending == 0
    assert not late.active() and not gone.active()


def test_clock_order_is_time_then_queueing_order_across_seconds_and_in_runs():
    """Calls due within the current second and calls parked for later seconds (clock.py) run in one
    (time, queueing order) sequence, including calls queued by running calls and run_until
    boundaries inside a second; cancelled calls never run."""
    rng = random.Random(5)
    clock, ran, expected = VirtualClock(100.3), [], []
    sequence = iter(range(10**6))

    def queue(delay, cancel=False):
        label = next(sequence)
        when = clock.now + delay if delay > 0 else clock.now
        if rng.random() < 0.5 or cancel:
            call = clock.callLater(delay, run, label)
            if cancel:
                call.cancel()
                return
        else:
            clock.deliver_at(when, run, label)
        expected.append((when, label))

    def run(label):
        ran.append((clock.now, label))
        for _ in range(rng.randrange(3)):
            queue(rng.choice([0, 0.25, 0.7, 1.0, 2.5, 30.0]), cancel=rng.random() < 0.2)

    for _ in range(200):
        queue(rng.choice([0, 0.25, 0.5, 1.0, 1.75, 3.0, 60.0]) * rng.randrange(1, 4), cancel=rng.random() < 0.2)
    for end in (100.9, 101.0, 101.5, 104.0, 400.0, 10**6):
        clock.run_until(end)
        assert clock.seconds() == end
    assert ran == sorted(expected) and clock.pending == 0


def test_a_run_is_deterministic_for_a_seed():
    first = simulate(nodes=4, hours=0.15, share_period=10, seed=7)
    again = simulate(nodes=4, hours=0.15, share_period=10, seed=7)
    other = simulate(nodes=4, hours=0.15, share_period=10, seed=8)
    assert first['shares'] > 30
    assert without_timing(first) == without_timing(again)
    assert without_timing(first) != without_timing(other)


def test_stale_rate_rises_with_latency():
    fast = simulate(nodes=5, hours=0.3, share_period=10, latency_ms=10, seed=3)
    slow = simulate(nodes=5, hours=0.3, share_period=10, latency_ms=1000, seed=3)
    assert fast['propagation_p50_ms'] < 100 < 1000 < slow['propagation_p50_ms']
    assert fast['stale_rate'] < 0.02
    assert slow['stale_rate'] > fast['stale_rate'] + 0.04


def test_payout_share_tracks_hash_rate_over_a_day_at_100_ms():
    # SHARE_PERIOD 60 s halves the work of a day on bitcoin's 30 s and keeps ~1,440 shares
    figures = simulate(nodes=3, hours=24, latency_ms=100, share_period=60, hashrate='list:0.5,0.3,0.2', seed=1)
    assert figures['shares'] > 1300
    assert figures['fairness_worst'] < 0.20  # every miner here has >= 10 % of the hash rate


def test_a_withholding_node_earns_less_than_its_hash_rate_share():
    figures = simulate(nodes=5, hours=0.5, share_period=10, latency_ms=100, adversaries=('withhold:0.25',), seed=3)
    [adversary] = figures['adversaries']
    assert adversary['kind'] == 'withhold' and adversary['hash_share'] == 0.25
    assert adversary['payout_share'] < 0.9 * adversary['hash_share']


def test_command_prints_one_json_object_and_refuses_bad_options(capsys):
    assert cli.main(['--nodes', '3', '--hours', '0.05', '--share-period', '10', '--outgoing-conns', '1',
                     '--json']) == 0
    figures = json.loads(capsys.readouterr().out)
    for key in ('nodes', 'simulated_s', 'wall_s', 'shares', 'blocks', 'orphan_rate', 'doa_rate',
                'propagation_p50_ms', 'propagation_p99_ms', 'fairness_worst', 'rss_mb'):
        assert key in figures
    assert figures['nodes'] == 3 and figures['simulated_s'] == 180.0
    for bad in (['--adversary', 'bribe:0.1'], ['--adversary', 'withhold:2'], ['--nodes', '1'],
                ['--hashrate', 'zipf'], ['--net', 'nosuchnet'], ['--sweep', 'colour=1,2']):
        assert cli.main(bad + ['--hours', '0.01']) == 2
        err = capsys.readouterr().err
        assert err.startswith('p2pool simulate: ') and err.count('\n') == 1, err


@pytest.mark.parametrize('kind', ['selfish', 'flood'])
def test_other_adversaries_run_and_are_reported(kind):
    figures = simulate(nodes=5, hours=0.25, share_period=10, adversaries=('%s:0.3' % kind,), seed=4)
    [adversary] = figures['adversaries']
    assert adversary['kind'] == kind and 0 <= adversary['payout_share'] < 1


def test_churned_nodes_come_back_from_their_store_and_follow_the_chain():
    sim = Simulation(Scenario(nodes=6, hours=0.3, share_period=10, churn=6, seed=5))
    figures = sim.run()
    assert any(node.starts > 1 for node in sim.nodes)
    online = [node for node in sim.nodes if node.online]
    assert len(online) >= 2 and figures['shares'] > 60
    bests = [node.chain.best_share_hash.value for node in online]
    majority = max(set(bests), key=bests.count)
    assert bests.count(majority) >= len(online) - 1   # one may still be downloading after its return
    assert figures['stale_rate'] < 0.2


def test_a_ring_topology_keeps_the_fixed_peers_and_stale_counts_match_the_nodes_accounting(capsys):
    sim = Simulation(Scenario(nodes=6, hours=0.1, share_period=10, latency_ms=300, topology='ring2', seed=2))
    figures = sim.run()
    for node in sim.nodes:
        neighbours = {(node.index + step) % 6 for step in (-2, -1, 1, 2)}
        assert {peer.host for peer in node.p2p.peers.values()} == {sim.host_of(i) for i in neighbours}
    # stale = own shares not in the best chain, as each node's /local_stats counts them (dead or orphan)
    counts = [node.chain.stale.counts(node.chain.best_share_hash.value) for node in sim.nodes]
    assert sum(c.total for c in counts) == figures['shares'] > 20
    assert sum(c.orphans + c.doas for c in counts) == round(figures['stale_rate'] * figures['shares'])
    for bad in ('ring3', 'mesh'):
        assert cli.main(['--nodes', '6', '--hours', '0.01', '--topology', bad]) == 2
        assert capsys.readouterr().err.startswith('p2pool simulate: ')


def test_an_equilibrium_chain_comes_down_to_the_share_period_of_its_hash_rate():
    # the start the validation bench's real nodes load (bench/simvalid_real.py)
    from p2pool.config import load_network
    from p2pool.sharechain.generate import pool_target
    from p2pool.sharechain.tracker import Tracker
    from p2pool.testing.testchain import EQUILIBRIUM_TAIL, equilibrium_chain, make_addresses
    net = load_network('bsv_regtest')
    hash_rate = 3000.0
    shares = equilibrium_chain(net, hash_rate, 1_800_000_000, make_addresses(net, 1)[0], 0x207fffff, 0x1234)
    assert shares[0].target >= net.MAX_TARGET // 2 and shares[-1].timestamp == 1_800_000_000
    tracker = Tracker()
    for share in shares:
        tracker.add(share)
    seconds_per_share = 2**256 / pool_target(tracker, shares[-1].hash, len(shares), net) / hash_rate
    assert abs(seconds_per_share / net.SHARE_PERIOD - 1) < 0.15
    tail = shares[-EQUILIBRIUM_TAIL:]
    assert (tail[-1].timestamp - tail[0].timestamp) / (len(tail) - 1) == pytest.approx(net.SHARE_PERIOD, rel=0.2)
