"""Figures of `p2pool simulate` (p2pool/sim/, issue 14 §4).

* sim_100x24h_wall_s  -- wall seconds for 100 nodes x 24 simulated hours on bitcoin
  (SHARE_PERIOD 30 s, 100 ms links, uniform hash rate); goal < 120 s.
* sim_1000x2h_wall_s  -- wall seconds for 1,000 nodes x 2 simulated hours; goal < 600 s.
* sim_1000x2h_rss_mb  -- peak resident memory of that run.
* sim_node_hours_per_s -- simulated node-hours per wall second in the 100-node run
  (the figure that says how far a machine gets in a given time).

Each run is the command `p2pool simulate --nodes N --hours H --json` in this process.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from common import measured_once  # noqa: E402  (bench/ is not a package)


def _run(nodes, hours):
    from p2pool.sim.world import Scenario, Simulation
    return Simulation(Scenario(nodes=nodes, hours=hours)).run()


def _hundred():
    return measured_once('sim-100x24h', lambda: _run(100, 24))


def _thousand():
    return measured_once('sim-1000x2h', lambda: _run(1000, 2))


def sim_100x24h_wall_s():
    return _hundred()['wall_s'], 's'


def sim_node_hours_per_s():
    figures = _hundred()
    return figures['nodes'] * figures['simulated_s'] / 3600 / figures['wall_s'], 'node-hours/s'


def sim_1000x2h_wall_s():
    return _thousand()['wall_s'], 's'


def sim_1000x2h_rss_mb():
    return _thousand()['rss_mb'], 'MB'


BENCHMARKS = {
    'sim_100x24h_wall_s': sim_100x24h_wall_s,
    'sim_node_hours_per_s': sim_node_hours_per_s,
    'sim_1000x2h_wall_s': sim_1000x2h_wall_s,
    'sim_1000x2h_rss_mb': sim_1000x2h_rss_mb,
}
