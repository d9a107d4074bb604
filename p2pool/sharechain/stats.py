"""Pool statistics, stale accounting and warnings (sharechain.md §7-§9).

Everything here is a pure function of the tracker and the values passed in
(`now` included); StaleAccounting additionally remembers this run's local
shares. Vote counting itself (desired_version_counts, shares.md §13.1) lives in
verify.py and is reused for the version warning.
"""
import re
from collections.abc import Callable, Collection, Container, Iterator, Mapping
from typing import Any, NamedTuple

from p2pool.sharechain.share import SUPPORTED_VERSIONS, Net, Share, ShareTracker
from p2pool.sharechain.tracker import TrackerError
from p2pool.sharechain.voting import desired_version_counts

__all__ = ['StaleAccounting', 'StaleCounts', 'StatsError', 'MyRecentShares', 'average_stale_prop',
           'bitcoind_warning', 'format_duration', 'get_warnings', 'lost_contact_warning',
           'my_recent_shares', 'pool_attempts_per_second', 'pool_hash_rate', 'stale_counts',
           'user_stale_props', 'version_vote_warning']

LOST_CONTACT_SECONDS = 60
PRE_RELEASE_WARNING = 'This is a pre-release test build'


class StatsError(ValueError):
    """A statistic asked for over a window the tracker cannot provide."""


def _share(tracker: ShareTracker, share_hash: int | None) -> Share:
    share = tracker.get(share_hash)
    if share is None:
        raise StatsError('share %r is not in the tracker' % (share_hash,))
    return share


def _nth_parent_share(tracker: ShareTracker, share_hash: int | None, n: int) -> Share:
    try:
        parent_hash = tracker.get_nth_parent_hash(share_hash, n)
    except TrackerError as e:
        raise StatsError(str(e)) from None
    return _share(tracker, parent_hash)


def _chain(tracker: ShareTracker, share_hash: int | None, n: int) -> Iterator[Share]:
    try:
        return tracker.get_chain(share_hash, n)
    except TrackerError as e:
        raise StatsError(str(e)) from None


# --- §8 pool statistics ---------------------------------------------------------------

def pool_attempts_per_second(tracker: ShareTracker, share_hash: int | None, dist: int, min_work: bool = False,
                             integer: bool = False) -> float:
    """Work (or min_work) from share_hash down to, excluding, its (dist-1)th parent,
    per second of share timestamps between the two (1 s when not positive)."""
    if dist < 2:
        raise StatsError('pool_attempts_per_second needs dist >= 2')
    near = _share(tracker, share_hash)
    far = _nth_parent_share(tracker, share_hash, dist - 1)
    delta = tracker.get_delta(share_hash, far.hash)
    attempts = delta.min_work if min_work else delta.work
    elapsed = near.timestamp - far.timestamp
    if elapsed <= 0:
        elapsed = 1
    return attempts // elapsed if integer else attempts / elapsed


def average_stale_prop(tracker: ShareTracker, share_hash: int | None, n: int) -> float:
    """stales / (n + stales) over the n shares from share_hash (quirk: n + stales)."""
    stales = sum(1 for share in _chain(tracker, share_hash, n) if share.stale_info is not None)
    return stales / (n + stales) if n + stales else 0.0


def pool_hash_rate(tracker: ShareTracker, share_hash: int | None, n: int) -> float:
    """The displayed pool rate: attempts per second corrected for stale shares."""
    return pool_attempts_per_second(tracker, share_hash, n) / (1 - average_stale_prop(tracker, share_hash, n))


def stale_counts(tracker: ShareTracker, share_hash: int | None, n: int, rates: bool = False) -> dict[str, float]:
    """{'good': work of all n-1 shares from share_hash, stale_info: work of those
    announcing it}; with rates, per second over the same span (1 s when not positive)."""
    counts: dict[str, float] = {}
    for share in _chain(tracker, share_hash, n - 1):
        counts['good'] = counts.get('good', 0) + share.work
        if share.stale_info is not None:
            counts[share.stale_info] = counts.get(share.stale_info, 0) + share.work
    if rates:
        elapsed = _share(tracker, share_hash).timestamp - _nth_parent_share(tracker, share_hash, n - 1).timestamp
        if elapsed <= 0:
            elapsed = 1
        counts = {key: value / elapsed for key, value in counts.items()}
    return counts


