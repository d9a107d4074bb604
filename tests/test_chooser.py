"""Best chain choice, punishment, desired parents and pruning (sharechain.md §3-§6)."""
import random
from types import SimpleNamespace

import pytest

from p2pool.sharechain.chooser import Chooser, best_descendant, prune, punishment, think
from p2pool.sharechain.tracker import Tracker

CHAIN_LENGTH = 32
NET = SimpleNamespace(CHAIN_LENGTH=CHAIN_LENGTH, PARENT=SimpleNamespace(BLOCK_PERIOD=600),
                      BLOCK_MAX_WEIGHT=4000000, BLOCK_MAX_SIZE=1000000)
NOT_A_BLOCK = 2**255          # pow_hash above any block target used here
EASY_BITS = 0x207fffff        # block target ~2**255: pow_hash 0 is a block solution


def fake_share(share_hash, previous_hash, work=10, timestamp=10**6, time_seen=0, peer=None, block=1,
               naughty=0, pow_hash=NOT_A_BLOCK, version=35):
    return SimpleNamespace(
        hash=share_hash, previous_hash=previous_hash, work=work, min_work=1, target=2**256 // work - 1,
        timestamp=timestamp, time_seen=time_seen, peer_addr=peer, naughty=naughty, pow_hash=pow_hash,
        header={'previous_block': block, 'bits': EASY_BITS}, VERSION=version,
        transaction_hash_refs=[], new_transaction_hashes=[], stale_info=None)


class Forest:
    """Builds chains of fake shares in one tracker; hashes count up from `start`."""

    def __init__(self, start=1000):
        self.tracker = Tracker()
        self.next_hash = start

    def chain(self, parent, length, verified=False, **fields):
        hashes = []
        for _ in range(length):
            share = fake_share(self.next_hash, parent, **fields)
            self.next_hash += 1
            self.tracker.add(share)
            if verified:
                self.tracker.verified.add(share)
            hashes.append(share.hash)
            parent = share.hash
        return hashes


class FakeVerifier:
    def __init__(self, bad=()):
        self.bad = set(bad)
        self.calls = []

    def __call__(self, share):
        self.calls.append(share.hash)
        return share.hash not in self.bad


def chooser_for(forest, verifier=None, rel_heights=None, **kwargs):
    rel_heights = rel_heights or {}
    return Chooser(forest.tracker, NET, verifier or FakeVerifier(), lambda block: rel_heights.get(block, 0),
                   rng=random.Random(1), **kwargs)


# --- §3 verification scheduling and desired parents -------------------------------------

def test_complete_short_chain_is_verified_entirely():
    forest = Forest()
    hashes = forest.chain(None, 10)
    result = chooser_for(forest).think(now=10**6)
    assert set(forest.tracker.verified.items) == set(hashes)
    assert result.best_hash == hashes[-1]
    assert result.desired == [] and result.bad_peer_addresses == set() and result.removed == []


def test_incomplete_short_chain_asks_for_its_tail_and_verifies_nothing():
    forest = Forest()
    forest.tracker.add(fake_share(1, 999, peer=('p1', 1)))
    forest.chain(1, CHAIN_LENGTH - 1, peer=('p2', 2))
    verifier = FakeVerifier()
    result = chooser_for(forest, verifier).think(now=10**6)
    assert verifier.calls == []
    assert result.best_hash is None
    assert result.desired == [(('p1', 1), 999)]


def test_desired_entries_older_than_a_day_are_dropped_without_a_best_share():
    forest = Forest()
    forest.chain(999, 3, timestamp=1000)
    assert chooser_for(forest).think(now=1000 + 86400).desired == [(None, 999)]
    assert chooser_for(forest).think(now=1001 + 86400).desired == []


