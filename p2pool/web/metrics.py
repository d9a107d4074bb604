"""`/metrics`: the node's numbers in the Prometheus text exposition format (version 0.0.4).

Every metric is a gauge. Label sets are bounded: peers and shares use fixed label
values, and per-miner hash rates list at most MAX_MINER_LABELS miners (the fastest)
plus one `miner="other"` series for the rest. A number that is not known yet (no best
share, no template, no latency measured) is left out rather than reported as 0.
"""
import math

import p2pool
from p2pool.bitcoin.data import target_to_difficulty
from p2pool.sharechain import stats
from p2pool.web import localstats
from p2pool.web.api import HttpError, attempts_to_share_and_block, hour_lookbehind, sync_progress
from p2pool.web.localstats import my_expected_payout

__all__ = ['render', 'CONTENT_TYPE', 'MAX_MINER_LABELS', 'escape_label']

CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
MAX_MINER_LABELS = 20


def escape_label(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _number(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return '+Inf' if value > 0 else '-Inf'
    return repr(float(value))


class _Exposition:
    def __init__(self):
        self.lines = []

    def gauge(self, name, help_text, samples):
        """samples: a number, or [(labels dict, number)]; None values are skipped."""
        if not isinstance(samples, list):
            samples = [({}, samples)]
        samples = [(labels, value) for labels, value in samples if value is not None]
        if not samples:
            return
        self.lines.append('# HELP %s %s' % (name, help_text))
        self.lines.append('# TYPE %s gauge' % name)
        for labels, value in samples:
            label_text = ','.join('%s="%s"' % (key, escape_label(val)) for key, val in labels.items())
            self.lines.append('%s%s %s' % (name, '{%s}' % label_text if label_text else '', _number(value)))

    def text(self):
        return '\n'.join(self.lines) + '\n'


def _bounded_miners(rates):
    """[(labels, rate)] for the MAX_MINER_LABELS fastest miners and one 'other' series."""
    ordered = sorted(rates.items(), key=lambda item: (-item[1], item[0]))
    samples = [({'miner': miner}, rate) for miner, rate in ordered[:MAX_MINER_LABELS]]
    if len(ordered) > MAX_MINER_LABELS:
        samples.append(({'miner': 'other'}, sum(rate for _miner, rate in ordered[MAX_MINER_LABELS:])))
    return samples


def _pool_section(out, ctx, best, height):
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
              work['coinbasevalue'] * 1e-8)
    out.gauge('p2pool_block_height', 'Height of the block being mined.', work.get('height'))
    out.gauge('p2pool_expected_payout_coins', "This node's expected payout if a block were found now.", payout)


def render(ctx):
    """The /metrics text."""
    node, net = ctx.node, ctx.net
    out = _Exposition()
    out.gauge('p2pool_info', 'Software and network of this node (value always 1).',
              [({'version': p2pool.__version__, 'network': net.NAME,
                 'protocol': localstats.PROTOCOL_VERSION}, 1)])
    out.gauge('p2pool_uptime_seconds', 'Seconds since the node started.', ctx.clock() - node.start_time)
    progress = sync_progress(ctx)
    out.gauge('p2pool_sync_needed_shares', 'Shares of best chain needed (CHAIN_LENGTH).', progress['needed'])
    out.gauge('p2pool_sync_shares', 'Shares of the longest known chain, downloaded and verified (capped at needed).',
              [({'state': 'downloaded'}, progress['downloaded']), ({'state': 'verified'}, progress['verified'])])
    out.gauge('p2pool_tracker_shares', 'Shares held in memory.',
              [({'set': 'all'}, progress['shares_in_memory']), ({'set': 'verified'}, progress['verified_in_memory'])])
    best, height = ctx.best()
    if best is not None:
        out.gauge('p2pool_best_share_height', 'Height of the best share (shares down to its tail).', height)
        _pool_section(out, ctx, best, height)

    local = node.local_stats()
    out.gauge('p2pool_local_hash_rate', 'Hash rate of this node\'s miners in H/s (last 10 minutes).', local.hash_rate)
    out.gauge('p2pool_local_dead_hash_rate', 'Dead-on-arrival hash rate of this node\'s miners in H/s.',
              local.dead_hash_rate)
    out.gauge('p2pool_miner_hash_rate', 'Hash rate per miner in H/s (fastest %d, the rest as "other").'
              % MAX_MINER_LABELS, _bounded_miners(local.miner_hash_rates))
    counts = ctx.share_counts()
    out.gauge('p2pool_local_shares', 'Shares found by this node\'s miners this run (sharechain.md 7).',
              [({'kind': 'total'}, counts.total), ({'kind': 'orphan'}, counts.orphans),
               ({'kind': 'dead'}, counts.doas)])
    peers = list(node.peers())
    incoming = sum(1 for peer in peers if peer.incoming)
    out.gauge('p2pool_peers', 'Connected P2Pool peers.',
              [({'direction': 'incoming'}, incoming), ({'direction': 'outgoing'}, len(peers) - incoming)])
    out.gauge('p2pool_bitcoind_latency_seconds', 'Duration of the last getblocktemplate call.',
              local.bitcoind_latency)
    out.gauge('p2pool_work_latency_seconds', 'Time from a new block template to new work for the miners.',
              local.work_latency)
    if local.last_template_time is not None:
        out.gauge('p2pool_template_age_seconds', 'Seconds since the last successful getblocktemplate.',
                  ctx.clock() - local.last_template_time)
    out.gauge('p2pool_warnings', 'Number of active warnings (see /web/warnings).',
              len(localstats.warnings(ctx, local)))
    return out.text()
