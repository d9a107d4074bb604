"""`/metrics`: the node's numbers in the Prometheus text exposition format (version 0.0.4),
written by `prometheus_client`.

Levels that go up and down (rates, counts of peers, latencies, payouts) are gauges;
numbers that only grow while the node runs (shares found, P2P bytes) are counters
(exposed with the `_total` suffix). Label sets are bounded: peers and shares use fixed
label values, and per-miner hash rates list at most MAX_MINER_LABELS miners (the
fastest) plus one `miner="other"` series for the rest. A number that is not known yet
(no best share, no template, no latency measured) is left out rather than reported as 0.

The optional facade member `payout_totals()` ({state: coins} of the payout history)
adds the payout gauges.
"""
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry
from typing import Any

import p2pool
from p2pool.bitcoin.data import target_to_difficulty
from p2pool.sharechain import stats
from p2pool.web import localstats
from p2pool.web.api import HttpError, attempts_to_share_and_block, hour_lookbehind, sync_progress
from p2pool.web.localstats import my_expected_payout

__all__ = ['render', 'CONTENT_TYPE', 'MAX_MINER_LABELS']

CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
MAX_MINER_LABELS = 20


class _Families:
    """Collects metric families for one scrape; None values are left out."""

    def __init__(self) -> None:
        self.families: list[Any] = []

    def _add(self, family_type, name, help_text, samples) -> None:
        if not isinstance(samples, list):
            samples = [({}, samples)]
        samples = [(labels, value) for labels, value in samples if value is not None]
        if not samples:
            return
        label_names = list(samples[0][0])
        family = family_type(name, help_text, labels=label_names)
        for labels, value in samples:
            family.add_metric([str(labels[key]) for key in label_names], float(value))
        self.families.append(family)

    def gauge(self, name, help_text, samples) -> None:
        """samples: a number, or [(labels dict, number)] with the same label names."""
        self._add(GaugeMetricFamily, name, help_text, samples)

    def counter(self, name, help_text, samples) -> None:
        """As gauge(); `name` without the `_total` suffix that the exposition adds."""
        self._add(CounterMetricFamily, name, help_text, samples)

    def collect(self):
        return iter(self.families)


def _bounded_miners(rates):
    """[(labels, rate)] for the MAX_MINER_LABELS fastest miners and one 'other' series."""
    ordered = sorted(rates.items(), key=lambda item: (-item[1], item[0]))
    samples = [({'miner': miner}, rate) for miner, rate in ordered[:MAX_MINER_LABELS]]
    if len(ordered) > MAX_MINER_LABELS:
        samples.append(({'miner': 'other'}, sum(rate for _miner, rate in ordered[MAX_MINER_LABELS:])))
    return samples


def _pool_section(out, ctx, best, height) -> None:
    lookbehind = hour_lookbehind(ctx.net, height)
    if lookbehind >= 2:
        nonstale = stats.pool_attempts_per_second(ctx.tracker, best, lookbehind)
        stale_prop = stats.average_stale_prop(ctx.tracker, best, lookbehind)
        out.gauge('p2pool_pool_hash_rate', 'Pool hash rate in H/s over the last hour of shares, stales included.',
                  nonstale / (1 - stale_prop))
        out.gauge('p2pool_pool_nonstale_hash_rate', 'Pool hash rate in H/s of non-stale shares.', nonstale)
        out.gauge('p2pool_pool_stale_proportion', 'Proportion of shares announcing a stale share (last hour).',
                  stale_prop)
    out.gauge('p2pool_share_difficulty', 'Minimum share difficulty of the pool.',
              target_to_difficulty(ctx.tracker.items[best].max_target))
    try:
        attempts_to_share, attempts_to_block = attempts_to_share_and_block(ctx, best)
        work = ctx.need_work()
        payout = my_expected_payout(ctx, ctx.expected_payouts())
    except HttpError:
        return
    out.gauge('p2pool_attempts_to_share', 'Expected hashes for one share at the pool minimum.', attempts_to_share)
    out.gauge('p2pool_attempts_to_block', 'Expected hashes for one block.', attempts_to_block)
    out.gauge('p2pool_block_value_coins', 'Value of the current block template (coinbasevalue) in coins.',
              work['coinbasevalue'] / 1e8)
    out.gauge('p2pool_block_height', 'Height of the block being mined.', work.get('height'))
    out.gauge('p2pool_expected_payout_coins', "This node's expected payout if a block were found now.", payout)


