"""`p2pool simulate`: run a simulated network and print its figures.

    p2pool simulate --net bitcoin --nodes 100 --hours 24 --latency-ms 100
    p2pool simulate --nodes 30 --adversary selfish:0.3 --json
    p2pool simulate --nodes 30 --hours 6 --sweep latency-ms=50,200,800 --plot docs/sim

Without --json a table; with --json one JSON object (with --sweep: {"sweep":
..., "runs": [...]}). --plot DIR writes PNG charts (matplotlib, the `[plot]`
extra). A progress bar goes to stderr when it is a terminal. Bad options end
with one line on stderr and status 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import Any

from p2pool.sim.world import Scenario, Simulation

TABLE_KEYS = ('net', 'share_period_s', 'nodes', 'simulated_s', 'wall_s', 'shares', 'blocks', 'orphan_rate',
              'doa_rate', 'stale_rate', 'propagation_p50_ms', 'propagation_p99_ms', 'fairness_worst', 'rss_mb')
SWEEPABLE = {'latency-ms': 'latency_ms', 'latency-spread': 'latency_spread', 'share-period': 'share_period',
             'nodes': 'nodes', 'loss': 'loss', 'churn': 'churn', 'outgoing-conns': 'outgoing_conns'}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='p2pool simulate', description=__doc__.split('\n\n')[0])
    add = parser.add_argument
    add('--net', default='bitcoin', help='network file (SHARE_PERIOD, CHAIN_LENGTH, ... come from it)')
    add('--nodes', type=int, default=20)
    add('--hours', type=float, default=1.0, help='simulated hours')
    add('--latency-ms', type=float, default=100.0, help='median one-way link latency')
    add('--latency-spread', type=float, default=0.5, help='sigma of ln(latency) over links')
    add('--bandwidth-mbit', type=float, default=100.0, help="each node's uplink")
    add('--loss', type=float, default=0.0, help='chance that a write needs a retransmission')
    add('--seed', type=int, default=1)
    add('--hashrate', default='uniform', help='uniform, pareto:ALPHA or list:A,B,... (one per honest node)')
    add('--adversary', action='append', default=[], metavar='KIND:FRACTION',
        help='withhold:0.1, selfish:0.4 or flood:0.05 (repeatable)')
    add('--churn', type=float, default=0.0, help='departures per node per hour')
    add('--outgoing-conns', type=int, default=6)
    add('--topology', default='random',
        help='random (peer selection with --outgoing-conns) or ringK: node i keeps nodes i+1 ... i+K (`-n`)')
    add('--max-conns', type=int, default=40)
    add('--work-delay-ms', type=float, default=50.0, help='new work to the miner')
    add('--block-propagation-ms', type=float, default=2000.0, help='median parent-block propagation')
    add('--pool-fraction', type=float, default=0.01,
        help="the pool's share of the parent's hash rate (1: every share is a block, as on regtest)")
    add('--share-period', type=float, default=None, help="override the network's SHARE_PERIOD")
    add('--sweep', default=None, metavar='OPTION=V1,V2,...',
        help='run once per value of one option (%s)' % ', '.join(sorted(SWEEPABLE)))
    add('--json', action='store_true', help='print one JSON object')
    add('--plot', default=None, metavar='DIR', help='write PNG charts to DIR (needs matplotlib)')
    add('--log-level', default='error', choices=('debug', 'info', 'warning', 'error'))
    return parser


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    if args.nodes < 2:
        raise ValueError('--nodes must be at least 2')
    if args.hours <= 0:
        raise ValueError('--hours must be positive')
    if args.latency_ms < 0 or args.latency_spread < 0 or args.bandwidth_mbit <= 0 or not 0 <= args.loss < 1:
        raise ValueError('latency, spread and loss must not be negative, bandwidth must be positive, loss < 1')
    if not 0 < args.pool_fraction <= 1:
        raise ValueError('--pool-fraction must lie in (0, 1]; 1 makes every share a block, as on regtest')
    if args.share_period is not None and args.share_period < 1:
        raise ValueError('--share-period must be at least 1 second')
    return Scenario(net=args.net, nodes=args.nodes, hours=args.hours, latency_ms=args.latency_ms,
                    latency_spread=args.latency_spread, bandwidth_mbit=args.bandwidth_mbit, loss=args.loss,
                    seed=args.seed, hashrate=args.hashrate, adversaries=tuple(args.adversary), churn=args.churn,
                    outgoing_conns=args.outgoing_conns, max_conns=args.max_conns,
                    work_delay_ms=args.work_delay_ms, block_propagation_ms=args.block_propagation_ms,
                    pool_fraction=args.pool_fraction, share_period=args.share_period, topology=args.topology)


def parse_sweep(text: str) -> tuple[str, list[float]]:
    option, _, values = text.partition('=')
    if option not in SWEEPABLE or not values:
        raise ValueError('--sweep takes OPTION=V1,V2,... with OPTION one of %s' % ', '.join(sorted(SWEEPABLE)))
    try:
        return option, [float(value) for value in values.split(',')]
    except ValueError:
        raise ValueError('--sweep values must be numbers: %r' % values) from None


class Progress:
    """A one-line bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()

    def __call__(self, fraction: float) -> None:
        if self.enabled:
            width = 30
            filled = int(width * min(fraction, 1.0))
            sys.stderr.write('\r%s [%s%s] %3d%%' % (self.label, '#' * filled, '.' * (width - filled),
                                                    int(100 * fraction)))
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write('\r' + ' ' * (len(self.label) + 40) + '\r')
            sys.stderr.flush()


