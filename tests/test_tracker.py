"""The share forest (sharechain.md §1) against a naive dict-walking model.

Shares are tiny SimpleNamespace objects, so these tests do not depend on share.py.
"""
import random
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pool.sharechain.tracker import Delta, Tracker, TrackerError


def fake_share(share_hash, previous_hash, work=1, min_work=1):
    return SimpleNamespace(hash=share_hash, previous_hash=previous_hash, work=work, min_work=min_work)


# --- the brute-force model ---------------------------------------------------------------

class Model:
    """What the tracker must answer, computed by walking parent links every time."""

    def __init__(self, items):
        self.items = items  # hash -> share (the tracker's or any subset)

    def walk(self, share_hash):
        height = work = min_work = 0
        while share_hash in self.items:
            share = self.items[share_hash]
            height, work, min_work = height + 1, work + share.work, min_work + share.min_work
            share_hash = share.previous_hash
        return height, work, min_work, share_hash

    def ancestors(self, share_hash):
        """share_hash, its parent, ... down to and including its tail."""
        chain = [share_hash]
        while share_hash in self.items:
            share_hash = self.items[share_hash].previous_hash
            chain.append(share_hash)
        return chain

    def children(self):
        reverse = {}
        for share in self.items.values():
            reverse.setdefault(share.previous_hash, set()).add(share.hash)
        return reverse

    def heads(self):
        parents = {share.previous_hash for share in self.items.values()}
        return {h: self.walk(h)[3] for h in self.items if h not in parents}

    def tails(self):
        tails = {}
        for head, tail in self.heads().items():
            tails.setdefault(tail, set()).add(head)
        return tails

    def removable(self, share_hash):
        parents = {share.previous_hash for share in self.items.values()}
        return share_hash not in parents or self.items[share_hash].previous_hash not in self.items

    def is_child_of(self, a, b):
        if self.walk(a)[3] != self.walk(b)[3]:
            return None
        return a in self.ancestors(b)


def check_structure(tracker, model):
    assert tracker.heads == model.heads()
    assert tracker.tails == model.tails()
    assert tracker.reverse == model.children()
    assert len(tracker) == len(model.items)


def check_walks(tracker, model, hashes):
    for share_hash in hashes:
        height, work, min_work, last = model.walk(share_hash)
        assert tracker.get_height_and_last(share_hash) == (height, last)
        assert tracker.get_work(share_hash) == work
        assert tracker.get_min_work(share_hash) == min_work
        assert tracker.get_delta_to_last(share_hash) == Delta(height, work, min_work)


def check_ancestry(tracker, model, share_hash, n, other):
    chain = model.ancestors(share_hash)
    if n < len(chain):
        assert tracker.get_nth_parent_hash(share_hash, n) == chain[n]
        ancestor = chain[n]
        height, work, min_work, _ = model.walk(share_hash)
        below = model.walk(ancestor)
        assert tracker.get_delta(share_hash, ancestor) == Delta(n, work - below[1], min_work - below[2])
        assert [s.hash for s in tracker.get_chain(share_hash, n)] == chain[:n]
    else:
        with pytest.raises(TrackerError):
            tracker.get_nth_parent_hash(share_hash, n)
        with pytest.raises(TrackerError):
            tracker.get_chain(share_hash, n)
    assert tracker.is_child_of(share_hash, other) == model.is_child_of(share_hash, other)
    assert tracker.is_child_of(other, share_hash) == model.is_child_of(other, share_hash)
    if other not in chain:
        with pytest.raises(TrackerError):
            tracker.get_delta(share_hash, other)


# --- hypothesis: random forests, random order, random removals ------------------------

