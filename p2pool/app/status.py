"""The console status the node prints every few seconds, as the original did.

    P2Pool: 8640 shares in chain (8640 verified/8702 total) Peers: 6 (2 incoming)
     Local: 12345GH/s in last 10.0 minutes Local dead on arrival: ~1.2% (0-4%) Expected time to share: 35.2 minutes
     Shares: 5 (1 orphan, 0 dead) Stale rate: ~20.0% (3-56%) Efficiency: ~84.2% (46-102%) Current payout: 0.1234 BTC
     Pool: 987654TH/s Stale rate: 5.0% Expected time to block: 3.2 days
     Pool stales: 5% Own: 24±21% Own efficiency: 80±22%

Ranges are 95 % binomial confidence intervals (Wilson score interval) of the
stale counts; "Own: Y±Z%" shows the interval's centre and half-width. A sync line is
added while the chain is shorter than CHAIN_LENGTH, and warnings (sharechain.md §9)
are printed framed in '#'. The numbers come from the node facade of p2pool.web.api.
"""
import logging
import math
import statistics
import sys
import time
from typing import Any

from p2pool.bitcoin.data import bits_to_target, target_to_average_attempts
from p2pool.sharechain import stats
from p2pool.web.api import HttpError, WebContext, sync_progress
from p2pool.web.localstats import my_expected_payout, warnings

__all__ = ['binomial_conf_interval', 'binomial_center_radius', 'format_binomial_conf', 'format_hash_rate',
           'status_text', 'StatusPrinter', 'STATUS_INTERVAL', 'REPEAT_AFTER']

log = logging.getLogger(__name__)

STATUS_INTERVAL = 3
#: an unchanged status is printed again after this many seconds
REPEAT_AFTER = 15


def binomial_center_radius(x, n, conf=0.95) -> tuple[float, float]:
    """Centre and half-width of the Wilson score interval for x successes in n trials."""
    if not 0 <= x <= n or n == 0 or not 0 < conf < 1:
        raise ValueError('need 0 <= x <= n, n > 0 and 0 < conf < 1 (x=%r, n=%r, conf=%r)' % (x, n, conf))
    z = statistics.NormalDist().inv_cdf((1 + conf) / 2)
    p = x / n
    bottom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / bottom
    radius = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / bottom
    return center, radius


def binomial_conf_interval(x, n, conf=0.95) -> tuple[float, float]:
    """The Wilson score interval (left, right), clipped to [0, 1]."""
    center, radius = binomial_center_radius(x, n, conf)
    p = x / n
    # the interval always contains p; min/max only undo rounding at p = 0 or 1
    return max(0.0, min(p, center - radius)), min(1.0, max(p, center + radius))


def format_binomial_conf(x, n, conf=0.95, transform=lambda value: value) -> str:
    """'~p% (low-high%)' of transform(x/n) and the transformed interval; '???' when n == 0."""
    if n == 0:
        return '???'
    low, high = sorted(transform(value) for value in binomial_conf_interval(x, n, conf))
    return '~%.1f%% (%d-%d%%)' % (100 * transform(x / n), math.floor(100 * low), math.ceil(100 * high))


def format_hash_rate(rate) -> str:
    """The original's compact number: integer with k/M/G/T/P/E prefixes, at most 6 digits."""
    value, prefix = int(rate), ''
    for candidate in 'kMGTPE':
        if value < 100000:
            break
        value //= 1000
        prefix = candidate
    return '%d%s' % (value, prefix)


def _percent(fraction):
    """Whole percent rounded half up, as the original's int(100*x + .5) (round() would go to even)."""
    return math.floor(100 * fraction + 0.5)


