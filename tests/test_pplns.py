"""PPLNS weights (shares.md §11.4) against the spec's pseudo-code, and the payout views (§15)."""
import random
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from p2pool.bitcoin.address import donation_address
from p2pool.bitcoin.data import target_to_average_attempts
from p2pool.config import load_network
from p2pool.sharechain import pplns
from p2pool.sharechain.tracker import Tracker

KEYS = ['1Alice', '1Bob', '1Carol', '3Dave', 'bc1eve']
NET = load_network('bitcoin')


def fake_share(share_hash, previous_hash, work, donation, key):
    return SimpleNamespace(hash=share_hash, previous_hash=previous_hash, work=work, min_work=work,
                           donation=donation, payout_address=key)


def reference_weights(items, start, max_shares, desired_weight):
    """shares.md §11.4, literally."""
    weights, total, donation_total, count, cursor = {}, 0, 0, 0, start
    while count < max_shares and total < desired_weight:
        share = items.get(cursor) if cursor is not None else None
        if share is None:
            break
        full = share.work * 65535
        if total + full > desired_weight:
            portion = (desired_weight - total) // 65535
            weights[share.payout_address] = weights.get(share.payout_address, 0) + portion * (65535 - share.donation)
            donation_total += portion * share.donation
            total = desired_weight
            break
        weights[share.payout_address] = weights.get(share.payout_address, 0) + share.work * (65535 - share.donation)
        donation_total += share.work * share.donation
        total += full
        count += 1
        cursor = share.previous_hash
    return {k: v for k, v in weights.items() if v}, total, donation_total


def build_tree(rng, count, fork_probability=0.1, max_work=2**70):
    tracker = Tracker()
    hashes = []
    for index in range(count):
        if not hashes:
            parent = None
        elif rng.random() < fork_probability:
            parent = rng.choice(hashes)
        else:
            parent = hashes[-1]
        donation = rng.choice([0, 0, 0, 1, 655, 656, 65535, rng.randrange(65536)])
        work = rng.choice([1, 2, rng.randrange(1, 1000), rng.randrange(1, max_work)])
        share = fake_share(index + 1, parent, work, donation, rng.choice(KEYS))
        tracker.add(share)
        hashes.append(share.hash)
    return tracker, hashes


def test_partial_crossing_share():
    tracker = Tracker()
    tracker.add(fake_share(1, None, 10, 0, 'A'))
    tracker.add(fake_share(2, 1, 10, 655, 'B'))
    tracker.add(fake_share(3, 2, 10, 0, 'C'))
    weights, total, donation_total = pplns.get_cumulative_weights(tracker, 3, 10, 65535 * 25)
    assert weights == {'C': 10 * 65535, 'B': 10 * (65535 - 655), 'A': 5 * 65535}
    assert donation_total == 10 * 655 and total == 65535 * 25
    assert total == sum(weights.values()) + donation_total
    # exactly at the limit: no partial share
    assert pplns.get_cumulative_weights(tracker, 3, 10, 65535 * 20)[0] == {'C': 655350, 'B': 10 * 64880}
    # limited by count
    assert pplns.get_cumulative_weights(tracker, 3, 1, 65535 * 25) == ({'C': 655350}, 655350, 0)
    assert pplns.get_cumulative_weights(tracker, None, 5, 100) == ({}, 0, 0)
    assert pplns.get_cumulative_weights(tracker, 3, 0, 100) == ({}, 0, 0)


def test_full_donation_share_drops_its_key():
    tracker = Tracker()
    tracker.add(fake_share(1, None, 10, 65535, 'A'))
    tracker.add(fake_share(2, 1, 10, 0, 'B'))
    assert pplns.get_cumulative_weights(tracker, 2, 5, 65535 * 100) == ({'B': 655350}, 65535 * 20, 655350)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.integers(5, 150))