def test_long_incomplete_chain_verifies_what_it_may_and_keeps_asking():
    forest = Forest()
    hashes = forest.chain(999, CHAIN_LENGTH + 3, peer=('p', 1))
    verifier = FakeVerifier()
    chooser = chooser_for(forest, verifier)
    result = chooser.think(now=10**6)
    # head verified (walk stops at the first success), then one more below it (can = 1)
    assert verifier.calls == [hashes[-1], hashes[-2]]
    assert forest.tracker.verified.get_height(hashes[-1]) == 2
    assert result.best_hash == hashes[-1]
    assert result.desired == [(('p', 1), 999)]
    verifier.calls.clear()
    assert chooser.think(now=10**6).best_hash == hashes[-1]
    assert verifier.calls == []  # nothing changed: nothing re-verified


def test_bad_shares_are_removed_and_their_peers_reported():
    forest = Forest()
    good = forest.chain(None, 5)
    bad = forest.chain(good[-1], 2, peer=('evil', 9))
    result = chooser_for(forest, FakeVerifier(bad=bad)).think(now=10**6)
    assert result.bad_peer_addresses == {('evil', 9)}
    assert result.removed == [bad[1], bad[0]]
    assert result.best_hash == good[-1]
    assert set(forest.tracker.items) == set(good)


def test_bad_share_in_the_middle_is_reported_but_kept():
    forest = Forest()
    base = forest.chain(None, 3)
    middle = forest.chain(base[-1], 1, peer=('evil', 1))
    top = forest.chain(middle[0], 1)
    tracker = forest.tracker
    sibling = forest.chain(middle[0], 1)
    for share_hash in base:
        tracker.verified.add(tracker.items[share_hash])
    verifier = FakeVerifier(bad=middle + top)
    result = chooser_for(forest, verifier).think(now=10**6)
    assert ('evil', 1) in result.bad_peer_addresses
    assert middle[0] in tracker.items          # it still had a verified child
    assert sibling[0] in tracker.verified.items
    assert top[0] not in tracker.items


# --- §4 best tail ----------------------------------------------------------------------------

def two_full_chains(work_a=10, work_b=10):
    forest = Forest()
    a = forest.chain(111, CHAIN_LENGTH, verified=True, work=work_a, block='old-a')
    b = forest.chain(222, CHAIN_LENGTH, verified=True, work=work_b, block='old-b')
    return forest, a, b


def test_best_tail_is_most_work_per_parent_chain_time():
    forest, a, b = two_full_chains()
    chooser = chooser_for(forest, rel_heights={'old-a': -2, 'old-b': -5})
    assert chooser.tail_score(a[-1]) == (CHAIN_LENGTH, 30 * 10 / (3 * 600))
    assert chooser.think(now=10**6).best_hash == a[-1]
    chooser = chooser_for(forest, rel_heights={'old-a': -5, 'old-b': -2})
    assert chooser.think(now=10**6).best_hash == b[-1]


def test_best_tail_tie_goes_to_the_larger_tail_hash():
    forest, a, b = two_full_chains()
    assert chooser_for(forest).think(now=10**6).best_hash == b[-1]  # tail 222 > 111


def test_short_chains_lose_to_full_length_ones_and_compare_by_height():
    forest = Forest()
    full = forest.chain(111, CHAIN_LENGTH, verified=True, work=1)
    short = forest.chain(222, CHAIN_LENGTH - 1, verified=True, work=10**9)
    shorter = forest.chain(333, CHAIN_LENGTH - 2, verified=True, work=10**9)
    chooser = chooser_for(forest, rel_heights={1: -1000})
    assert chooser.tail_score(short[-1]) == (CHAIN_LENGTH - 1, None)
    assert chooser.think(now=10**6).best_hash == full[-1]
    forest.tracker.remove(full[-1])
    assert chooser.think(now=10**6).best_hash == short[-1]
    assert shorter


def test_none_tail_sorts_below_a_hash_tail():
    forest = Forest()
    forest.chain(None, 5, verified=True)
    other = forest.chain(5, 5, verified=True)
    assert chooser_for(forest).think(now=10**6).best_hash == other[-1]


