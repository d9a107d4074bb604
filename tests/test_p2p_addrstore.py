"""The address store (p2p.md §7) and the ban list (§9) of the P2P node, alone."""
import heapq
import math
import random

from p2pool.p2p.addrstore import AddressStore, BanList, host_group, normal_host
from p2pool.p2p.protocol import MALFORMED
from p2pool.store.sharestore import ShareStore

HOUR = 3600.0


# --- address store (§7) ------------------------------------------------------------------

def test_address_store_follows_the_spec_update_rules():
    store = AddressStore()
    assert store.got_addr(('1.2.3.4', 9333), 1, 100)
    assert store.got_addr(('::ffff:1.2.3.4', 9333), 5, 50)   # same address, older sighting
    assert store.get(('1.2.3.4', 9333)) == ('1.2.3.4', 9333, 5, 100, 100)
    store.got_addr(('1.2.3.4', 9333), 6, 200)
    assert store.get(('1.2.3.4', 9333))[2:] == (6, 100, 200)
    assert not store.add_new(('1.2.3.4', 9333), 300)          # seeding keeps what is known
    for undialable in [('0.0.0.0', 9333), ('1.2.3.4', 0), ('224.0.0.1', 9333), ('not-an-ip', 1)]:
        assert not store.got_addr(undialable, 0, 1)
    small = AddressStore(max_entries=1)
    assert small.got_addr(('1.1.1.1', 1), 0, 1) and not small.got_addr(('2.2.2.2', 1), 0, 1)
    assert small.forget(('1.1.1.1', 1)) and len(small) == 0


def test_good_peers_favour_long_lived_recently_seen_addresses():
    store, now = AddressStore(), 100 * 86400.0
    store.got_addr(('1.1.1.1', 1), 0, now - 30 * 86400)      # known for a month, seen now
    store.got_addr(('1.1.1.1', 1), 0, now)
    store.got_addr(('2.2.2.2', 1), 0, now - 30 * 86400)      # seen once a month ago
    rng = random.Random(1)
    picks = [store.get_good_peers(1, now, rng)[0].host for _ in range(200)]
    assert picks.count('1.1.1.1') > 150
    assert len(store.get_good_peers(5, now, rng)) == 2 and store.get_good_peers(0, now, rng) == []


def _reference_good_peers(store, count, now, rng):
    """§7's selection written plainly: one key per entry, in store order, through heapq."""
    def key(entry):
        lifetime = math.log(max(3600.0, entry.last_seen - entry.first_seen))
        silence = math.log(max(3600.0, now - entry.last_seen))
        return lifetime / silence * math.log(1.0 - rng.random())     # -lifetime/silence × Exp(1)
    return heapq.nsmallest(count, store.entries(), key=key) if count > 0 else []


