"""A whole simulated P2Pool network on one virtual clock (`p2pool simulate`).

Simulation(Scenario(...)).run() builds the network from a network file
(SHARE_PERIOD, CHAIN_LENGTH, REAL_CHAIN_LENGTH, TARGET_LOOKBEHIND, SPREAD, the
parent's BLOCK_PERIOD ... as they are), starts `nodes` SimNodes, runs them for
`hours` of simulated time and returns the figures (metrics.py).

What is modelled rather than run:

* hashing: the proof-of-work hash is the parent's real one (sha256d, scrypt)
  shifted right by POW_SHIFT bits, and MAX_TARGET is 2**234 - 1 (the retarget
  settles near 2**232), so a share needs ~16 header hashes while attempts keep
  magnitudes at which the retarget's integer arithmetic is exact as on mainnet;
  the time a share takes is drawn from the miner's hash rate (node.py). The
  share target, its PPLNS weight and whether it solves a block come from the
  real code;
* the parent chain: other miners' blocks arrive as a Poisson process at
  (1 - pool_fraction) / BLOCK_PERIOD; a block reaches each node's bitcoind after
  a log-normal delay (median `block_propagation_ms`); the pool's own blocks are
  its shares whose hash meets the block target, which is set so that the pool
  holds `pool_fraction` of the parent network's hash rate; the parent chain
  never reorganises;
* a start-up history of TARGET_LOOKBEHIND shares (mined with the real generator,
  paying an address of its own that the payout figures leave out) so that the
  retarget starts in equilibrium; every node loads it from its store and verifies it;
* churn: each node leaves at `churn` times per hour and comes back after an
  exponential pause (mean 10 min), restarting from its store; a quarter of the
  comebacks are new nodes with an empty store.
"""
from __future__ import annotations

import dataclasses
import gc
import math
import random
import time
from collections.abc import Callable
from typing import Any

from p2pool.bitcoin.data import target_to_bits
from p2pool.config import POW_FUNCTIONS, ParentNetwork, load_network
from p2pool.sharechain import generate
from p2pool.sharechain.share import Share, voting_version
from p2pool.sharechain.tracker import Tracker
from p2pool.sim import metrics
from p2pool.sim.adversary import Adversary, parse_adversary
from p2pool.sim.caches import ShareCache, WireCache
from p2pool.sim.clock import VirtualClock
from p2pool.sim.links import LinkModel, SimNetwork
from p2pool.sim.node import SimNode
from p2pool.testing.testchain import DEFAULT_SUBSIDY, easy_network, make_addresses, solve_plan

POW_SHIFT = 20
SIM_MAX_TARGET = 2**234 - 1
EQUILIBRIUM_TARGET = 2**232
START_TIME = 1_700_000_000.0
START_SPREAD = 10.0          # nodes start within this many seconds
BOOTSTRAP_PEERS = 8          # addresses of other nodes each node starts with
DRAIN_SECONDS = 60.0         # after mining stops, time for the last shares to spread
CHURN_PAUSE = 600.0
FRESH_JOIN_FRACTION = 0.25
GC_THRESHOLDS = (50_000, 20, 100)   # gc.set_threshold during a run (Simulation.run)


@dataclasses.dataclass
class Scenario:
    net: str = 'bitcoin'
    nodes: int = 20
    hours: float = 1.0
    latency_ms: float = 100.0
    latency_spread: float = 0.5
    bandwidth_mbit: float = 100.0
    loss: float = 0.0
    seed: int = 1
    hashrate: str = 'uniform'            # 'uniform', 'pareto:ALPHA' or 'list:0.3,0.2,...'
    adversaries: tuple[str, ...] = ()    # 'withhold:0.1', ...
    churn: float = 0.0                   # departures per node per hour
    outgoing_conns: int = 6
    max_conns: int = 40
    work_delay_ms: float = 50.0
    block_propagation_ms: float = 2000.0
    pool_fraction: float = 0.01
    share_period: float | None = None    # override the network's SHARE_PERIOD
    topology: str = 'random'             # 'random' (peer selection) or 'ringK' (node i keeps i+1..i+K)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaledPowParent(ParentNetwork):
    """The parent network with its proof-of-work hash shifted right by POW_SHIFT bits."""

    def pow_hash(self, header: bytes) -> int:
        return int(POW_FUNCTIONS[self.POW_FUNC](header)) >> POW_SHIFT

    def pow_hashes(self, headers: Any) -> list[int]:
        return [pow_hash >> POW_SHIFT for pow_hash in super().pow_hashes(headers)]


