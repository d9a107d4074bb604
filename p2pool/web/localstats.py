"""`/global_stats`, `/local_stats`, warnings and the 5-minute stat entry (web.md §2.1, §3).

All of them look back over the last hour of shares: L = min(height, 3600 // SHARE_PERIOD).
Chain statistics come from p2pool.sharechain.stats; the worker-side numbers (rate
monitors, the run-time share counts of sharechain.md §7) from the facade's
local_stats().
"""
import p2pool
from p2pool.bitcoin.data import bits_to_target, target_to_difficulty
from p2pool.sharechain import stats
from p2pool.web.api import HttpError, attempts_to_share_and_block, hour_lookbehind, to_coins
from typing import Any

__all__ = ['global_stats', 'local_stats', 'warnings', 'my_expected_payout', 'stat_entry',
           'PROTOCOL_VERSION', 'MIN_HEIGHT_FOR_STATS']

PROTOCOL_VERSION = 3501
#: /global_stats and /local_stats answer null below this height
MIN_HEIGHT_FOR_STATS = 10


def _pool_rates(ctx, best, lookbehind):
    """(nonstale rate, stale proportion) over `lookbehind` shares from best."""
    nonstale = stats.pool_attempts_per_second(ctx.tracker, best, lookbehind)
    return nonstale, stats.average_stale_prop(ctx.tracker, best, lookbehind)


def global_stats(ctx) -> dict[str, Any] | None:
    best, height = ctx.best()
    if best is None or height < MIN_HEIGHT_FOR_STATS:
        return None
    lookbehind = hour_lookbehind(ctx.net, height)
    nonstale, stale_prop = _pool_rates(ctx, best, lookbehind)
    work = ctx.need_work()
    block_difficulty = target_to_difficulty(bits_to_target(work['bits']))
    return {
        'pool_nonstale_hash_rate': nonstale,
        'pool_hash_rate': nonstale / (1 - stale_prop),
        'pool_stale_prop': stale_prop,
        'min_difficulty': target_to_difficulty(ctx.tracker.items[best].max_target),
        'network_block_difficulty': block_difficulty,
        'network_hashrate': block_difficulty * 2**32 // ctx.net.PARENT.BLOCK_PERIOD,
    }


def warnings(ctx, local=None) -> list[str]:
    """Warnings of sharechain.md §9 (version vote, bitcoind's own, lost contact), and why the
    miners' work is stale when much of it is."""
    local = local if local is not None else ctx.node.local_stats()
    best, _height = ctx.best()
    found = stats.get_warnings(ctx.tracker, best, ctx.net, local.networkinfo, local.last_template_time, ctx.clock())
    text = stale_work_warning(ctx, local, best)
    return found + [text] if text else found


#: the dead (stale) share of the miners' pseudoshares above which the dashboard says why
STALE_WORK_WARNING_FRACTION = 0.1
_STALE_WORK_MIN_PSEUDOSHARES = 20


def stale_work_warning(ctx, local, best) -> str | None:
    """Why much of the miners' recent work was stale (work that newer work had replaced), or None."""
    if local.pseudoshares < _STALE_WORK_MIN_PSEUDOSHARES:
        return None
    fraction = local.dead_pseudoshares / local.pseudoshares
    if fraction < STALE_WORK_WARNING_FRACTION:
        return None
    reasons = []
    new_work = getattr(local, 'new_work_per_minute', None)
    if new_work:
        reasons.append('new work came %d times in the last minute' % new_work)
    work = ctx.node.current_work()
    if work is not None and best is not None and best in ctx.tracker.items and \
            bits_to_target(work['bits']) >= ctx.tracker.items[best].max_target:
        reasons.append('on this network every share is also a block, and every block is new work')
    return ('%d%% of the work your miners sent in the last %d s was stale: it arrived after newer work had '
            'replaced it%s. Stratum submissions up to 10 s late are still accepted (counted as dead); '
            'getwork miners should use long polling.' % (
                round(100 * fraction), local.rate_window, ' (' + '; '.join(reasons) + ')' if reasons else ''))


def _proportion(part, whole):
    return part / whole if whole else None


