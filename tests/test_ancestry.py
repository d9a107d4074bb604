"""sharechain/ancestry.py::recent_ancestors against the tracker's own queries, on random forests
whose shares come and go (heads and oldest shares removed, as a Tracker allows)."""
from dataclasses import dataclass

from hypothesis import given, settings, strategies as st

from p2pool.sharechain import ancestry
from p2pool.sharechain.tracker import Tracker


@dataclass(frozen=True)
class Item:
    hash: int
    previous_hash: int | None
    work: int
    min_work: int


def check(tracker, share_hash, depth):
    ancestors = ancestry.recent_ancestors(tracker, share_hash, depth)
    height = tracker.get_height(share_hash)
    if height < depth:
        assert ancestors is None
        return
    assert ancestors is not None and len(ancestors.hashes) == depth + 1
    for n in range(depth + 1):
        assert ancestors.hashes[n] == tracker.get_nth_parent_hash(share_hash, n)
    for n in range(1, depth + 1):
        far = ancestors.hashes[n]
        assert sum(ancestors.min_works[:n]) == tracker.get_min_work(share_hash) - tracker.get_min_work(far)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.data())
def test_recent_ancestors_match_the_tracker(depth, data):
    tracker = Tracker()
    for step in range(data.draw(st.integers(5, 40))):
        hashes = sorted(tracker.items)
        action = data.draw(st.sampled_from(['grow', 'grow', 'fork', 'remove_head', 'remove_tail', 'ask']))
        if action in ('grow', 'fork') or not hashes:
            parent = None
            if hashes:
                parent = max(hashes) if action == 'grow' else data.draw(st.sampled_from(hashes))
            tracker.add(Item(1000 + step, parent, data.draw(st.integers(1, 10**20)), data.draw(st.integers(1, 10**20))))
        elif action == 'remove_head':
            tracker.remove(data.draw(st.sampled_from(sorted(tracker.heads))))
        elif action == 'remove_tail':
            oldest = [item for item in hashes if tracker.items[item].previous_hash not in tracker.items]
            tracker.remove(data.draw(st.sampled_from(oldest)))
        if tracker.items:
            if action == 'ask':
                check(tracker, data.draw(st.sampled_from(sorted(tracker.items))), depth)
            check(tracker, max(tracker.items), depth)      # the newest share, often a child of the last asked


def test_other_trackers_and_absent_shares_get_none():
    tracker = Tracker()
    for index in range(5):
        tracker.add(Item(index + 1, index or None, 1, 1))
    assert ancestry.recent_ancestors(tracker, 99, 2) is None
    assert ancestry.recent_ancestors(tracker, None, 2) is None
    assert ancestry.recent_ancestors(tracker.verified, 5, 2) is None
    assert ancestry.recent_ancestors(tracker, 5, 2).hashes == [5, 4, 3]
    assert ancestry.recent_ancestors(tracker, 5, 6) is None     # only 5 shares