def _local_section(out, ctx) -> None:
    node = ctx.node
    local = node.local_stats()
    out.gauge('p2pool_local_hash_rate', 'Hash rate of this node\'s miners in H/s (last 10 minutes).', local.hash_rate)
    out.gauge('p2pool_local_dead_hash_rate', 'Dead-on-arrival hash rate of this node\'s miners in H/s.',
              local.dead_hash_rate)
    out.gauge('p2pool_miner_hash_rate', 'Hash rate per miner in H/s (fastest %d, the rest as "other").'
              % MAX_MINER_LABELS, _bounded_miners(local.miner_hash_rates))
    counts = ctx.share_counts()
    out.gauge('p2pool_local_shares', 'Shares of this run\'s miners in the best chain\'s accounting, by kind.',
              [({'kind': 'total'}, counts.total), ({'kind': 'orphan'}, counts.orphans),
               ({'kind': 'dead'}, counts.doas)])
    accounting = node.stale_accounting
    out.counter('p2pool_shares_found', 'Shares found by this node\'s miners since the node started, by arrival.',
                [({'arrival': 'on_time'}, len(accounting.my_shares) - len(accounting.my_doa_shares)),
                 ({'arrival': 'dead'}, len(accounting.my_doa_shares))])
    peers = list(node.peers())
    incoming = sum(1 for peer in peers if peer.incoming)
    out.gauge('p2pool_peers', 'Connected P2Pool peers.',
              [({'direction': 'incoming'}, incoming), ({'direction': 'outgoing'}, len(peers) - incoming)])
    traffic = getattr(ctx.service, 'traffic_bytes', None)
    if traffic is not None:
        out.counter('p2pool_p2p_traffic_bytes', 'Bytes of P2Pool protocol traffic since the node started.',
                    [({'direction': 'in'}, traffic.get('p2p/in', 0)),
                     ({'direction': 'out'}, traffic.get('p2p/out', 0))])
    out.gauge('p2pool_bitcoind_latency_seconds', 'Duration of the last getblocktemplate call.',
              local.bitcoind_latency)
    out.gauge('p2pool_work_latency_seconds', 'Time from a new block template to new work for the miners.',
              local.work_latency)
    if local.last_template_time is not None:
        out.gauge('p2pool_template_age_seconds', 'Seconds since the last successful getblocktemplate.',
                  ctx.clock() - local.last_template_time)
    daemons: list[dict[str, Any]] = getattr(node, "bitcoind_daemons", lambda: [])()
    if daemons:
        labels = [{'daemon': d['name'], 'endpoint': d['endpoint']} for d in daemons]
        out.gauge('p2pool_bitcoind_up', 'Whether each bitcoind answers RPC and passed the start-up checks.',
                  [(label, int(d['healthy'])) for label, d in zip(labels, daemons)])
        out.gauge('p2pool_bitcoind_active', 'The bitcoind work comes from (1) and the others (0).',
                  [(label, int(d['active'])) for label, d in zip(labels, daemons)])
        out.gauge('p2pool_bitcoind_rpc_errors', 'Failed RPC probes of each bitcoind in a row.',
                  [(label, d['rpc_errors']) for label, d in zip(labels, daemons)])
        out.gauge('p2pool_bitcoind_tip_height', 'Height of the tip of each bitcoind.',
                  [(label, d['tip_height']) for label, d in zip(labels, daemons) if d['tip_height'] is not None])
        out.gauge('p2pool_bitcoind_template_age_seconds', 'Age of the last block template of each bitcoind.',
                  [(label, d['template_age']) for label, d in zip(labels, daemons)
                   if d['template_age'] is not None])
    out.gauge('p2pool_warnings', 'Number of active warnings (see /web/warnings).',
              len(localstats.warnings(ctx, local)))
    payout_totals = getattr(node, 'payout_totals', None)
    if payout_totals is not None:
        totals = payout_totals()
        out.gauge('p2pool_payouts_coins', 'Coins paid to this node\'s payout addresses by blocks of the pool, '
                  'by state (see /web/payouts).', [({'state': state}, coins) for state, coins in totals.items()])


def render(ctx) -> str:
    """The /metrics text."""
    node, net = ctx.node, ctx.net
    out = _Families()
    out.gauge('p2pool_info', 'Software and network of this node (value always 1).',
              [({'version': p2pool.__version__, 'network': net.NAME,
                 'protocol': localstats.PROTOCOL_VERSION}, 1)])
    out.gauge('p2pool_uptime_seconds', 'Seconds since the node started.', ctx.clock() - node.start_time)
    progress = sync_progress(ctx)
    out.gauge('p2pool_sync_needed_shares', 'Shares of the best chain needed to be in sync.', progress['needed'])
    out.gauge('p2pool_sync_shares', 'Shares of the longest known chain, downloaded and verified (capped at needed).',
              [({'state': 'downloaded'}, progress['downloaded']), ({'state': 'verified'}, progress['verified'])])
    out.gauge('p2pool_tracker_shares', 'Shares held in memory.',
              [({'set': 'all'}, progress['shares_in_memory']), ({'set': 'verified'}, progress['verified_in_memory'])])
    best, height = ctx.best()
    if best is not None:
        out.gauge('p2pool_best_share_height', 'Height of the best share (shares down to its tail).', height)
        _pool_section(out, ctx, best, height)
    _local_section(out, ctx)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(out)
    return generate_latest(registry).decode()
