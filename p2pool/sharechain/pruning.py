"""Pruning the share forest (sharechain.md §6): stale heads, then the oldest shares of long chains.

The chooser's 5-second job (Chooser.think_and_prune) calls prune() with its ranking of the heads;
earliest_head_prune() tells it how long a prune that removed nothing stays fruitless.
"""
from collections.abc import Sequence

from p2pool.sharechain.share import Net, ShareTracker

__all__ = ['HEAD_MIN_AGE', 'HeadKey', 'KEEP_TOP_HEADS', 'PRUNE_PASSES', 'PRUNE_TIME_MARGIN', 'TAIL_CHILDREN_MIN_AGE',
           'earliest_head_prune', 'prune', 'tail_keep_height']

#: a head's [jt] ranking key, as the chooser sorts heads: (work5 less the punished share's work,
#: -punishment, -time_seen)
HeadKey = tuple[int, int, float]

HEAD_MIN_AGE = 300                # heads seen this recently are kept
TAIL_CHILDREN_MIN_AGE = 120       # unverified heads whose tail got children this recently stay
KEEP_TOP_HEADS = 5
PRUNE_PASSES = 1000

#: seconds subtracted from earliest_head_prune's answer: a prune that may be due runs in full, however
#: the float arithmetic of `now - HEAD_MIN_AGE` rounds
PRUNE_TIME_MARGIN = 1.0


def earliest_head_prune(tracker: ShareTracker, decorated_heads: Sequence[tuple[HeadKey, int]]) -> float:
    """The earliest `now` at which prune() could eat a head of the tracker as it is: the time each head
    outside the top KEEP_TOP_HEADS passes HEAD_MIN_AGE (and, unverified, its tail's newest child passes
    TAIL_CHILDREN_MIN_AGE). Until then, and while the tracker does not change, a prune that removed
    nothing removes nothing again: its second part (the oldest shares of long chains) reads no time."""
    keep = {head for _key, head in decorated_heads[-KEEP_TOP_HEADS:]}
    items, verified = tracker.items, tracker.verified.items
    earliest = float('inf')
    for head, tail in tracker.heads.items():
        if head in keep:
            continue
        due = items[head].time_seen + HEAD_MIN_AGE
        if head not in verified:
            due = max(due, max(items[child].time_seen for child in tracker.reverse[tail]) + TAIL_CHILDREN_MIN_AGE)
        earliest = min(earliest, due)
    return earliest

def tail_keep_height(net: Net) -> int:
    """prune() drops the oldest shares of chains whose every head is at least this high."""
    height: int = 2 * net.CHAIN_LENGTH + 10
    return height


def prune(tracker: ShareTracker, decorated_heads: Sequence[tuple[HeadKey, int]], now: float, net: Net) -> list[int]:
    """Eat stale heads, then drop the oldest shares of long chains. Returns the removed
    hashes (so the store can forget them); the verified subset follows automatically."""
    removed: list[int] = []
    keep = {head for _key, head in decorated_heads[-KEEP_TOP_HEADS:]}
    items = tracker.items
    for _ in range(PRUNE_PASSES):
        doomed: list[int] = []
        for head, tail in tracker.heads.items():
            if head in keep or items[head].time_seen > now - HEAD_MIN_AGE:
                continue
            if head not in tracker.verified.items and max(
                    items[child].time_seen for child in tracker.reverse[tail]) > now - TAIL_CHILDREN_MIN_AGE:
                continue  # its missing parents may still be on their way
            doomed.append(head)
        if not doomed:
            break
        for head in doomed:
            tracker.remove(head)
            removed.append(head)

    keep_height = tail_keep_height(net)
    # no chain reaches keep_height with fewer shares than that in all (until a node holds that many)
    for _ in range(PRUNE_PASSES if len(items) >= keep_height else 0):
        doomed = []
        for tail, heads in tracker.tails.items():
            if min(tracker.get_height(head) for head in heads) >= keep_height:
                doomed.extend(tracker.reverse[tail])
        if not doomed:
            break
        for oldest in doomed:
            tracker.remove(oldest)
            removed.append(oldest)
    return removed
