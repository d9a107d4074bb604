"""Pool statistics, stale accounting and warnings (sharechain.md §7-§9) on small hand-made chains."""
from types import SimpleNamespace

import pytest

from p2pool.sharechain.stats import (
    StaleAccounting, StatsError, average_stale_prop, bitcoind_warning, format_duration, get_warnings,
    lost_contact_warning, my_recent_shares, pool_attempts_per_second, pool_hash_rate, stale_counts,
    user_stale_props, version_vote_warning)
from p2pool.sharechain.tracker import Tracker


def fake_share(share_hash, previous_hash, work, timestamp, stale_info=None, address='A', min_work=1,
               desired_version=35):
    return SimpleNamespace(hash=share_hash, previous_hash=previous_hash, work=work, min_work=min_work,
                           timestamp=timestamp, stale_info=stale_info, payout_address=address,
                           desired_version=desired_version)


def build(*specs):
    """Chain from specs (work, timestamp, stale_info, address), oldest first; hashes 1, 2, ..."""
    tracker = Tracker()
    parent = None
    for index, (work, timestamp, stale_info, address) in enumerate(specs, 1):
        tracker.add(fake_share(index, parent, work, timestamp, stale_info, address, min_work=work // 10))
        parent = index
    return tracker


FOUR = [(10, 100, None, 'A'), (20, 130, 'orphan', 'B'), (30, 160, None, 'A'), (40, 190, 'doa', 'B')]


# --- §8 ------------------------------------------------------------------------------------

def test_pool_attempts_per_second():
    tracker = build(*FOUR)
    # near = share 4, far = share 2: work of shares 4 and 3 over 190 - 130 seconds
    assert pool_attempts_per_second(tracker, 4, 3) == 70 / 60
    assert pool_attempts_per_second(tracker, 4, 3, integer=True) == 1
    assert pool_attempts_per_second(tracker, 4, 3, min_work=True) == (4 + 3) / 60
    assert pool_attempts_per_second(tracker, 4, 4) == 90 / 90
    with pytest.raises(StatsError):
        pool_attempts_per_second(tracker, 4, 1)
    with pytest.raises(StatsError):
        pool_attempts_per_second(tracker, 4, 5)  # the 4th parent is the tail, not a share


def test_pool_attempts_per_second_uses_one_second_when_time_runs_backwards():
    tracker = build((10, 500, None, 'A'), (20, 400, None, 'A'))
    assert pool_attempts_per_second(tracker, 2, 2) == 20


def test_average_stale_prop_has_the_quirky_denominator():
    tracker = build(*FOUR)
    assert average_stale_prop(tracker, 4, 4) == 2 / 6
    assert average_stale_prop(tracker, 4, 1) == 1 / 2
    assert average_stale_prop(tracker, 3, 1) == 0
    assert pool_hash_rate(tracker, 4, 3) == pytest.approx((70 / 60) / (1 - 2 / 5))


def test_stale_counts_cover_n_minus_one_shares():
    tracker = build(*FOUR)
    assert stale_counts(tracker, 4, 4) == {'good': 90, 'doa': 40, 'orphan': 20}
    assert stale_counts(tracker, 4, 2) == {'good': 40, 'doa': 40}
    assert stale_counts(tracker, 4, 3, rates=True) == {'good': 70 / 60, 'doa': 40 / 60}


def test_user_stale_props_count_stale_shares_twice_in_the_total():
    tracker = build(*FOUR)
    assert user_stale_props(tracker, 4, 4) == {'A': 0.0, 'B': 2 / 4}
    assert user_stale_props(tracker, 4, 1) == {'B': 1 / 2}


def test_my_recent_shares():
    tracker = build(*FOUR)
    recent = my_recent_shares(tracker, 4, 3, my_shares={2, 4})
    assert recent == (2, 1, 1, 40, 60)


# --- §7 stale accounting --------------------------------------------------------------------

class Node:
    def __init__(self):
        self.tracker = Tracker()
        self.best = None
        self.accounting = StaleAccounting(self.tracker, lambda: self.best)

    def add(self, share_hash, parent, stale_info=None, mine=False, doa=False):
        self.tracker.add(fake_share(share_hash, parent, 1, 0, stale_info))
        if mine:
            self.accounting.record_local_share(share_hash, doa)


def test_orphaned_share_is_announced_then_forgotten():
    node = Node()
    node.add(1, None)
    node.add(2, 1, mine=True)
    node.add(3, 1)              # a peer's share wins the race: ours is orphaned
    node.best = 3
    counts = node.accounting.counts(3)
    assert (counts.mine, counts.orphans, counts.doas, counts.total) == (0, 1, 0, 1)
    assert node.accounting.stale_info(3) == 'orphan'
    node.add(4, 3, stale_info='orphan', mine=True)
    node.best = 4
    assert node.accounting.counts(4).orphan_announced == 1
    assert node.accounting.stale_info(4) is None


def test_doa_shares_are_announced_as_doa():
    node = Node()
    node.add(1, None)
    node.add(2, 1, mine=True, doa=True)  # DOA and not in the chain
    node.add(3, 1)
    node.best = 3
    counts = node.accounting.counts(3)
    assert (counts.orphans, counts.doas) == (0, 1)
    assert node.accounting.stale_info(3) == 'doa'
    node.add(4, 3, stale_info='doa', mine=True)
    assert node.accounting.stale_info(4) is None


def test_pruned_ancestors_still_count_as_in_chain():
    node = Node()
    node.add(1, None, mine=True)
    node.add(2, 1, stale_info='orphan', mine=True)
    node.add(3, 2)
    node.add(9, None, mine=True)  # a separate chain: not an ancestor of the best share
    node.best = 3
    before = node.accounting.counts(3)
    node.tracker.remove(1)
    node.tracker.remove(2)
    node.tracker.remove(9)
    after = node.accounting.counts(3)
    assert (before.mine, before.orphan_announced, before.orphans) == (2, 1, 1)
    assert after == before


# --- §9 warnings ---------------------------------------------------------------------------

def test_version_vote_warning():
    assert version_vote_warning({35: 60, 36: 40}, (17, 35)) is None
    assert version_vote_warning({35: 50, 36: 50}, (17, 35)) is None
    text = version_vote_warning({35: 33, 36: 67}, (17, 35))
    assert text.startswith('A MAJORITY OF SHARES CONTAIN A VOTE FOR AN UNSUPPORTED SHARE IMPLEMENTATION! '
                           '(v36 with 67% support)')
    assert version_vote_warning({}, (35,)) is None


def test_bitcoind_and_lost_contact_warnings():
    assert bitcoind_warning('') is None
    assert bitcoind_warning('This is a pre-release test build - use at your own risk') is None
    assert bitcoind_warning('This is a pre-release or beta test build - use at your own risk') is None  # BSV
    assert bitcoind_warning('disk full') == '(from bitcoind) disk full'
    assert lost_contact_warning(1000, 1060) is None
    assert lost_contact_warning(1000, 1090) == \
        "LOST CONTACT WITH BITCOIND for 1.5 minutes! Check that it isn't frozen or dead!"
    assert format_duration(7200) == '2.0 hours'
    assert format_duration(3600) == '60.0 minutes'
    assert format_duration(3 * 86400 + 1) == '3.0 days'
    assert format_duration(5) == '5.0 seconds'
    assert format_duration(2 * 365.25 * 86400) == '2.0 years'   # the time to a block on a small pool


def test_get_warnings_counts_votes_over_the_last_hour():
    net = SimpleNamespace(CHAIN_LENGTH=100, SHARE_PERIOD=600)   # 3600 // 600 = 6 shares
    tracker = Tracker()
    base = 7 << 200  # hashes unlikely to meet other tests in verify's vote cache
    parent = None
    for index in range(10):
        version = 99 if index >= 6 else 35  # the newest 4 of the 6 counted shares vote 99
        tracker.add(fake_share(base + index, parent, 10, index, desired_version=version))
        parent = base + index
    warnings = get_warnings(tracker, base + 9, net, {'warnings': 'x', 'version': 250000}, 0, 100)
    assert len(warnings) == 3
    assert '(v99 with 66% support)' in warnings[0]
    assert warnings[1] == '(from bitcoind) x'
    assert warnings[2].startswith('LOST CONTACT WITH BITCOIND for 1.7 minutes!')
    assert get_warnings(tracker, None, net, None, None, 100) == []
