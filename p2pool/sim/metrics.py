"""The figures of a simulation run (issue 14 §3).

* shares / blocks: shares the miners found after the start (history excluded) and
  the pool's blocks among them;
* orphan_rate / doa_rate: over honest nodes' shares, the shares that are not in
  the final best chain of an honest reference node, split as a node's
  /local_stats splits them (sharechain/stats.py StaleAccounting): dead (found on
  work older than the node's newest, node.py) or orphan (the others). A dead share
  that still made it into the chain is paid and counts as neither; stale_rate is
  their sum;
* propagation_p50_ms / propagation_p99_ms: per honest share of the final best
  chain, the time from its creation until every honest node online at that
  moment had it in its tracker (shares some node never received are left out);
* fairness_worst: over miners with at least 10 % of the hash rate, the largest
  |time-averaged PPLNS weight share / hash-rate share - 1| (the time average is
  the ratio of the summed weights, so that the first samples of a window that
  holds a few shares do not dominate a short run), the weights being
  sampled every SHARE_PERIOD at the best share of an honest online node with
  the real PPLNS window (what the next block would pay), counting only shares
  found during the run (the start-up history pays an address of its own);
* adversaries: each adversary's kind, hash-rate share and payout share (its
  time-averaged PPLNS weight share, as for fairness_worst);
* rss_mb: peak resident memory of the process.
"""
from __future__ import annotations

import resource
from typing import Any

from p2pool.sharechain import pplns


FAIRNESS_MIN_SHARE = 0.10


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Recorder:
    def __init__(self, world: Any) -> None:
        self.world = world
        self.history: set[int] = set()
        self.shares: dict[int, tuple[int, float, bool]] = {}   # hash -> (node index, found at, doa)
        self.blocks: list[int] = []
        self.arrivals: dict[int, list[Any]] = {}               # hash -> [created, nodes to reach, count, done]
        self.weight_sums: dict[str, float] = {}
        self.mined_sum = 0.0
        self.samples = 0

    # --- during the run ------------------------------------------------------------------

    def found(self, node: Any, share: Any, doa: bool) -> None:
        now = self.world.clock.now
        self.shares[share.hash] = (node.index, now, doa)
        if node.adversary is None:
            online = sum(1 for other in self.world.nodes if other.online and other.adversary is None)
            self.arrivals[share.hash] = [now, online, 0, None]

    def arrived(self, node: Any, shares: list[Any]) -> None:
        if node.adversary is not None:
            return  # "every node" is every honest node: a banned flooder may hear of a share hours later
        arrivals = self.arrivals
        for share in shares:
            entry = arrivals.get(share.hash)
            if entry is not None and entry[3] is None:
                entry[2] += 1
                if entry[2] >= entry[1]:
                    entry[3] = self.world.clock.now

    def block(self, share: Any) -> None:
        self.blocks.append(share.hash)

    def released(self, shares: list[Any]) -> None:
        pass

    def reference(self) -> Any:
        for node in self.world.nodes:
            if node.online and node.adversary is None:
                return node
        return None

    def sample(self) -> None:
        node = self.reference()
        if node is None or node.chain is None:
            return
        best = node.chain.best_share_hash.value
        if best is None:
            return
        tracker, net = node.chain.tracker, self.world.net
        max_shares = min(tracker.get_height(best), net.REAL_CHAIN_LENGTH)
        weights, total, _ = pplns.get_cumulative_weights(
            tracker, best, max_shares, pplns.pplns_desired_weight(self.world.block_target, net))
        # the start-up history pays an address of its own: only shares found in the run count
        history = self.world.history_address
        mined = sum(weight for key, weight in weights.items() if key != history)
        if not mined:
            return
        for key, weight in weights.items():
            if key != history:
                self.weight_sums[key] = self.weight_sums.get(key, 0.0) + weight
        self.mined_sum += mined
        self.samples += 1

    # --- at the end ----------------------------------------------------------------------

    def payout_shares(self) -> dict[str, float]:
        """Each payee's PPLNS weight summed over the samples, over the sum of all payees' weights:
        a time average in which the early samples of a short window count for as little as it holds."""
        return {key: value / self.mined_sum for key, value in self.weight_sums.items()} if self.mined_sum else {}

    def figures(self, wall_s: float) -> dict[str, Any]:
        world = self.world
        nodes = world.nodes
        reference = self.reference()
        main: set[int] = set()
        if reference is not None and reference.chain is not None:
            best = reference.chain.best_share_hash.value
            tracker = reference.chain.tracker
            if best is not None:
                main = {share.hash for share in tracker.get_chain(best, tracker.get_height(best))}
        honest = [(share_hash, entry) for share_hash, entry in self.shares.items()
                  if nodes[entry[0]].adversary is None]
        doa = sum(1 for share_hash, entry in honest if entry[2] and share_hash not in main)
        orphans = sum(1 for share_hash, entry in honest if not entry[2] and share_hash not in main)
        delays = [(entry[3] - entry[0]) * 1000 for share_hash, entry in self.arrivals.items()
                  if entry[3] is not None and share_hash in main]
        payouts = self.payout_shares()
        fairness = [abs(payouts.get(address, 0.0) / fraction - 1)
                    for address, fraction in world.fractions.items()
                    if fraction >= FAIRNESS_MIN_SHARE and nodes_by_address(nodes, address).adversary is None]
        adversaries = [{'kind': node.adversary.kind, 'hash_share': round(node.adversary.fraction, 4),
                        'payout_share': round(payouts.get(node.address, 0.0), 4),
                        'payout_ratio': round(payouts.get(node.address, 0.0) / node.adversary.fraction, 4),
                        'shares': sum(1 for entry in self.shares.values() if entry[0] == node.index),
                        'in_chain': sum(1 for h, entry in self.shares.items()
                                        if entry[0] == node.index and h in main)}
                       for node in nodes if node.adversary is not None]
        count = len(honest)
        figures: dict[str, Any] = {
            'net': world.scenario.net,
            'share_period_s': world.net.SHARE_PERIOD,
            'nodes': len(nodes),
            'simulated_s': round(world.scenario.hours * 3600.0, 3),
            'wall_s': round(wall_s, 3),
            'shares': len(self.shares),
            'blocks': len(self.blocks),
            'orphan_rate': round(orphans / count, 5) if count else None,
            'doa_rate': round(doa / count, 5) if count else None,
            'stale_rate': round((orphans + doa) / count, 5) if count else None,
            'propagation_p50_ms': _round(percentile(delays, 0.50)),
            'propagation_p99_ms': _round(percentile(delays, 0.99)),
            'fairness_worst': round(max(fairness), 4) if fairness else None,
            'rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        }
        if adversaries:
            figures['adversaries'] = adversaries
        figures['events'] = world.clock.executed
        figures['cache'] = {'parse_hits': world.cache.parse_hits, 'parse_misses': world.cache.parse_misses,
                            'check_hits': world.cache.check_hits, 'check_misses': world.cache.check_misses,
                            'decode_hits': world.wire.hits, 'decode_misses': world.wire.misses}
        return figures


def nodes_by_address(nodes: list[Any], address: str) -> Any:
    for node in nodes:
        if node.address == address:
            return node
    raise KeyError(address)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