def simulation_network(name: str, share_period: float | None = None) -> Any:
    """The network file's constants with the simulator's scaled proof of work (module docstring)."""
    base = load_network(name)
    parent = ScaledPowParent(**{field.name: getattr(base.PARENT, field.name)
                                for field in dataclasses.fields(base.PARENT) if field.init})
    overrides: dict[str, Any] = {'PARENT': parent}
    if share_period is not None:
        overrides['SHARE_PERIOD'] = int(share_period)
    return easy_network(base, max_target=SIM_MAX_TARGET, **overrides)


class ParentChain:
    """Block heights every node can look up; each node has its own tip (node.learn_block)."""

    def __init__(self) -> None:
        self.tip_hash, self.tip_height = 0x1000, 0
        self.heights: dict[int, int] = {self.tip_hash: 0}


def hash_shares(spec: str, count: int, rng: random.Random) -> list[float]:
    """Fractions of the honest hash rate for `count` nodes (they sum to 1)."""
    kind, _, arg = spec.partition(':')
    if kind == 'uniform':
        raw = [1.0] * count
    elif kind == 'pareto':
        alpha = float(arg or 1.16)
        raw = [rng.paretovariate(alpha) for _ in range(count)]
    elif kind == 'list':
        raw = [float(x) for x in arg.split(',')]
        if len(raw) != count or min(raw) <= 0:
            raise ValueError('--hashrate list needs %d positive numbers' % count)
    else:
        raise ValueError('unknown hash-rate distribution %r (uniform, pareto:ALPHA, list:A,B,...)' % spec)
    total = sum(raw)
    return [value / total for value in raw]


