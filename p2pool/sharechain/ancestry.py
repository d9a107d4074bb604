"""The recent ancestors of a share, for the retarget and far_share_hash rules (shares.md §11.1).

plan_share needs the 99th and the (TARGET_LOOKBEHIND - 1)th ancestor of the share it builds on,
and the min_work summed over the shares in between. A syncing node plans on top of each share
in turn, so `recent_ancestors` keeps, per tracker, the ancestors of the last share asked about:
those of its child are one share longer at the top and one shorter at the bottom, a list copy
instead of two skip-list walks.

Only a plain Tracker is read this way (through `items`): a VerifiedTracker answers
get_nth_parent_hash from the full tracker, so its callers get None and use the tracker's own
queries.
"""
import weakref
from typing import Any

from p2pool.sharechain.tracker import Tracker


class Ancestors:
    """hashes[i]: the i-th ancestor of hashes[0] for i in 0..depth, where hashes[0..depth-1]
    are in the tracker (hashes[depth] need not be); min_works[i]: min_work of hashes[i]."""

    __slots__ = ('hashes', 'min_works')

    def __init__(self, hashes: list[int | None], min_works: list[int]) -> None:
        self.hashes, self.min_works = hashes, min_works


_cache: weakref.WeakKeyDictionary[Tracker[Any], Ancestors] = weakref.WeakKeyDictionary()


def recent_ancestors(tracker: Any, share_hash: int | None, depth: int) -> Ancestors | None:
    """The `depth` + 1 first ancestors of `share_hash` (itself first), or None when fewer than
    `depth` shares from it down are in the tracker or `tracker` is not a plain Tracker."""
    if type(tracker) is not Tracker or share_hash is None or depth < 2:
        return None
    items = tracker.items
    share = items.get(share_hash)
    if share is None:
        return None
    cached = _cache.get(tracker)
    if cached is not None and len(cached.min_works) == depth:
        # A tracker removes only heads and oldest shares, so the shares between two present
        # shares are present: checking the deepest one needed checks them all.
        if cached.hashes[0] == share_hash and cached.hashes[depth - 1] in items:
            return cached
        if cached.hashes[0] == share.previous_hash and cached.hashes[depth - 2] in items:
            child = Ancestors([share_hash, *cached.hashes[:depth]], [share.min_work, *cached.min_works[:depth - 1]])
            _cache[tracker] = child
            return child
    hashes: list[int | None] = [share_hash]
    min_works: list[int] = []
    for _ in range(depth):
        min_works.append(share.min_work)
        parent_hash = share.previous_hash
        hashes.append(parent_hash)
        if len(min_works) == depth:
            break
        share = items.get(parent_hash) if parent_hash is not None else None
        if share is None:
            return None
    ancestors = _cache[tracker] = Ancestors(hashes, min_works)
    return ancestors