def test_heads_are_ranked_by_work_without_the_newest_five():
    forest = Forest()
    trunk = forest.chain(111, CHAIN_LENGTH, verified=True)
    heavy = forest.chain(trunk[-1], 1, verified=True, work=1000)
    light = forest.chain(trunk[-1], 2, verified=True, work=1)
    result = chooser_for(forest).think(now=10**6)
    assert result.best_hash == light[-1]  # ranked by work5; both heads are candidates
    assert {head for _key, head in result.decorated_heads} == {heavy[0], light[-1]}


# --- §5 heads and punishment -------------------------------------------------------------

def test_seen_first_wins_between_equal_heads_and_more_work_wins_otherwise():
    forest = Forest()
    trunk = forest.chain(None, 10, verified=True)
    late = forest.chain(trunk[-1], 1, verified=True, time_seen=50)
    early = forest.chain(trunk[-1], 1, verified=True, time_seen=40)
    result = chooser_for(forest).think(now=10**6)
    assert result.best_hash == early[0]
    assert [head for _key, head in result.decorated_heads] == [late[0], early[0]]
    longer = forest.chain(late[0], 1, verified=True, time_seen=60)
    assert chooser_for(forest).think(now=10**6).best_hash == longer[0]


def test_block_solution_beats_an_earlier_sibling_and_naughty_loses():
    forest = Forest()
    trunk = forest.chain(None, 10, verified=True)
    plain = forest.chain(trunk[-1], 1, verified=True, time_seen=1)
    block = forest.chain(trunk[-1], 1, verified=True, time_seen=2, pow_hash=0)
    result = chooser_for(forest).think(now=10**6)
    assert result.best_hash == block[0]
    assert result.punish_aggressively is False  # traditionally best is the plain, earlier head
    forest.tracker.remove(block[0])
    naughty = forest.chain(trunk[-1], 1, verified=True, time_seen=0, naughty=1)
    result = chooser_for(forest).think(now=10**6)
    assert result.best_hash == plain[0]
    assert result.punish_aggressively is True   # the earliest-seen head is naughty
    assert naughty


def test_punished_best_steps_back_then_forward_to_the_best_clean_descendant():
    forest = Forest()
    trunk = forest.chain(None, 10, verified=True)
    naughty = forest.chain(trunk[-1], 2, verified=True, naughty=1)
    clean = forest.chain(trunk[-1], 3)          # unverified, so not a candidate head
    tracker = forest.tracker
    tracker.items[naughty[1]].naughty = 2
    chooser = chooser_for(forest)
    # Keep the clean branch unverified (step 1 would verify it), so it is no candidate head.
    chooser._verify_heads = lambda desired, failed: []
    result = chooser.think(now=10**6)
    assert result.best_hash == clean[-1]
    assert best_descendant(tracker, trunk[-1]) == (3, clean[-1])


def test_best_descendant_is_bounded_and_prefers_larger_hash_on_ties():
    forest = Forest()
    root = forest.chain(None, 1)
    deep = forest.chain(root[0], 40)
    assert best_descendant(forest.tracker, root[0]) == (21, deep[20])
    left = forest.chain(deep[-1], 2)
    right = forest.chain(deep[-1], 2)
    assert best_descendant(forest.tracker, deep[-1]) == (2, max(left[-1], right[-1]))


def test_punishment_rules():
    tracker = Tracker()
    plain = fake_share(1, None)
    tracker.add(plain)
    assert punishment(plain, tracker, NET) == 0
    assert punishment(fake_share(2, None, pow_hash=0), tracker, NET) == -1
    assert punishment(fake_share(3, None, naughty=1), tracker, NET) == 1
    assert punishment(fake_share(4, None, naughty=3), tracker, NET) == 3


