"""Version voting (shares.md §13): the counts of `desired_version` votes, the share version
new work uses, and the minimum peer protocol version the votes raise.

Pure functions of the tracker (read through `items`, `get_height` and
`get_nth_parent_hash`); the generator, the verifier, the running chain and the
web statistics all ask here.
"""
from collections import OrderedDict

from p2pool.sharechain.share import INITIAL_VERSION, SHARE_VERSIONS, Net, Share, ShareTracker

__all__ = ['desired_version_counts', 'vote_window_counts', 'has_vote_window', 'successor_support',
           'choose_share_version', 'updated_minimum_protocol_version', 'startup_minimum_protocol_version',
           'SUCCESSION_PERCENT', 'SWITCH_PERCENT']

SUCCESSION_PERCENT = 60      # a share may switch to its SUCCESSOR with this much of the vote
SWITCH_PERCENT = 95          # the generator switches / the minimum protocol rises at this much

# --- §13.1 vote counting -------------------------------------------------------

_COUNTS_CACHE_SIZE = 64
#: {desired_version: summed work}
Counts = dict[int, int]
_counts_cache: OrderedDict[tuple[int | None, int], Counts] = OrderedDict()


def _remember_counts(key: tuple[int | None, int], counts: Counts) -> None:
    _counts_cache[key] = counts
    _counts_cache.move_to_end(key)
    while len(_counts_cache) > _COUNTS_CACHE_SIZE:
        _counts_cache.popitem(last=False)


def desired_version_counts(tracker: ShareTracker, start_hash: int | None, n: int) -> Counts:
    """{desired_version: summed work} over the `n` shares from `start_hash` backwards.

    Complete windows are cached by (start, n) (a pure function of the chain); a
    window one share above a cached one is derived from it by adding the new
    share and dropping the oldest.
    """
    counts = _counts_cache.get((start_hash, n))
    if counts is not None:
        return dict(counts)
    items = tracker.items
    start = items.get(start_hash) if start_hash is not None else None
    if start is None:
        return {}
    below = _counts_cache.get((start.previous_hash, n)) if n > 1 else None
    oldest: Share | None = None
    if below is not None:
        try:
            oldest = tracker.get(tracker.get_nth_parent_hash(start.previous_hash, n - 1))
        except (KeyError, ValueError, IndexError, AssertionError):
            oldest = None
    if below is not None and oldest is not None:
        counts = dict(below)
        counts[start.desired_version] = counts.get(start.desired_version, 0) + start.work
        left = counts[oldest.desired_version] - oldest.work
        if left:
            counts[oldest.desired_version] = left
        else:
            del counts[oldest.desired_version]
        complete = True
    else:
        counts = {}
        share: Share | None = start
        counted = 0
        while share is not None and counted < n:
            counts[share.desired_version] = counts.get(share.desired_version, 0) + share.work
            counted += 1
            share = items.get(share.previous_hash) if share.previous_hash is not None else None
        complete = counted == n
    if complete:
        _remember_counts((start_hash, n), counts)
    return dict(counts)


def vote_window_counts(tracker: ShareTracker, previous_share_hash: int | None, net: Net) -> Counts:
    """Counts of the vote window of a share whose parent is `previous_share_hash`:
    the oldest tenth of the last CHAIN_LENGTH shares (§13.1)."""
    start = tracker.get_nth_parent_hash(previous_share_hash, net.CHAIN_LENGTH * 9 // 10)
    return desired_version_counts(tracker, start, net.CHAIN_LENGTH // 10)


def has_vote_window(tracker: ShareTracker, previous_share_hash: int | None, net: Net) -> bool:
    return previous_share_hash is not None and tracker.get_height(previous_share_hash) >= net.CHAIN_LENGTH


# --- §13.3 generator version and minimum protocol version ------------------------

def successor_support(tracker: ShareTracker, best_hash: int | None, net: Net) -> tuple[int, float] | None:
    """(successor version, its share of the vote window) on top of `best_hash`, or None."""
    if best_hash is None or best_hash not in tracker.items:
        return None
    successor = SHARE_VERSIONS[tracker.items[best_hash].VERSION].SUCCESSOR
    if successor is None or not has_vote_window(tracker, best_hash, net):
        return None
    counts = vote_window_counts(tracker, best_hash, net)
    total = sum(counts.values())
    return successor, (counts.get(successor, 0) / total if total else 0.0)


def choose_share_version(tracker: ShareTracker, best_hash: int | None, net: Net) -> int:
    """VERSION for new work on top of `best_hash` (§13.3); the initial version without one.

    (A node logs "Switchover imminent" when successor_support() exceeds 65 %.)
    """
    if best_hash is None:
        return INITIAL_VERSION
    version = tracker.items[best_hash].VERSION
    successor = SHARE_VERSIONS[version].SUCCESSOR
    if successor is not None and has_vote_window(tracker, best_hash, net):
        counts = vote_window_counts(tracker, best_hash, net)
        if counts.get(successor, 0) > sum(counts.values()) * SWITCH_PERCENT // 100:
            return successor
    return version


def updated_minimum_protocol_version(tracker: ShareTracker, share: Share, current_minimum: int, net: Net) -> int:
    """The minimum peer protocol version after `share` passed check (or at start-up with the
    best loaded share): raised to the share class's value once it has 95 % of the votes."""
    class_minimum = SHARE_VERSIONS[share.VERSION].MINIMUM_PROTOCOL_VERSION
    if current_minimum >= class_minimum or not has_vote_window(tracker, share.previous_hash, net):
        return current_minimum
    counts = vote_window_counts(tracker, share.previous_hash, net)
    if counts.get(share.VERSION, 0) >= sum(counts.values()) * SWITCH_PERCENT // 100:
        return class_minimum
    return current_minimum


def startup_minimum_protocol_version(tracker: ShareTracker, best_hash: int | None, loaded_count: int,
                                     current_minimum: int, net: Net) -> int:
    """[jt] start-up rule (§13.3): with more than CHAIN_LENGTH shares loaded, raise the minimum
    to the best share's class value if its version has 95 % of the window above the best share."""
    if best_hash is None or loaded_count <= net.CHAIN_LENGTH or best_hash not in tracker.items:
        return current_minimum
    best = tracker.items[best_hash]
    class_minimum = SHARE_VERSIONS[best.VERSION].MINIMUM_PROTOCOL_VERSION
    if current_minimum >= class_minimum or tracker.get_height(best_hash) <= net.CHAIN_LENGTH * 9 // 10:
        return current_minimum
    counts = vote_window_counts(tracker, best_hash, net)
    if counts.get(best.VERSION, 0) >= sum(counts.values()) * SWITCH_PERCENT // 100:
        return class_minimum
    return current_minimum