def user_stale_props(tracker: ShareTracker, share_hash: int | None, n: int) -> dict[str, float]:
    """{payout address: stale proportion} over n shares; a stale-announcing share counts
    once as stale and twice towards its payee's total."""
    stale: dict[str, int] = {}
    total: dict[str, int] = {}
    for share in _chain(tracker, share_hash, n):
        key = share.payout_address
        is_stale = share.stale_info is not None
        stale[key] = stale.get(key, 0) + is_stale
        total[key] = total.get(key, 0) + 1 + is_stale
    return {key: stale[key] / total[key] for key in total}


class MyRecentShares(NamedTuple):
    """/local_stats figures over the recent best chain (web.md §2.1): u, o, d, W and T"""
    unstale: int
    orphan_announced: int
    doa_announced: int
    work: int
    seconds: int


def my_recent_shares(tracker: ShareTracker, share_hash: int | None, lookbehind: int,
                     my_shares: Container[int]) -> MyRecentShares:
    """u = my shares among `lookbehind` shares from share_hash, o/d = those announcing
    "orphan"/"doa" (also counted in u), W = work of mine among lookbehind-1 shares, T =
    timestamp span of those lookbehind-1 shares."""
    unstale = orphan = doa = work = 0
    for index, share in enumerate(_chain(tracker, share_hash, lookbehind)):
        if share.hash not in my_shares:
            continue
        unstale += 1
        orphan += share.stale_info == 'orphan'
        doa += share.stale_info == 'doa'
        if index < lookbehind - 1:
            work += share.work
    seconds = _share(tracker, share_hash).timestamp - _nth_parent_share(tracker, share_hash, lookbehind - 1).timestamp
    return MyRecentShares(unstale, orphan, doa, work, seconds)


# --- §7 stale accounting ----------------------------------------------------------------

class StaleCounts(NamedTuple):
    """mine / mine_doa / *_announced: my shares in the best chain (plus pruned ancestors);
    orphans / doas: my shares that did not make it; total: all shares made this run"""
    mine: int
    mine_doa: int
    orphan_announced: int
    doa_announced: int
    orphans: int
    doas: int
    total: int


class StaleAccounting:
    """Counts this run's local shares against the best chain (§7).

    get_best_hash() -> the current best share hash (or None); it is consulted when a
    share is removed from the tracker, to keep counting my pruned ancestors of it.
    """

    def __init__(self, tracker: ShareTracker, get_best_hash: Callable[[], int | None]) -> None:
        self.tracker = tracker
        self.get_best_hash = get_best_hash
        self.my_shares: set[int] = set()
        self.my_doa_shares: set[int] = set()
        self._removed = [0, 0, 0, 0]  # mine, mine_doa, orphan_announced, doa_announced
        self._cache_key: tuple[int | None, int, int, int] | None = None
        self._cache_value = (0, 0, 0, 0)
        tracker.on_removed.append(self._share_removed)

    def record_local_share(self, share_hash: int, doa: bool) -> None:
        """A share our miners produced; doa if its work predates the last new-work event."""
        self.my_shares.add(share_hash)
        if doa:
            self.my_doa_shares.add(share_hash)

    def _share_removed(self, share: Share) -> None:
        if share.hash not in self.my_shares:
            return
        best = self.get_best_hash()
        # Called after removal: a removed oldest share is then the tail of its descendants,
        # so is_child_of still recognises it as an ancestor of the best share.
        if best is None or not self.tracker.is_child_of(share.hash, best):
            return
        self._removed[0] += 1
        self._removed[1] += share.hash in self.my_doa_shares
        self._removed[2] += share.stale_info == 'orphan'
        self._removed[3] += share.stale_info == 'doa'

    def _in_chain(self, best: int | None) -> tuple[int, int, int, int]:
        key = (best, self.tracker.change_count, len(self.my_shares), len(self.my_doa_shares))
        if key != self._cache_key:
            mine = mine_doa = orphan = doa = 0
            if best is not None:
                items = self.tracker.items
                for share_hash in self.my_shares:
                    if share_hash in items and self.tracker.is_child_of(share_hash, best):
                        stale_info = items[share_hash].stale_info
                        mine += 1
                        mine_doa += share_hash in self.my_doa_shares
                        orphan += stale_info == 'orphan'
                        doa += stale_info == 'doa'
            self._cache_key, self._cache_value = key, (mine, mine_doa, orphan, doa)
        return self._cache_value

    def counts(self, best_hash: int | None) -> StaleCounts:
        in_chain = self._in_chain(best_hash)
        mine, mine_doa, orphan_announced, doa_announced = (
            value + removed for value, removed in zip(in_chain, self._removed))
        not_in_chain = len(self.my_shares) - mine
        doa_not_in_chain = len(self.my_doa_shares) - mine_doa
        return StaleCounts(mine, mine_doa, orphan_announced, doa_announced,
                           not_in_chain - doa_not_in_chain, doa_not_in_chain, len(self.my_shares))

    def stale_info(self, best_hash: int | None) -> str | None:
        """stale_info for the next generated share: 'orphan', 'doa' or None."""
        counts = self.counts(best_hash)
        if counts.orphans > counts.orphan_announced:
            return 'orphan'
        if counts.doas > counts.doa_announced:
            return 'doa'
        return None