@st.composite
def forests(draw):
    """A list of fake shares forming a forest; parents refer to earlier shares,
    None, or hashes that never arrive."""
    count = draw(st.integers(1, 24))
    hashes = draw(st.lists(st.integers(1, 2**256 - 1), min_size=count, max_size=count, unique=True))
    shares = []
    for index, share_hash in enumerate(hashes):
        kind = draw(st.integers(0, 9))
        if index == 0 or kind == 0:
            parent = None
        elif kind == 1:
            parent = -1 - index  # never present
        elif kind <= 4:
            parent = shares[index - 1].hash  # long chains are the common case
        else:
            parent = shares[draw(st.integers(0, index - 1))].hash
        shares.append(fake_share(share_hash, parent, draw(st.integers(1, 10**30)), draw(st.integers(1, 1000))))
    return shares


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(forests(), st.data())
def test_tracker_matches_model(shares, data):
    by_hash = {share.hash: share for share in shares}
    tracker = Tracker()
    model = Model(tracker.items)
    verified_model = Model(tracker.verified.items)
    known = list(by_hash) + [None, -12345]
    for _step in range(data.draw(st.integers(1, 70))):
        absent = [h for h in by_hash if h not in tracker.items]
        removable = [h for h in tracker.items if model.removable(h)]
        unverified = [h for h in tracker.items if h not in tracker.verified.items]
        verified_removable = [h for h in tracker.verified.items if verified_model.removable(h)]
        choices = ['add'] * bool(absent) + ['remove'] * bool(removable) + \
            ['verify'] * bool(unverified) + ['unverify'] * bool(verified_removable)
        action = data.draw(st.sampled_from(choices))
        if action == 'add':
            tracker.add(by_hash[data.draw(st.sampled_from(absent))])
        elif action == 'remove':
            tracker.remove(data.draw(st.sampled_from(removable)))
        elif action == 'verify':
            tracker.verified.add(by_hash[data.draw(st.sampled_from(unverified))])
        else:
            tracker.verified.remove(data.draw(st.sampled_from(verified_removable)))

        check_structure(tracker, model)
        check_structure(tracker.verified, verified_model)
        assert set(tracker.verified.items) <= set(tracker.items)
        check_walks(tracker, model, known)
        check_walks(tracker.verified, verified_model, known)
        if tracker.items:
            share_hash = data.draw(st.sampled_from(sorted(tracker.items)))
            n = data.draw(st.integers(0, len(shares) + 1))
            check_ancestry(tracker, model, share_hash, n, data.draw(st.sampled_from(known)))
    # Finally every share against every n.
    for share_hash in tracker.items:
        for n in range(model.walk(share_hash)[0] + 2):
            check_ancestry(tracker, model, share_hash, n, share_hash)


# --- explicit cases ---------------------------------------------------------------------

def chain(length, parent=None, start=1, work=1):
    shares = []
    for index in range(length):
        shares.append(fake_share(start + index, parent, work=work))
        parent = start + index
    return shares


def test_empty_and_unknown_hashes():
    tracker = Tracker()
    assert tracker.get_height_and_last(None) == (0, None)
    assert tracker.get_height_and_last(77) == (0, 77)
    assert tracker.get_work(77) == 0
    assert tracker.get_nth_parent_hash(77, 0) == 77
    assert tracker.is_child_of(77, 77) is True
    assert tracker.is_child_of(77, 78) is None
    with pytest.raises(TrackerError):
        tracker.get_nth_parent_hash(77, 1)
    with pytest.raises(TrackerError):
        tracker.remove(77)


def test_height_may_equal_n_and_delta_to_tail():
    tracker = Tracker()
    for share in chain(5, parent=999, work=3):
        tracker.add(share)
    assert tracker.get_height_and_last(5) == (5, 999)
    assert tracker.get_nth_parent_hash(5, 5) == 999
    assert tracker.get_delta(5, 999) == Delta(5, 15, 5)
    assert tracker.get_delta(5, 5) == Delta(0, 0, 0)
    assert tracker.is_child_of(999, 3) is True
    assert tracker.heads == {5: 999} and tracker.tails == {999: {5}}