def test_block_size_punishment_for_old_versions():
    tracker = Tracker()
    parent = fake_share(1, None, version=33)
    parent.new_transaction_hashes = ['tx-a']
    tracker.add(parent)
    share = fake_share(2, 1, version=33)
    share.new_transaction_hashes = ['tx-b']
    share.transaction_hash_refs = [(1, 0), (0, 0)]
    tracker.add(share)
    gentx = {2: (200, 800)}
    small = {'tx-a': (1000, 900), 'tx-b': (1000, 900)}
    assert punishment(share, tracker, NET, small, gentx) == 0
    # weight: 1000 + 3996000 + 3 * 1800 + 4 * 80 + 800 > 4000000
    heavy = {'tx-a': (1000, 900), 'tx-b': (3996000, 900)}
    assert punishment(share, tracker, NET, heavy, gentx) == 1
    # size: 1800 + 80 + 200 > 2000 while the weight stays small
    small_blocks = SimpleNamespace(BLOCK_MAX_WEIGHT=4000000, BLOCK_MAX_SIZE=2000)
    assert punishment(share, tracker, small_blocks, small, gentx) == 1
    assert punishment(share, tracker, SimpleNamespace(BLOCK_MAX_WEIGHT=4000000, BLOCK_MAX_SIZE=2080),
                      small, gentx) == 0
    assert punishment(share, tracker, NET, {'tx-a': (5000000, 1)}, gentx) == 0   # tx-b unknown
    assert punishment(share, tracker, NET, heavy, {}) == 0                       # gentx unknown
    share.VERSION = 34
    assert punishment(share, tracker, NET, heavy, gentx) == 0


def test_desired_cutoff_follows_the_best_share_timestamp():
    forest = Forest()
    forest.chain(None, 3, verified=True, timestamp=10000)
    forest.chain(999, 2, timestamp=10000 - 3600, peer=('a', 1))
    forest.chain(998, 2, timestamp=10000 - 3601, peer=('b', 1))
    assert chooser_for(forest).think(now=20000).desired == [(('a', 1), 999)]
    # the cutoff is min(now, best.timestamp) - 3600
    assert sorted(chooser_for(forest).think(now=9000).desired) == [(('a', 1), 999), (('b', 1), 998)]


def test_module_level_think_matches_the_chooser():
    forest = Forest()
    hashes = forest.chain(None, 4)
    result = think(forest.tracker, NET, 10**6, FakeVerifier(), lambda block: 0, rng=random.Random(0))
    assert result.best_hash == hashes[-1]


# --- §6 pruning ------------------------------------------------------------------------------

def test_eat_heads_removes_old_side_branches_but_keeps_top_and_recent_ones():
    forest = Forest()
    trunk = forest.chain(None, 10, verified=True, time_seen=0)
    stub = forest.chain(trunk[4], 3, verified=True, time_seen=0)
    recent = forest.chain(trunk[4], 1, verified=True, time_seen=900)
    tracker = forest.tracker
    removed = prune(tracker, [((0, 0, 0), trunk[-1])], 1000, NET)
    assert removed == stub[::-1]
    assert recent[0] in tracker.items and trunk[-1] in tracker.items


def test_eat_heads_waits_for_parents_of_recently_extended_unverified_chains():
    forest = Forest()
    tracker = forest.tracker
    forest.chain(None, 3, verified=True)
    waiting = forest.chain(999, 1, time_seen=0)
    forest.tracker.add(fake_share(5000, 999, time_seen=950))  # another child of the same tail
    keep = [((0, 0, 0), 1002)]
    assert prune(tracker, keep, 1000, NET) == []
    assert sorted(prune(tracker, keep, 1000 + 300, NET)) == sorted([waiting[0], 5000])


def test_drop_tails_keeps_2_chain_length_plus_9():
    forest = Forest()
    hashes = forest.chain(None, 2 * CHAIN_LENGTH + 13, verified=True)
    tracker = forest.tracker
    removed = prune(tracker, [((0, 0, 0), hashes[-1])], 0, NET)
    assert removed == hashes[:4]
    assert tracker.get_height(hashes[-1]) == 2 * CHAIN_LENGTH + 9
    assert tracker.verified.get_height(hashes[-1]) == 2 * CHAIN_LENGTH + 9