def run_scenario(scenario: Scenario, label: str) -> dict[str, Any]:
    progress = Progress(label)
    try:
        return Simulation(scenario, progress=progress).run()
    finally:
        progress.done()


def format_table(runs: list[dict[str, Any]]) -> str:
    lines = []
    if len(runs) == 1:
        figures = runs[0]
        for key in TABLE_KEYS:
            lines.append('%-20s %s' % (key, _cell(figures.get(key))))
    else:
        lines.append('  '.join('%10s' % key[:10] for key in TABLE_KEYS[1:]))
        for figures in runs:
            lines.append('  '.join('%10s' % _cell(figures.get(key)) for key in TABLE_KEYS[1:]))
    for figures in runs:
        for adversary in figures.get('adversaries', ()):
            lines.append('adversary %-9s hash share %.3f  payout share %.3f  (x%.2f)' % (
                adversary['kind'], adversary['hash_share'], adversary['payout_share'], adversary['payout_ratio']))
    return '\n'.join(lines)


def _cell(value: Any) -> str:
    return '-' if value is None else str(value)


def main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format='%(levelname)s %(name)s: %(message)s')
    try:
        scenario = scenario_from_args(args)
        sweep = parse_sweep(args.sweep) if args.sweep else None
        runs = []
        if sweep is None:
            runs.append(run_scenario(scenario, 'simulating'))
        else:
            option, values = sweep
            field = SWEEPABLE[option]
            for value in values:
                kind = type(getattr(Scenario(), field) or 0.0)
                changes: dict[str, Any] = {field: int(value) if kind is int else value}
                case = dataclasses.replace(scenario, **changes)
                figures = run_scenario(case, '%s=%g' % (option, value))
                figures['sweep_value'] = value
                runs.append(figures)
        if args.plot:
            from p2pool.sim import plot
            plot.write_charts(args.plot, runs, sweep[0] if sweep else None, scenario)
    except (ValueError, OSError, ImportError) as e:
        print('p2pool simulate: %s' % e, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(runs[0] if sweep is None else {'sweep': sweep[0], 'runs': runs}, sort_keys=True))
    else:
        print(format_table(runs))
    return 0
