"""The chooser's pass for a new share on the best head (Chooser._extend) answers as a full pass would."""
import random

from hypothesis import given, settings, strategies as st

from p2pool.sharechain.chooser import Chooser
from p2pool.sharechain.tracker import Tracker
from test_chooser import NET, FakeVerifier, fake_share

MISSING = 10**9   # parents from here on are never added: chains on them are incomplete


class Twin:
    """One of two identical forests: the same shares added in the same order."""

    def __init__(self, bad, rel_heights):
        self.tracker = Tracker()
        self.verifier = FakeVerifier()
        self.verifier.bad = bad   # shared: the test marks shares bad as it goes
        self.rel_heights = rel_heights

    def add(self, fields, verified):
        share = fake_share(**fields)
        self.tracker.add(share)
        if verified:
            self.tracker.verified.add(share)

    def chooser(self):
        return Chooser(self.tracker, NET, self.verifier, lambda block: self.rel_heights.get(block, 0),
                       rng=random.Random(1))


def _share_fields(rng, share_hash, parent, now):
    return dict(share_hash=share_hash, previous_hash=parent, work=rng.choice((10, 10, 11, 30)),
                time_seen=now - rng.randrange(200), timestamp=now - rng.randrange(-60, 600),
                peer=('10.0.0.%d' % rng.randrange(3), 9333), block=rng.randrange(3),
                naughty=1 if rng.random() < 0.03 else 0, pow_hash=0 if rng.random() < 0.03 else 2**255,
                version=33 if rng.random() < 0.03 else 35)


def _same(incremental, full):
    assert incremental.best_hash == full.best_hash
    assert incremental.decorated_heads == full.decorated_heads
    assert incremental.punish_aggressively == full.punish_aggressively
    assert incremental.removed == full.removed
    assert incremental.bad_peer_addresses == full.bad_peer_addresses
    # which known child names the peer to ask is a random draw of each pass
    assert sorted({h for _, h in incremental.desired}) == sorted({h for _, h in full.desired})


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**64))
def test_a_new_share_on_the_best_head_is_chosen_as_a_full_pass_would(seed):
    """Two identical forests get the same random new shares (mostly on the best head, some forks,
    some bad or punished, some on missing parents) and now and then a new parent-chain height; one
    chooser lives through all of it, a fresh chooser evaluates the other forest in full each time.
    Both verify the same shares, remove the same and answer the same."""
    rng = random.Random(seed)
    bad = set()
    rel_heights = {block: 0 for block in range(3)}
    incremental, full = Twin(bad, rel_heights), Twin(bad, rel_heights)
    kept = incremental.chooser()
    next_hash, now = 1000, 10**6
    parent = None if rng.random() < 0.7 else MISSING + rng.randrange(10**6)
    for _ in range(rng.randrange(1, NET.CHAIN_LENGTH + 12)):   # the chain the node starts with
        fields = _share_fields(rng, next_hash, parent, now)
        verified = rng.random() < 0.6
        for twin in (incremental, full):
            twin.add(fields, verified)
        parent, next_hash = next_hash, next_hash + 1
    best = kept.think(now).best_hash
    full.chooser().think(now)
    for _ in range(30):
        now += rng.randrange(1, 400)   # the desired cutoff moves with the timestamps
        roll = rng.random()
        items = sorted(incremental.tracker.items)
        if roll < 0.75 and best is not None:
            parent = best
        elif roll < 0.95 and items:
            parent = rng.choice(items)
        else:
            parent = MISSING + rng.randrange(10**6)
        share_hash = next_hash
        gaps = sorted(tail for tail in incremental.tracker.tails if tail is not None)
        if gaps and rng.random() < 0.1:   # the missing parent of a chain arrives
            share_hash = rng.choice(gaps)
            if incremental.tracker.get_last(parent) == share_hash:
                parent = None   # (not on a share of the chain it completes)
        else:
            next_hash += 1
        if rng.random() < 0.05:
            bad.add(share_hash)
        fields = _share_fields(rng, share_hash, parent, now)
        for twin in (incremental, full):
            twin.add(fields, False)
        if rng.random() < 0.1:
            rel_heights[rng.randrange(3)] = -rng.randrange(4)
        calls_before = len(incremental.verifier.calls), len(full.verifier.calls)
        result = kept.think(now)
        fresh = full.chooser()
        expected = fresh.think(now)
        _same(result, expected)
        # and the entries behind `desired` (timestamps and targets decide the cutoff of later passes)
        assert ([entry[1:] for entry in kept._last_result[0].desired]
                == [entry[1:] for entry in fresh._last_result[0].desired])
        assert incremental.verifier.calls[calls_before[0]:] == full.verifier.calls[calls_before[1]:]
        assert sorted(incremental.tracker.verified.items) == sorted(full.tracker.verified.items)
        assert sorted(incremental.tracker.items) == sorted(full.tracker.items)
        # the 5-second job: the kept chooser may know its prune would remove nothing; a fresh one prunes
        now += rng.randrange(0, 200)
        result, removed = kept.think_and_prune(now)
        expected, expected_removed = full.chooser().think_and_prune(now)
        _same(result, expected)
        assert removed == expected_removed
        assert sorted(incremental.tracker.items) == sorted(full.tracker.items)
        best = result.best_hash