def test_drop_tails_waits_for_every_head_of_the_tail():
    forest = Forest()
    hashes = forest.chain(None, 2 * CHAIN_LENGTH + 13, time_seen=10**9)
    forest.chain(hashes[2 * CHAIN_LENGTH], 1, time_seen=10**9)   # a fork head at height 2*CL+2
    assert prune(forest.tracker, [], 0, NET) == []
    other = Forest()
    main = other.chain(None, 2 * CHAIN_LENGTH + 12, time_seen=10**9)
    other.chain(main[12], 2 * CHAIN_LENGTH, time_seen=10**9)   # fork head at height 2*CL+13
    # the shorter head (2*CL+12) decides: three oldest shares go
    assert prune(other.tracker, [], 0, NET) == main[:3]


def test_think_and_prune_reports_everything_removed():
    forest = Forest()
    good = forest.chain(None, 2 * CHAIN_LENGTH + 11, time_seen=0)
    bad = forest.chain(good[-1], 1, peer=('x', 1))
    chooser = chooser_for(forest, FakeVerifier(bad=bad))
    result, removed = chooser.think_and_prune(now=10**6)
    assert removed == bad + good[:2]
    assert result.best_hash == good[-1]


@pytest.mark.parametrize('seed', range(5))
def test_think_is_stable_under_repetition(seed):
    rng = random.Random(seed)
    forest = Forest()
    trunk = forest.chain(None, 20, verified=True)
    for _ in range(6):
        forest.chain(trunk[rng.randrange(10, 20)], rng.randrange(1, 4), verified=True,
                     time_seen=rng.randrange(100))
    chooser = chooser_for(forest)
    first = chooser.think(now=10**6)
    assert chooser.think(now=10**6) == first


# --- with real shares and the real verifier ---------------------------------------------------

def test_syncing_node_with_real_shares():
    from p2pool.config import load_network
    from p2pool.sharechain import verify
    from p2pool.sharechain.share import ShareInvalid
    from p2pool.testing.testchain import easy_network, mine_chain

    # CHAIN_LENGTH above 99 so that far_share_hash (99 generations back) is within reach
    length = 120
    net = easy_network(load_network('bitcoin'), CHAIN_LENGTH=length, REAL_CHAIN_LENGTH=length,
                       TARGET_LOOKBEHIND=10)
    shares = mine_chain(net, 300)
    now = shares[-1].timestamp + 10
    tracker = Tracker()

    def verify_fn(share):
        try:
            verify.check_share(tracker, share, now)
        except ShareInvalid:
            return False
        return True

    chooser = Chooser(tracker, net, verify_fn, lambda block: 0, rng=random.Random(1))
    for share in reversed(shares[length:]):        # newest first, as a download delivers them
        tracker.add(share)
    result = chooser.think(now)
    assert result.best_hash == shares[-1].hash
    assert result.desired == [(None, shares[length - 1].hash)]
    assert result.bad_peer_addresses == set()
    assert tracker.verified.get_height(shares[-1].hash) == 1 + (300 - length - 1 - 1 - length)
    for share in reversed(shares[:length]):
        tracker.add(share)
    result, removed = chooser.think_and_prune(now + 1000)
    assert result.best_hash == shares[-1].hash and result.desired == []
    assert tracker.verified.get_height(shares[-1].hash) == length
    assert removed == [share.hash for share in shares[:300 - (2 * length + 9)]]


# --- the think memo ----------------------------------------------------------------------------