def test_incremental_windows_match_reference(seed, count):
    rng = random.Random(seed)
    tracker, hashes = build_tree(rng, count)
    pplns.clear_cache(tracker)
    start = hashes[0]
    for _ in range(60):
        move = rng.random()
        if move < 0.6:      # a child of the previous start: the syncing / mining pattern
            children = sorted(tracker.reverse.get(start, ()))
            start = rng.choice(children) if children else rng.choice(hashes)
        elif move < 0.8:
            start = rng.choice(hashes)
        max_shares = rng.choice([rng.randrange(0, 40), 30, 30, 31])
        unit = rng.choice([1, 2, 1000, 2**40, 2**70])
        desired_weight = 65535 * rng.randrange(1, 50) * unit + rng.choice([0, 0, rng.randrange(65535)])
        got = pplns.get_cumulative_weights(tracker, start, max_shares, desired_weight)
        assert got == reference_weights(tracker.items, start, max_shares, desired_weight)
        if desired_weight % 65535 == 0:     # always so in use (65535 * SPREAD * attempts)
            assert got[1] == sum(got[0].values()) + got[2]


def test_long_chain_moves_and_rebuilds():
    rng = random.Random(7)
    tracker, hashes = build_tree(rng, 600, fork_probability=0.0, max_work=50)
    pplns.clear_cache(tracker)
    for position in list(range(100, 600, 3)) + [200, 599, 150, 598, 20]:
        start = hashes[position]
        for max_shares, weight in ((300, 65535 * 10**9), (300, 65535 * 2000), (40, 65535 * 10**9)):
            assert (pplns.get_cumulative_weights(tracker, start, max_shares, weight)
                    == reference_weights(tracker.items, start, max_shares, weight))


def test_tracker_without_weak_references():
    class Plain:
        __slots__ = ('items',)
    rng = random.Random(3)
    tracker, hashes = build_tree(rng, 50)
    plain = Plain()
    plain.items = tracker.items
    for start in hashes[::7]:
        assert (pplns.get_cumulative_weights(plain, start, 20, 65535 * 10**6)
                == reference_weights(tracker.items, start, 20, 65535 * 10**6))


def test_window_follows_pruning_of_unrelated_shares():
    rng = random.Random(11)
    tracker, hashes = build_tree(rng, 80, fork_probability=0.0, max_work=10)
    first = pplns.get_cumulative_weights(tracker, hashes[-1], 30, 65535 * 10**6)
    tracker.remove(hashes[0])   # the oldest share, far outside the window
    assert pplns.get_cumulative_weights(tracker, hashes[-1], 30, 65535 * 10**6) == first


# --- payout views (§15) -----------------------------------------------------------------

def payout_chain(count, rng):
    tracker = Tracker()
    for index in range(count):
        tracker.add(fake_share(index + 1, index or None, rng.randrange(1, 10**6), rng.choice([0, 655]),
                               rng.choice(KEYS)))
    return tracker


@pytest.mark.parametrize('count', [1, 5, 40])
def test_current_payouts(count):
    rng = random.Random(count)
    tracker = payout_chain(count, rng)
    best = count
    block_target = 2**256 // (10**6 * 5)
    subsidy = 625000000 + 12345
    payouts = pplns.current_payouts(tracker, best, block_target, subsidy, NET)
    desired = 65535 * NET.SPREAD * target_to_average_attempts(block_target)
    weights, total, _ = reference_weights(tracker.items, best, min(count, NET.REAL_CHAIN_LENGTH), desired)
    donation = donation_address(NET.PARENT)
    expected = {key: subsidy * weight // total for key, weight in weights.items()}
    expected[donation] = expected.get(donation, 0) + subsidy - sum(expected.values())
    assert payouts == expected
    assert sum(payouts.values()) == subsidy and min(payouts.values()) >= 0
    assert pplns.current_payouts(tracker, None, block_target, subsidy, NET) == {donation: subsidy}


def test_users_weights():
    rng = random.Random(5)
    tracker = payout_chain(800, rng)
    users = pplns.users_weights(tracker, 800)
    weights, total, _ = reference_weights(tracker.items, 800, 720, 65535 * 2**256)
    assert users == {key: weight / total for key, weight in weights.items()}
    assert sum(users.values()) <= 1.0 + 1e-9
    assert pplns.users_weights(tracker, None) == {}
