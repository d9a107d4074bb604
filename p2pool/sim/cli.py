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
import gc
import json
import logging
import math
import os
import sys
from typing import Any

from p2pool.sim.adversary import parse_adversary
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
    scenario = Scenario(net=args.net, nodes=args.nodes, hours=args.hours, latency_ms=args.latency_ms,
                        latency_spread=args.latency_spread, bandwidth_mbit=args.bandwidth_mbit, loss=args.loss,
                        seed=args.seed, hashrate=args.hashrate, adversaries=tuple(args.adversary),
                        churn=args.churn, outgoing_conns=args.outgoing_conns, max_conns=args.max_conns,
                        work_delay_ms=args.work_delay_ms, block_propagation_ms=args.block_propagation_ms,
                        pool_fraction=args.pool_fraction, share_period=args.share_period, topology=args.topology)
    check_scenario(scenario)
    return scenario


def check_scenario(scenario: Scenario) -> None:
    """ValueError with a one-line reason for a scenario the simulator cannot run as meant: a NaN would
    never let the virtual clock reach the end, a negative delay would run effects before their causes.
    Checked for every run, a swept value included, before the first one starts."""
    def number(value: float, option: str, low: float, low_included: bool = True, high: float = math.inf) -> None:
        above = value >= low if low_included else value > low
        if not (math.isfinite(value) and above and value < high):
            bound = ('at least %g' if low_included else 'more than %g') % low
            if high != math.inf:
                bound += ' and below %g' % high
            raise ValueError('--%s must be a number %s, got %r' % (option, bound, value))

    if scenario.nodes < 2:
        raise ValueError('--nodes must be at least 2, got %d' % scenario.nodes)
    number(scenario.hours, 'hours', 0, low_included=False)
    number(scenario.latency_ms, 'latency-ms', 0)
    number(scenario.latency_spread, 'latency-spread', 0)
    number(scenario.bandwidth_mbit, 'bandwidth-mbit', 0, low_included=False)
    number(scenario.loss, 'loss', 0, high=1)
    number(scenario.churn, 'churn', 0)
    number(scenario.work_delay_ms, 'work-delay-ms', 0)
    number(scenario.block_propagation_ms, 'block-propagation-ms', 0)
    if not (math.isfinite(scenario.pool_fraction) and 0 < scenario.pool_fraction <= 1):
        raise ValueError('--pool-fraction must lie in (0, 1]; 1 makes every share a block, as on regtest')
    if scenario.share_period is not None and not (
            math.isfinite(scenario.share_period) and scenario.share_period >= 1
            and scenario.share_period == int(scenario.share_period)):
        raise ValueError('--share-period must be a whole number of seconds, at least 1, got %r'
                         % scenario.share_period)
    if scenario.outgoing_conns < 1:
        raise ValueError('--outgoing-conns must be at least 1, got %d' % scenario.outgoing_conns)
    if scenario.max_conns < 1:
        raise ValueError('--max-conns must be at least 1, got %d' % scenario.max_conns)
    kind, _, alpha = scenario.hashrate.partition(':')
    if kind == 'pareto' and alpha:
        try:
            shape = float(alpha)
        except ValueError:
            shape = math.nan
        if not (math.isfinite(shape) and shape > 0):
            raise ValueError('--hashrate pareto:ALPHA needs a positive ALPHA (1.16: the 80/20 rule), got %r' % alpha)
    if kind == 'list':
        try:
            shares = [float(value) for value in alpha.split(',')]
        except ValueError:
            shares = [math.nan]
        if not all(math.isfinite(value) and value > 0 for value in shares):
            raise ValueError('--hashrate list:A,B,... needs positive numbers, got %r' % alpha)
    for text in scenario.adversaries:
        parse_adversary(text)


def sweep_cases(scenario: Scenario, option: str, values: list[float]) -> list[Scenario]:
    """The scenario once per swept value, each checked (a whole number where the option counts things)."""
    field = SWEEPABLE[option]
    cases = []
    for value in values:
        if type(getattr(Scenario(), field) or 0.0) is int:
            if value != int(value):
                raise ValueError('--sweep %s takes whole numbers, got %r' % (option, value))
            changes: dict[str, Any] = {field: int(value)}
        else:
            changes = {field: value}
        case = dataclasses.replace(scenario, **changes)
        check_scenario(case)
        cases.append(case)
    return cases


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


def main(argv: list[str], exiting: bool = False) -> int:
    """`p2pool simulate ARGS`; `exiting`: the process ends when this returns (the console command)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format='%(levelname)s %(name)s: %(message)s')
    try:
        scenario = scenario_from_args(args)
        sweep = parse_sweep(args.sweep) if args.sweep else None
        cases = [(scenario, 'simulating')] if sweep is None else [
            (case, '%s=%g' % (sweep[0], value)) for case, value in zip(sweep_cases(scenario, *sweep), sweep[1])]
        if args.plot:
            prepare_plot_directory(args.plot)   # before the runs: a long run must not end in "no matplotlib"
        runs = []
        for case, label in cases:
            figures = run_scenario(case, label)
            if sweep is not None:
                figures['sweep_value'] = getattr(case, SWEEPABLE[sweep[0]])
            runs.append(figures)
            # The finished network is cyclic garbage (nodes, connections and timers refer to each
            # other): 0.9 GB after 100 nodes x 24 h, which one full collection takes ~3 s to free.
            # Between a sweep's runs that memory is needed back; after the last run of a process
            # that is about to exit, its objects are frozen (never scanned) instead.
            if len(runs) < len(cases):
                gc.collect()
            elif exiting:
                gc.freeze()
    except (ValueError, OSError, ImportError) as e:
        print('p2pool simulate: %s' % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('p2pool simulate: interrupted', file=sys.stderr)
        return 130
    # the figures first: a chart that cannot be written must not lose them
    if args.json:
        print(json.dumps(runs[0] if sweep is None else {'sweep': sweep[0], 'runs': runs}, sort_keys=True))
    else:
        print(format_table(runs))
    if args.plot:
        from p2pool.sim import plot
        try:
            for path in plot.write_charts(args.plot, runs, sweep[0] if sweep else None, scenario):
                print('chart: %s' % path, file=sys.stderr)
        except (OSError, ValueError) as e:
            print('p2pool simulate: cannot write the charts: %s' % e, file=sys.stderr)
            return 1
    return 0


def prepare_plot_directory(directory: str) -> None:
    """ImportError without matplotlib, OSError when `directory` cannot be made or written."""
    from p2pool.sim import plot
    plot.load_pyplot()
    os.makedirs(directory, exist_ok=True)
    if not os.access(directory, os.W_OK):
        raise OSError('--plot: cannot write to %s' % directory)