def ring_size(topology: str, nodes: int) -> int:
    """0 for 'random'; K for 'ringK' (node i dials nodes i+1 ... i+K and no others)."""
    if topology == 'random':
        return 0
    if topology.startswith('ring') and topology[4:].isdigit():
        size = int(topology[4:])
        if 1 <= size <= (nodes - 1) // 2:
            return size
        raise ValueError('--topology ringK needs 1 <= K <= (nodes - 1) / 2, here at most %d' % ((nodes - 1) // 2))
    raise ValueError('unknown topology %r (random, or ringK: node i dials nodes i+1 ... i+K)' % topology)


class Simulation:
    def __init__(self, scenario: Scenario, progress: Callable[[float], None] | None = None) -> None:
        self.scenario = scenario
        self.progress = progress
        self.net = simulation_network(scenario.net, scenario.share_period)
        period = self.net.SHARE_PERIOD
        if scenario.pool_fraction >= 1:
            # the pool is the whole parent network (a regtest chain): every share is a block
            self.block_target = SIM_MAX_TARGET
        else:
            self.block_target = int(EQUILIBRIUM_TARGET * scenario.pool_fraction * period
                                    / self.net.PARENT.BLOCK_PERIOD)
        self.block_bits = target_to_bits(self.block_target)
        self.subsidy = DEFAULT_SUBSIDY
        self.clock = VirtualClock(START_TIME)
        self.network = SimNetwork(self.clock, LinkModel(
            scenario.latency_ms, scenario.latency_spread, scenario.bandwidth_mbit * 125000.0, scenario.loss,
            scenario.seed))
        self.cache = ShareCache()
        # previous share hash -> target of a share on it, once its whole retarget window is known (node.py)
        self.share_targets: dict[int, int] = {}
        self.wire = WireCache()
        self.parent = ParentChain()
        self.rng = random.Random(scenario.seed)
        self.record = metrics.Recorder(self)
        self.mining = True
        # N nodes have N(N-1)/2 distinct pairs: with more outgoing connections than that allows,
        # the real dialler keeps dialling peers that are already connected to it (it does not
        # count an incoming connection as one to that host) and the duplicates are refused
        self.outgoing_target = min(scenario.outgoing_conns, (scenario.nodes - 1) // 2) or 1
        self.ring = ring_size(scenario.topology, scenario.nodes)
        if self.ring:
            self.outgoing_target = 0   # only the fixed peers, as `-n` with --outgoing-conns 0
        self._build_nodes()

    # --- set-up ----------------------------------------------------------------------------

    def host_of(self, index: int) -> str:
        # a /16 of its own per node, so the per-group incoming limit never bites honest nodes
        return '%d.%d.0.1' % (11 + index // 256, index % 256)

    def _build_nodes(self) -> None:
        scenario = self.scenario
        adversaries = [parse_adversary(text) for text in scenario.adversaries]
        adversary_total = sum(fraction for _, fraction in adversaries)
        honest_count = scenario.nodes - len(adversaries)
        if honest_count < 1 or adversary_total >= 1:
            raise ValueError('adversaries need fewer nodes than --nodes and less than all the hash rate')
        honest = hash_shares(scenario.hashrate, honest_count, self.rng)
        fractions = [fraction for _, fraction in adversaries] + [share * (1 - adversary_total) for share in honest]
        total_rate = 2**256 / (EQUILIBRIUM_TARGET * self.net.SHARE_PERIOD)
        addresses = make_addresses(self.net, scenario.nodes + 1, kind='p2pkh', seed=b'sim%d' % scenario.seed)
        self.history_address = addresses[-1]
        self.nodes = [SimNode(self, index, fraction * total_rate, addresses[index])
                      for index, fraction in enumerate(fractions)]
        self.fractions = {node.address: fraction for node, fraction in zip(self.nodes, fractions)}
        for node, (kind, fraction) in zip(self.nodes, adversaries):
            node.adversary = Adversary(kind, fraction, self.net.SHARE_PERIOD)
        history = self._history()
        for node in self.nodes:
            for share in history:
                node.store.shares[share.hash] = share

    def _history(self) -> list[Share]:
        """TARGET_LOOKBEHIND shares before the start, as the pool's hash rate finds them at MAX_TARGET
        (the only pool target below that height), so that the retarget continues at equilibrium."""
        net = self.net
        tracker: Tracker[Share] = Tracker()
        count = net.TARGET_LOOKBEHIND
        spacing = net.SHARE_PERIOD * EQUILIBRIUM_TARGET / SIM_MAX_TARGET
        shares: list[Share] = []
        previous = None
        for index in range(count):
            timestamp = int(START_TIME - (count - index) * spacing)
            share_data = {'previous_share_hash': previous, 'coinbase': b'\x03' + index.to_bytes(3, 'little'),
                          'nonce': index, 'address': self.history_address, 'subsidy': self.subsidy, 'donation': 0,
                          'stale_info': None, 'desired_version': voting_version(35)}
            plan = generate.plan_share(tracker, net, generate.ShareTerms(
                share_data, self.block_target, timestamp, 2**256 - 1, known_txs={}, version=35))
            share = solve_plan(plan, self.block_bits, timestamp, last_txout_nonce=index,
                               previous_block=self.parent.tip_hash)
            tracker.add(share)
            shares.append(share)
            previous = share.hash
        self.record.history = {share.hash for share in shares}
        return shares

    def fixed_peers(self, index: int) -> tuple[tuple[str, int], ...]:
        """The peers node `index` dials and keeps (`-n`): the next `ring` nodes of a ring topology."""
        count = len(self.nodes)
        return tuple((self.host_of((index + step) % count), self.net.P2P_PORT) for step in range(1, self.ring + 1))

    def bootstrap_addresses(self, index: int, rng: random.Random) -> list[tuple[str, int]]:
        if self.ring:
            return []   # a fixed topology: no other addresses to dial
        others = [i for i in range(len(self.nodes)) if i != index]
        return [(self.host_of(i), self.net.P2P_PORT) for i in rng.sample(others, min(BOOTSTRAP_PEERS, len(others)))]

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run the scenario; returns its figures (metrics.py).

        The cyclic garbage collector runs less often meanwhile (GC_THRESHOLDS, the previous ones
        are put back): a run allocates millions of short-lived containers among a few hundred
        thousand long-lived ones (shares, timers), and at the default thresholds the collector
        spends a tenth of the run re-scanning the long-lived ones."""
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            return self._run()
        finally:
            gc.set_threshold(*thresholds)

    def _run(self) -> dict[str, Any]:
        started = time.monotonic()
        clock, scenario = self.clock, self.scenario
        for node in self.nodes:
            clock.callLater(self.rng.uniform(0, START_SPREAD), node.start)
            if scenario.churn > 0:
                clock.callLater(self.rng.expovariate(scenario.churn / 3600.0), self._leave, node)
        self._next_parent_block()
        clock.callLater(self.net.SHARE_PERIOD, self._sample)
        end = START_TIME + scenario.hours * 3600.0
        step = max(60.0, (end - START_TIME) / 200)
        while clock.now < end:
            clock.run_until(min(end, clock.now + step))
            if self.progress is not None:
                self.progress((clock.now - START_TIME) / (end - START_TIME))
        self.mining = False
        for node in self.nodes:
            if node._find_call is not None and node._find_call.active():
                node._find_call.cancel()
        clock.run_until(end + DRAIN_SECONDS)
        return self.record.figures(wall_s=time.monotonic() - started)

    def _leave(self, node: SimNode) -> None:
        if node.online:
            node.stop()
        self.clock.callLater(self.rng.expovariate(1 / CHURN_PAUSE), self._come_back, node)

    def _come_back(self, node: SimNode) -> None:
        if self.rng.random() < FRESH_JOIN_FRACTION:
            node.store.shares.clear()
            node.store.verified.clear()
        if self.mining:
            node.start()
            self.clock.callLater(self.rng.expovariate(self.scenario.churn / 3600.0), self._leave, node)

    def _next_parent_block(self) -> None:
        rate = (1 - self.scenario.pool_fraction) / self.net.PARENT.BLOCK_PERIOD
        if rate <= 0:
            return  # nobody else mines the parent chain
        self.clock.callLater(self.rng.expovariate(rate), self._parent_block)

    def _parent_block(self) -> None:
        if not self.mining:
            return
        self.new_block(self.rng.getrandbits(256), source=None)
        self._next_parent_block()

    def new_block(self, block_hash: int, source: SimNode | None) -> None:
        """A new parent block: known to `source` at once, to the other nodes after propagation."""
        parent = self.parent
        parent.tip_height += 1
        parent.tip_hash = block_hash
        parent.heights[block_hash] = parent.tip_height
        median = self.scenario.block_propagation_ms / 1000.0
        for node in self.nodes:
            if node is source:
                node.learn_block(block_hash, parent.tip_height)
            else:
                delay = median * math.exp(self.rng.gauss(0, 0.5))
                self.clock.callLater(delay, node.learn_block, block_hash, parent.tip_height)

    # --- events from the nodes -----------------------------------------------------------------

    def share_found(self, node: SimNode, share: Share, doa: bool) -> None:
        self.record.found(node, share, doa)
        if share.pow_hash <= self.block_target and (node.adversary is None or node.adversary.kind != 'selfish'):
            self.new_block(share.hash, source=node)
            self.record.block(share)

    def shares_released(self, shares: list[Share]) -> None:
        self.record.released(shares)

    def pool_block_seen(self, node: SimNode, share: Share) -> None:
        height = self.parent.heights.get(share.hash)
        if height is None:   # a selfish miner's block that only now comes out
            self.new_block(share.hash, source=node)
            self.record.block(share)
        else:
            node.learn_block(share.hash, height)

    def shares_arrived(self, node: SimNode, shares: list[Share]) -> None:
        self.record.arrived(node, shares)

    def _sample(self) -> None:
        self.record.sample()
        if self.mining:
            self.clock.callLater(self.net.SHARE_PERIOD, self._sample)