def local_stats(ctx) -> dict[str, Any] | None:
    best, height = ctx.best()
    if best is None or height < MIN_HEIGHT_FOR_STATS:
        return None
    node, net = ctx.node, ctx.net
    local = node.local_stats()
    lookbehind = hour_lookbehind(net, height)
    _nonstale, stale_prop = _pool_rates(ctx, best, lookbehind)
    recent = stats.my_recent_shares(ctx.tracker, best, lookbehind, node.stale_accounting.my_shares)
    unstale, orphan, doa, my_work, span = recent
    counted = unstale + orphan + doa
    my_stale_prop = _proportion(orphan + doa, counted)
    nonstale_rate = my_work / span if span > 0 else 0.0
    counts = ctx.share_counts()
    shares, orphans, doas = counts.total, counts.orphans, counts.doas
    attempts_to_share, attempts_to_block = attempts_to_share_and_block(ctx, best)
    peers = list(node.peers())
    incoming = sum(1 for peer in peers if peer.incoming)
    return {
        'my_hash_rates_in_last_hour': {
            'note': 'DEPRECATED',
            'nonstale': nonstale_rate,
            'rewarded': nonstale_rate / (1 - stale_prop),
            'actual': nonstale_rate / (1 - my_stale_prop) if my_stale_prop is not None and my_stale_prop < 1 else 0,
        },
        'my_share_counts_in_last_hour': {
            'shares': counted,
            'unstale_shares': unstale,
            'stale_shares': orphan + doa,
            'orphan_stale_shares': orphan,
            'doa_stale_shares': doa,
        },
        'my_stale_proportions_in_last_hour': {
            'stale': my_stale_prop,
            'orphan_stale': _proportion(orphan, counted),
            'dead_stale': _proportion(doa, counted),
        },
        'miner_hash_rates': dict(local.miner_hash_rates),
        'miner_dead_hash_rates': dict(local.miner_dead_hash_rates),
        'miner_last_difficulties': dict(local.miner_last_difficulties),
        'efficiency_if_miner_perfect': (1 - orphans / shares) / (1 - stale_prop) if shares else None,
        'efficiency': (1 - (orphans + doas) / shares) / (1 - stale_prop) if shares else None,
        'peers': {'incoming': incoming, 'outgoing': len(peers) - incoming},
        'shares': {'total': shares, 'orphan': orphans, 'dead': doas},
        'uptime': ctx.clock() - node.start_time,
        'attempts_to_share': attempts_to_share,
        'attempts_to_block': attempts_to_block,
        'block_value': ctx.need_work()['coinbasevalue'] * 1e-8,
        'warnings': warnings(ctx, local),
        'donation_proportion': node.donation / 100,
        'version': p2pool.__version__,
        'protocol_version': PROTOCOL_VERSION,
        'fee': node.fee,
    }


def my_expected_payout(ctx, payouts) -> float:
    """Σ expected payout of this node's payout addresses, in coins."""
    addresses = set(ctx.node.payout_addresses)
    if ctx.node.payout_address:
        addresses.add(ctx.node.payout_address)
    return to_coins(sum(payouts.get(address, 0) for address in addresses))


def stat_entry(ctx) -> dict[str, Any] | None:
    """One /web/log entry (web.md §3); None while the chain is shorter than an hour of shares."""
    best, height = ctx.best()
    lookbehind = 3600 // ctx.net.SHARE_PERIOD
    if best is None or height < lookbehind or ctx.node.current_work() is None:
        return None
    nonstale, stale_prop = _pool_rates(ctx, best, lookbehind)
    local = ctx.node.local_stats()
    counts = ctx.share_counts()
    peers = list(ctx.node.peers())
    incoming = sum(1 for peer in peers if peer.incoming)
    attempts_to_share, attempts_to_block = attempts_to_share_and_block(ctx, best)
    try:
        current_payout = my_expected_payout(ctx, ctx.expected_payouts())
    except HttpError:
        current_payout = 0.0
    return {
        'time': ctx.clock(),
        'pool_hash_rate': nonstale / (1 - stale_prop),
        'pool_stale_prop': stale_prop,
        'local_hash_rates': dict(local.miner_hash_rates),
        'local_dead_hash_rates': dict(local.miner_dead_hash_rates),
        'shares': counts.total,
        'stale_shares': counts.orphans + counts.doas,
        'stale_shares_breakdown': {'orphan': counts.orphans, 'doa': counts.doas},
        'current_payout': current_payout,
        'peers': {'incoming': incoming, 'outgoing': len(peers) - incoming},
        'attempts_to_share': attempts_to_share,
        'attempts_to_block': attempts_to_block,
        'block_value': ctx.node.current_work()['coinbasevalue'] * 1e-8,
    }