def test_shares_on_the_best_head_take_the_short_pass(monkeypatch):
    twin = Twin(set(), {})
    for share_hash in range(1000, 1010):
        twin.add(dict(share_hash=share_hash, previous_hash=share_hash - 1 if share_hash > 1000 else None), True)
    chooser = twin.chooser()
    full_passes = []
    evaluate = Chooser._evaluate
    monkeypatch.setattr(Chooser, '_evaluate',
                        lambda self, failed=None: full_passes.append(1) or evaluate(self, failed))
    assert chooser.think(10**6).best_hash == 1009
    for share_hash in range(1010, 1050):
        twin.add(dict(share_hash=share_hash, previous_hash=share_hash - 1), False)
        assert chooser.think(10**6).best_hash == share_hash
    assert len(full_passes) == 1
    assert twin.verifier.calls == list(range(1010, 1050))


def _two_tails():
    """A complete chain whose best head P (height 8, work 260) is not its heaviest head H (height 12,
    work 525): the chain scores by H's height. Another chain, on a missing parent, of height 10."""
    twin = Twin(set(), {})
    shares = []

    def chain(parent, works):
        for work in works:
            shares.append(dict(share_hash=1000 + len(shares), previous_hash=parent, work=work))
            parent = shares[-1]['share_hash']
        return parent

    t6 = chain(None, [10] * 6)
    p = chain(t6, [100, 100])                               # 30 below its newest 5
    chain(shares[1]['share_hash'], [1] * 5 + [100] * 5)    # H: 25 below its newest 5
    u = chain(MISSING, [10] * 10)
    for fields in shares:
        twin.add(fields, True)
    return twin, p, u


def test_a_new_share_that_lowers_its_tails_score_hands_the_choice_to_another_tail():
    """The new share on P outweighs H but is lower: its chain's score drops below the other chain's,
    whose head a full pass then picks."""
    twin, p, u = _two_tails()
    chooser = twin.chooser()
    assert chooser.think(10**6).best_hash == p
    twin.add(dict(share_hash=5000, previous_hash=p, work=300), False)   # height 9, work 560
    assert chooser.think(10**6).best_hash == u == twin.chooser().think(10**6).best_hash


def test_a_new_share_lighter_than_its_tails_heaviest_head_leaves_the_tails_score():
    twin, p, u = _two_tails()
    chooser = twin.chooser()
    assert chooser.think(10**6).best_hash == p
    twin.add(dict(share_hash=5000, previous_hash=p, work=10), False)    # height 9, work 270 < H's
    assert chooser.think(10**6).best_hash == 5000 == twin.chooser().think(10**6).best_hash


def test_a_new_share_and_a_new_parent_block_together_rescore_every_tail():
    twin = Twin(set(), {'old-a': -2, 'old-b': -5})
    for start, block in ((111, 'old-a'), (222, 'old-b')):   # two full-length chains on missing parents
        for offset in range(NET.CHAIN_LENGTH):
            parent = start * 1000 + offset - 1 if offset else start
            twin.add(dict(share_hash=start * 1000 + offset, previous_hash=parent, block=block), True)
    chooser = twin.chooser()
    a_head, b_head = 111 * 1000 + NET.CHAIN_LENGTH - 1, 222 * 1000 + NET.CHAIN_LENGTH - 1
    assert chooser.think(10**6).best_hash == a_head
    twin.rel_heights.update({'old-a': -3, 'old-b': -2})   # now b has the more work per parent-chain time
    twin.add(dict(share_hash=5000, previous_hash=a_head, block='old-a'), False)
    assert chooser.think(10**6).best_hash == b_head == twin.chooser().think(10**6).best_hash


def test_a_punished_new_share_outside_the_top_heads_is_pruned_on_time():
    """A fruitless prune is remembered across a new share on the best head only while the kept top
    heads stay the same but for it. Here the new share is naughty: it ranks below five side heads,
    so it is the one head outside the top and, seen long ago (time_seen 0, as loaded from a store),
    the next prune eats it (and then its parent, the former best head, outside the top as well)."""
    twin = Twin(set(), {})
    for share_hash in range(1000, 1010):
        twin.add(dict(share_hash=share_hash, previous_hash=share_hash - 1 if share_hash > 1000 else None), True)
    for side in range(2000, 2005):   # side heads as high as the best one, seen more recently
        twin.add(dict(share_hash=side, previous_hash=1008, time_seen=900), True)
    chooser = twin.chooser()
    result, removed = chooser.think_and_prune(1000.0)
    assert result.best_hash == 1009 and removed == []
    twin.add(dict(share_hash=3000, previous_hash=1009, naughty=1), False)
    result, removed = chooser.think_and_prune(1001.0)
    assert removed == [3000, 1009]
    assert result.best_hash == 2004