def _random_forest(rng):
    forest = Forest()
    trunk = forest.chain(None, rng.randrange(2, CHAIN_LENGTH + 8), verified=rng.random() < 0.5,
                         block=rng.randrange(3))
    for _ in range(rng.randrange(4)):
        forest.chain(trunk[rng.randrange(len(trunk))], rng.randrange(1, 4), verified=rng.random() < 0.3,
                     time_seen=rng.randrange(100), peer=('10.0.0.%d' % rng.randrange(3), 9333))
    for _ in range(rng.randrange(3)):           # chains whose parents are missing
        forest.chain(10**9 + rng.randrange(10**6), rng.randrange(1, CHAIN_LENGTH + 4),
                     peer=('10.0.1.1', 9333))
    return forest


def _same_choice(a, b):
    return (a.best_hash == b.best_hash and a.decorated_heads == b.decorated_heads
            and a.punish_aggressively == b.punish_aggressively
            and sorted(h for _, h in a.desired) == sorted(h for _, h in b.desired))


@pytest.mark.parametrize('seed', range(40))
def test_a_remembered_pass_answers_as_a_fresh_pass_would(seed):
    rng = random.Random(seed)
    forest = _random_forest(rng)
    bad = {h for h in forest.tracker.items if rng.random() < 0.05}
    rel_heights = {block: -rng.randrange(3) for block in range(3)}
    chooser = chooser_for(forest, FakeVerifier(bad=bad), rel_heights=rel_heights)
    chooser.think(now=10**6)
    if chooser._memo is None:
        return   # a failed verification or a removal: the next pass starts over anyway
    remembered = chooser.think(now=10**6)
    fresh_verifier = FakeVerifier(bad=bad)
    fresh = chooser_for(forest, fresh_verifier, rel_heights=rel_heights).think(now=10**6)
    assert fresh_verifier.calls == []          # the remembered pass left nothing to verify
    assert _same_choice(remembered, fresh)


def test_the_memo_is_dropped_when_shares_or_parent_heights_change():
    forest, a, b = two_full_chains()
    rel_heights = {'old-a': -2, 'old-b': -5}
    chooser = chooser_for(forest, rel_heights=rel_heights)
    assert chooser.think(now=10**6).best_hash == a[-1]
    rel_heights.update({'old-a': -5, 'old-b': -2})   # a new parent block changes the tail scores
    assert chooser.think(now=10**6).best_hash == b[-1]
    newer = forest.chain(a[-1], 2, verified=True, work=10**6)
    assert chooser.think(now=10**6).best_hash == newer[-1]


def _side_branches(rng, verified):
    forest = Forest()
    trunk = forest.chain(None, 12, verified=True, time_seen=0, timestamp=0)
    for _ in range(8):
        forest.chain(trunk[rng.randrange(12)], rng.randrange(1, 3), verified=verified and rng.random() < 0.7,
                     time_seen=rng.randrange(0, 800), timestamp=0)
    for _ in range(2):   # unverified chains whose parents are missing
        forest.chain(10**9 + rng.randrange(10**6), 2, time_seen=rng.randrange(0, 800), timestamp=0)
    return forest


@pytest.mark.parametrize('seed', range(8))
def test_the_five_second_job_prunes_as_a_full_prune_would_at_every_tick(seed):
    """think_and_prune skips the pruning walk until a head can be due (earliest_head_prune);
    a chooser without that memory, running the full prune at each tick, removes the same."""
    cached, plain = _side_branches(random.Random(seed), True), _side_branches(random.Random(seed), True)
    chooser = chooser_for(cached)
    idle_ticks = 0
    for tick in range(0, 1500, 5):
        idle = chooser.idle_result(now=float(tick))
        result, removed = chooser.think_and_prune(now=float(tick))
        if idle is not None:   # the job's answer, known without running it
            assert result is idle and removed == []
            idle_ticks += 1
        first = chooser_for(plain).think(now=float(tick))
        assert removed == prune(plain.tracker, first.decorated_heads, float(tick), NET)
        assert sorted(cached.tracker.items) == sorted(plain.tracker.items)
    assert idle_ticks > 200