def test_good_peers_make_the_reference_selection_with_the_same_draws():
    setup, now = random.Random(7), 50 * 86400.0
    store = AddressStore()
    for index in range(300):
        first = now - setup.choice([0, 10, 3599, 3600, 3601, 86400, 9e5])
        store.got_addr(('10.0.%d.%d' % (index // 200, index % 200), 9333), 0, first)
        store.got_addr(('10.0.%d.%d' % (index // 200, index % 200), 9333), 0,
                       first + setup.choice([0, 1, 3600, 5000, now - first]))
    for count in (1, 1, 3, 8, 299, 300, 1000):
        ours, theirs = random.Random(count), random.Random(count)
        assert store.get_good_peers(count, now, ours) == _reference_good_peers(store, count, now, theirs)
        assert ours.getstate() == theirs.getstate()


class _Draws(random.Random):
    """random() answers from a list (ties and zero draws, which a real rng hardly makes)."""

    def __init__(self, values):
        super().__init__(0)
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


def test_the_best_good_peer_is_the_reference_one_for_any_draws():
    setup, now = random.Random(11), 50 * 86400.0
    for size in (1, 2, 5, 40, 200):
        store = AddressStore()
        for index in range(size):
            first = now - setup.choice([0, 3600, 7200, 86400, 9e5])
            last = first + setup.choice([0, 1, 3600, 5000, now - first])
            store.got_addr(('10.1.%d.%d' % (index // 200, index % 200), 9333), 0, first)
            store.got_addr(('10.1.%d.%d' % (index // 200, index % 200), 9333), 0, last)
        for seed in range(30):
            ours, theirs = random.Random(seed), random.Random(seed)
            assert store.get_good_peers(1, now, ours) == _reference_good_peers(store, 1, now, theirs)
            assert ours.getstate() == theirs.getstate()
        for draws in ([0.0] * size, [0.5] * size, [0.999] * size, [1.0 - 2**-53] * size,
                      [setup.choice([0.0, 0.25, 0.999]) for _ in range(size)]):
            assert store.get_good_peers(1, now, _Draws(draws)) == _reference_good_peers(
                store, 1, now, _Draws(draws))


def test_address_store_persists_in_the_database():
    db = ShareStore(':memory:')
    store = AddressStore(db)
    store.got_addr(('1.2.3.4', 9333), 2**63 + 1, 100)
    store.got_addr(('2001:db8::1', 9333), 0, 200)
    store.save()
    again = AddressStore(db)
    assert again.load() == 2
    assert again.get(('1.2.3.4', 9333)) == ('1.2.3.4', 9333, 2**63 + 1, 100, 100)
    assert ('2001:db8::1', 9333) in again


def test_hosts_are_normalised_and_grouped():
    assert normal_host('::ffff:10.1.2.3') == '10.1.2.3'
    assert normal_host('2001:0db8:0000:0000:0000:0000:0000:0001') == '2001:db8::1'
    assert normal_host('fe80::1%eth0') == 'fe80::1' and normal_host('example.org') == 'example.org'
    assert host_group('10.1.2.3') == host_group('::ffff:10.1.200.9') != host_group('10.2.2.3')
    assert host_group('2001:db8:1::1') == host_group('2001:db8:ffff::2') != host_group('2001:db9::1')


# --- bans (§9) -----------------------------------------------------------------------------

def test_ban_time_grows_with_the_score_and_the_score_decays():
    bans = BanList(ban_time=HOUR)
    first = bans.punish('10.0.0.9', 'invalid_share', 'bad', now=0)
    assert (first.score, first.until, first.reason) == (1, HOUR, 'invalid_share: bad')
    assert bans.is_banned('10.0.0.9', HOUR - 1) and not bans.is_banned('10.0.0.9', HOUR)
    assert bans.punish('10.0.0.9', 'flooding', 'again', now=10) is first   # still banned: one incident
    second = bans.punish('10.0.0.9', 'flooding', 'again', now=HOUR)
    assert (second.score, second.until) == (2, HOUR + 4 * HOUR)
    third = bans.punish('10.0.0.9', 'flooding', 'later', now=second.until + 10 * HOUR)  # decayed
    assert (third.score, third.until - (second.until + 10 * HOUR)) == (1, HOUR)
    capped = BanList(ban_time=HOUR, max_ban_time=2 * HOUR)
    for now in (0, HOUR, 3 * HOUR):
        ban = capped.punish('10.0.0.1', 'bad_pow', 'x', now=now)
    assert ban.score == 3 and ban.until == 5 * HOUR
    short = bans.punish('10.0.0.8', 'download_failure', 'timeout', now=0, ban_time=30)
    assert short.until == 30


def test_exempt_hosts_and_tolerated_offences():
    bans = BanList(exempt=['127.0.0.1', '::1'], malformed_tolerance=3)
    assert bans.punish('::ffff:127.0.0.1', 'protocol_violation', 'x', now=0) is None
    assert bans.punish('::1', 'protocol_violation', 'x', now=0) is None
    assert bans.punish('10.0.0.1', MALFORMED, 'x', now=0, tolerated=True) is None
    assert bans.punish('10.0.0.1', MALFORMED, 'x', now=0, tolerated=True) is None
    assert bans.punish('10.0.0.1', MALFORMED, 'x', now=0, tolerated=True).score == 1
    assert BanList().punish('127.0.0.1', 'protocol_violation', 'x', now=0) is not None  # default: no exemption


def test_bans_and_scores_survive_a_restart():
    db = ShareStore(':memory:')
    BanList(db).punish('10.0.0.5', 'bad_checksum', 'frame', now=0)
    restarted = BanList(db)
    [ban] = restarted.load(now=10)
    assert ban.host == '10.0.0.5' and ban.reason == 'bad_checksum: frame' and restarted.is_banned('10.0.0.5', 10)
    assert restarted.punish('10.0.0.5', 'flooding', 'x', now=HOUR).score == 2   # the score was kept
    restarted.unban('10.0.0.5')
    assert not BanList(db).load(now=HOUR + 1)