def _pool_lines(ctx, local, best, height):
    lines = []
    counts = ctx.share_counts()
    stale_prop = stats.average_stale_prop(ctx.tracker, best, min(3600 // ctx.net.SHARE_PERIOD, height))
    lookbehind = min(height - 1, 3600 // ctx.net.SHARE_PERIOD)
    pool_rate = (stats.pool_attempts_per_second(ctx.tracker, best, lookbehind) / (1 - stale_prop)
                 if lookbehind >= 2 else 0.0)
    stale_shares = counts.orphans + counts.doas
    try:
        payout = '%.4f %s' % (my_expected_payout(ctx, ctx.expected_payouts()), ctx.net.PARENT.SYMBOL)
    except HttpError:
        payout = '???'
    lines.append(' Shares: %d (%d orphan, %d dead) Stale rate: %s Efficiency: %s Current payout: %s' % (
        counts.total, counts.orphans, counts.doas, format_binomial_conf(stale_shares, counts.total),
        format_binomial_conf(stale_shares, counts.total, transform=lambda x: (1 - x) / (1 - stale_prop)),
        payout))
    work = ctx.node.current_work()
    if work is not None and pool_rate > 0:
        time_to_block = stats.format_duration(
            target_to_average_attempts(bits_to_target(work['bits'])) / pool_rate)
    else:
        time_to_block = '???'
    lines.append(' Pool: %sH/s Stale rate: %.1f%% Expected time to block: %s' % (
        format_hash_rate(pool_rate), 100 * stale_prop, time_to_block))
    if counts.total:
        center, radius = binomial_center_radius(stale_shares, counts.total)
        own = '%d±%d%%' % (_percent(center), _percent(radius))
        efficiency = '%d±%d%%' % (_percent((1 - center) / (1 - stale_prop)), _percent(radius / (1 - stale_prop)))
    else:
        own = efficiency = '???'
    lines.append(' Pool stales: %d%% Own: %s Own efficiency: %s' % (_percent(stale_prop), own, efficiency))
    return lines


def status_text(node, now=None) -> tuple[str, list[str]]:
    """(status lines as one text, warnings list) for the console."""
    ctx = WebContext(node, clock=(lambda: now) if now is not None else time.time)
    tracker = node.tracker
    best, height = ctx.best()
    peers = list(node.peers())
    incoming = sum(1 for peer in peers if peer.incoming)
    lines = ['P2Pool: %d shares in chain (%d verified/%d total) Peers: %d (%d incoming)' % (
        height, len(tracker.verified.items), len(tracker.items), len(peers), incoming)]
    local = node.local_stats()
    if local.share_rate is not None:
        # the share targets the miners actually work on (harder than the pool minimum for big miners)
        time_to_share = stats.format_duration(1 / local.share_rate) if local.share_rate > 0 else '???'
    elif best is not None and local.hash_rate > 0:
        attempts_to_share = target_to_average_attempts(tracker.items[best].max_target)
        time_to_share = stats.format_duration(attempts_to_share / local.hash_rate)
    else:
        time_to_share = '???'
    lines.append(' Local: %sH/s in last %s Local dead on arrival: %s Expected time to share: %s' % (
        format_hash_rate(local.hash_rate), stats.format_duration(local.rate_window),
        format_binomial_conf(local.dead_pseudoshares, local.pseudoshares), time_to_share))
    if best is not None and height > 2:
        lines.extend(_pool_lines(ctx, local, best, height))
    daemons: list[dict[str, Any]] = getattr(node, "bitcoind_daemons", lambda: [])()
    if len(daemons) > 1:
        lines.append(' bitcoind: ' + '; '.join(_daemon_text(d) for d in daemons))
    progress = sync_progress(ctx)
    if not progress['synced']:
        lines.append(' Sync: %d/%d shares downloaded, %d/%d verified' % (
            progress['downloaded'], progress['needed'], progress['verified'], progress['needed']))
    return '\n'.join(lines), warnings(ctx, local)


def _daemon_text(daemon):
    text = '%s %s %s' % (daemon['name'], daemon['endpoint'], daemon['status'])
    if daemon['tip_height'] is not None:
        text += ' tip %d' % daemon['tip_height']
    if daemon['last_error'] and not daemon['healthy']:
        text += ' (%s)' % daemon['last_error'][:60]
    return text


class StatusPrinter:
    """Prints status_text every STATUS_INTERVAL s when it changed, else every REPEAT_AFTER s."""

    def __init__(self, node, write=None, clock=time.time) -> None:
        self.node = node
        self.write = write if write is not None else (lambda text: print(text, file=sys.stdout, flush=True))
        self.clock = clock
        self._last_text: str | None = None
        self._last_time = 0.0
        self._loop: Any = None

    def tick(self) -> None:
        now = self.clock()
        try:
            text, warning_list = status_text(self.node, now)
        except Exception:     # a status glitch must never stop the node's console
            log.exception('building the status lines failed')
            return
        if text == self._last_text and now < self._last_time + REPEAT_AFTER:
            return
        for warning in warning_list:
            self.write('#' * 40 + '\n>>> Warning: ' + warning + '\n' + '#' * 40)
        self.write(text)
        self._last_text, self._last_time = text, now

    def start(self, reactor) -> None:
        from twisted.internet import task
        loop = self._loop = task.LoopingCall(self.tick)
        loop.clock = reactor
        loop.start(STATUS_INTERVAL, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