def test_duplicates_and_middle_removal_are_errors():
    tracker = Tracker()
    shares = chain(3)
    for share in shares:
        tracker.add(share)
    with pytest.raises(TrackerError):
        tracker.add(shares[1])
    with pytest.raises(TrackerError):
        tracker.remove(2)
    with pytest.raises(TrackerError):
        tracker.verified.add(fake_share(50, 3))


def test_removed_then_readded_ancestor_does_not_revive_old_jumps():
    tracker = Tracker()
    shares = chain(300)
    for share in shares:
        tracker.add(share)
    assert tracker.get_height(300) == 300
    assert tracker.get_nth_parent_hash(300, 299) == 1
    tracker.remove(1)
    tracker.remove(2)
    tracker.add(shares[0])  # share 1 is back, but share 2 (between) is not
    assert tracker.get_height_and_last(300) == (298, 2)
    assert tracker.get_nth_parent_hash(300, 298) == 2
    with pytest.raises(TrackerError):
        tracker.get_nth_parent_hash(300, 299)
    assert tracker.is_child_of(1, 300) is None
    tracker.add(shares[1])
    assert tracker.get_height_and_last(300) == (300, None)


def test_fork_at_the_bottom_splits_the_tree():
    tracker = Tracker()
    left = chain(10, parent=1000, start=1)
    right = chain(10, parent=1000, start=100)
    for share in left + right:
        tracker.add(share)
    assert tracker.tails == {1000: {10, 109}}
    tracker.remove(1)
    assert tracker.tails == {1: {10}, 1000: {109}}
    assert tracker.get_height_and_last(10) == (9, 1)
    assert tracker.is_child_of(100, 10) is None


def test_on_added_and_on_removed_are_called_after_the_change():
    tracker = Tracker()
    seen = []
    tracker.on_added.append(lambda share: seen.append(('added', share.hash, share.hash in tracker)))
    tracker.on_removed.append(lambda share: seen.append(('removed', share.hash, share.hash in tracker)))
    share = fake_share(1, None)
    tracker.add(share)
    tracker.verified.add(share)
    tracker.remove(1)
    assert seen == [('added', 1, True), ('removed', 1, False)]
    assert not tracker.verified.items


def test_verified_nth_parent_walks_the_full_tracker():
    tracker = Tracker()
    shares = chain(6)
    for share in shares:
        tracker.add(share)
    for share in shares[3:]:
        tracker.verified.add(share)
    assert tracker.verified.get_height_and_last(6) == (3, 3)
    assert tracker.verified.get_nth_parent_hash(6, 5) == 1


@pytest.mark.parametrize('order', ['forward', 'reverse', 'random'])
def test_long_chains_with_forks_in_any_order(order):
    rng = random.Random(7)
    main = chain(3000, start=1)
    fork = chain(40, parent=1500, start=10**6)
    shares = main + fork
    if order == 'reverse':
        shares = shares[::-1]
    elif order == 'random':
        rng.shuffle(shares)
    tracker = Tracker()
    for index, share in enumerate(shares):
        tracker.add(share)
        if index % 97 == 0:
            tracker.get_height(3000)
            if tracker.get_height(10**6 + 39) >= 20:
                tracker.get_nth_parent_hash(10**6 + 39, 20)
    assert tracker.heads == {3000: None, 10**6 + 39: None}
    for _ in range(500):
        top = rng.randrange(1, 3001)
        n = rng.randrange(top + 1)
        assert tracker.get_height(top) == top
        assert tracker.get_nth_parent_hash(top, n) == (top - n or None)
        assert tracker.get_delta(top, top - n or None).height == n
    assert tracker.get_height(10**6 + 39) == 1540
    assert tracker.get_nth_parent_hash(10**6 + 39, 45) == 1495
    assert tracker.is_child_of(1501, 10**6) is False
    assert tracker.is_child_of(1500, 10**6) is True
    # prune from the bottom like the node does
    for share_hash in range(1, 1001):
        tracker.remove(share_hash)
        assert tracker.get_height_and_last(3000) == (3000 - share_hash, share_hash)