# --- §9 warnings ------------------------------------------------------------------------

def format_duration(seconds: float) -> str:
    """'2.5 hours' style: the largest unit the duration exceeds, one decimal."""
    units = ((365.25 * 86400, 'years'), (86400, 'days'), (3600, 'hours'), (60, 'minutes'), (1, 'seconds'))
    unit_seconds, name = next((unit for unit in units if seconds > unit[0]), units[-1])
    return '%.1f %s' % (seconds / unit_seconds, name)


def version_vote_warning(counts: Mapping[int, int], supported_versions: Collection[int]) -> str | None:
    """Warning text when a version we do not support has more than half the vote work."""
    if not counts:
        return None
    majority = max(counts, key=lambda version: (counts[version], version))
    total = sum(counts.values())
    if majority in supported_versions or 2 * counts[majority] <= total:
        return None
    return ('A MAJORITY OF SHARES CONTAIN A VOTE FOR AN UNSUPPORTED SHARE IMPLEMENTATION! '
            '(v%d with %d%% support)\nAn upgrade is likely necessary: this node does not know how '
            'to make or check those shares.' % (majority, 100 * counts[majority] // total))


_PRE_RELEASE_PATTERN = re.compile(r'This is a pre-release (?:or beta )?test build')


def bitcoind_warning(warnings_text: str | None) -> str | None:
    """bitcoind's warnings, except its notice that it is a pre-release build: Bitcoin Core says
    "This is a pre-release test build", Bitcoin SV "This is a pre-release or beta test build"."""
    if not warnings_text or PRE_RELEASE_WARNING in warnings_text or _PRE_RELEASE_PATTERN.search(warnings_text):
        return None
    return '(from bitcoind) %s' % (warnings_text,)


def lost_contact_warning(last_update: float, now: float) -> str | None:
    if now > last_update + LOST_CONTACT_SECONDS:
        return "LOST CONTACT WITH BITCOIND for %s! Check that it isn't frozen or dead!" % (
            format_duration(now - last_update),)
    return None


def get_warnings(tracker: ShareTracker, best_hash: int | None, net: Net, networkinfo: Mapping[str, Any] | None,
                 last_work_update: float | None, now: float,
                 supported_versions: Collection[int] | None = None) -> list[str]:
    """All §9 warnings, in order. networkinfo: bitcoind getnetworkinfo() dict (or None)."""
    if supported_versions is None:
        supported_versions = SUPPORTED_VERSIONS
    warnings: list[str] = []
    if best_hash is not None and best_hash in tracker.items:
        lookbehind = min(net.CHAIN_LENGTH, 3600 // net.SHARE_PERIOD, tracker.get_height(best_hash))
        text = version_vote_warning(desired_version_counts(tracker, best_hash, lookbehind), supported_versions)
        if text:
            warnings.append(text)
    if networkinfo:
        text = bitcoind_warning(networkinfo.get('warnings'))
        if text:
            warnings.append(text)
        version_check = getattr(net, 'VERSION_WARNING', None)
        text = version_check(networkinfo.get('version')) if version_check is not None else None
        if text:
            warnings.append(text)
    if last_work_update is not None:
        text = lost_contact_warning(last_work_update, now)
        if text:
            warnings.append(text)
    return warnings
