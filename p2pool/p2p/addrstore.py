"""Host bookkeeping of the peer network: the address store (p2p.md §7) and bans (§9).

Both are keyed by host, both outlive the process through the node's SQLite store
(p2pool.store.sharestore.ShareStore), and neither reads a clock: every method that
needs the time takes `now`.

AddressStore is the in-memory address book the node gossips and dials from; it is
loaded from the store at start and written back with save() (every 60 s and at
shutdown), so a crash loses at most a minute of gossip.

BanList turns misbehaviour reports into bans. Better than the original's flat
one-hour ban, every host has a score that grows by one per punished offence and
decays by one per hour of good behaviour after its ban ends; a ban lasts
`ban_time × score²`, capped at `max_ban_time`. `tolerated` offences are punished
only at every `malformed_tolerance`-th one (the P2P node itself never bans for a
payload that merely fails to decode, spec §1). Hosts in `exempt`
are never banned (the running node exempts the loopback, spec §9). Bans and their
scores are stored with their reason, so they survive a restart.

Hosts are compared in normal form (`normal_host`): IPv4-mapped IPv6 addresses as
dotted quads, IPv6 compressed and without a zone.
"""
import functools
import ipaddress
import itertools
import logging
import math
from collections import namedtuple
from typing import Any

log = logging.getLogger(__name__)

#: p2p.md §7: at most this many addresses are kept; new ones are ignored when full
MAX_ADDRESSES = 10000
#: hosts the running node never bans (p2p.md §9 names 127.0.0.1; ::1 is the same machine)
LOOPBACK_HOSTS = frozenset({'127.0.0.1', '::1'})

#: one address-store entry
AddressEntry = namedtuple('AddressEntry', 'host port services first_seen last_seen')
#: an active or remembered ban (same fields as the store's BanRecord)
Ban = namedtuple('Ban', 'host reason score until')

_SECONDS_PER_SCORE_DECAY = 3600.0
#: distinct hosts whose parsed forms are remembered: these functions run for every gossiped
#: record and every connection, and parsing an address costs ~10 us each time
_HOST_CACHE_SIZE = 8192


@functools.lru_cache(maxsize=_HOST_CACHE_SIZE, typed=True)
def normal_host(host) -> str:
    """The canonical text of an IP address; anything else (a host name) is returned as given."""
    text = str(host).split('%', 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return str(host)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


@functools.lru_cache(maxsize=_HOST_CACHE_SIZE, typed=True)
def is_ip_address(host) -> bool:
    """Whether `host` is the text of an IP address (every handshake asks it of both ends)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=_HOST_CACHE_SIZE, typed=True)
def host_group(host) -> tuple[Any, Any]:
    """The network group for the per-group connection limit (p2p.md §8).

    IPv4: the /16 (first two octets), as the spec says. IPv6: the /32, the size of
    a typical provider allocation (the original's dot-splitting is a bug for IPv6).
    A host name is its own group.
    """
    try:
        address = ipaddress.ip_address(normal_host(host))
    except ValueError:
        return ('name', host)
    if address.version == 4:
        return (4, address.packed[:2])
    return (6, address.packed[:4])


@functools.lru_cache(maxsize=_HOST_CACHE_SIZE, typed=True)
def is_dialable(host, port) -> bool:
    """Whether an address heard in gossip is worth storing (a real IP and port)."""
    if not isinstance(port, int) or not 0 < port < 65536:
        return False
    try:
        address = ipaddress.ip_address(normal_host(host))
    except ValueError:
        return False
    return not (address.is_unspecified or address.is_multicast)


_LOG_HOUR = math.log(3600.0)


def _hour_weight(first_seen, last_seen) -> float:
    """ln(max(3600, last - first)) / ln(3600): get_good_peers' lifetime/silence factor of an
    address seen within the last hour (1.0, a shared float, for one known an hour or less)."""
    lifetime = last_seen - first_seen
    return 1.0 if lifetime <= 3600.0 else math.log(lifetime) / _LOG_HOUR


class AddressStore:
    """`(host, port) -> (services, first_seen, last_seen)` with the spec's update rules."""

    def __init__(self, store=None, max_entries=MAX_ADDRESSES) -> None:
        self.store = store
        if store is not None:
            store.on_reset.append(self.save)     # a damaged database was replaced: write ours back
        self.max_entries = max_entries
        # (host, port) -> [services, first_seen, last_seen, _hour_weight(first_seen, last_seen)]
        self._entries: dict[Any, Any] = {}
        # at least every entry's hour weight (they only grow; a forgotten entry's may stay): the
        # bound _best_entry's pruning needs
        self._weight_bound = 1.0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, addr) -> bool:
        return addr in self._entries

    def get(self, addr) -> 'AddressEntry | None':
        entry = self._entries.get(addr)
        return None if entry is None else AddressEntry(addr[0], addr[1], *entry[:3])

    def entries(self) -> 'list[AddressEntry]':
        return [AddressEntry(host, port, *entry[:3]) for (host, port), entry in self._entries.items()]

    def got_addr(self, addr, services, seen_at) -> bool:
        """Record that `addr` was heard of at `seen_at`; returns False if it was refused.

        A known address takes the new services and last_seen = max(last_seen, seen_at);
        a new one is added as (services, seen_at, seen_at) unless the store is full.
        """
        # Gossip repeats the addresses the store holds, in their normal form: a key found as given
        # is normal (normal_host of a normal host is itself) and dialable (only those are stored),
        # so the checks below could only say yes. An int port, as a float one is never dialable.
        entry = self._entries.get(addr) if type(addr[1]) is int else None
        if entry is None:
            host, port = normal_host(addr[0]), addr[1]
            if not is_dialable(host, port):
                return False
            entry = self._entries.get((host, port))
            if entry is None:
                if len(self._entries) >= self.max_entries:
                    return False
                self._entries[(host, port)] = [services, seen_at, seen_at, 1.0]
                return True
        entry[0] = services
        if seen_at > entry[2]:
            entry[2] = seen_at
            weight = entry[3] = _hour_weight(entry[1], seen_at)
            if weight > self._weight_bound:
                self._weight_bound = weight
        return True

    def add_new(self, addr, now) -> bool:
        """Seed an address (bootstrap, -n) as (0, now, now) unless it is already known."""
        if (normal_host(addr[0]), addr[1]) in self._entries:
            return False
        return self.got_addr(addr, 0, now)

    def forget(self, addr) -> bool:
        return self._entries.pop((normal_host(addr[0]), addr[1]), None) is not None

    def get_good_peers(self, count, now, rng) -> 'list[AddressEntry]':
        """Up to `count` entries, favouring long-lived, recently seen addresses, randomised.

        Sort key (§7): -ln(max(3600, last - first)) / ln(max(3600, now - last)) × E,
        with a fresh E ~ Exp(1) per entry, drawn in store order; smallest first, ties in
        store order.
        """
        entries = self._entries
        if count <= 0 or not entries:
            return []
        if count == 1:
            return [self._best_entry(now, rng)]
        log_, random_ = math.log, rng.random
        # getaddrs answers: one comprehension over the cached weights (the key's first factor for
        # an address seen within the hour) costs a third of a key function per entry
        keys = [(weight if now - last_seen <= 3600.0
                 else log_(max(3600.0, last_seen - first_seen)) / log_(now - last_seen)) * log_(1.0 - random_())
                for _services, first_seen, last_seen, weight in entries.values()]
        items = list(entries.items())
        best = [items[index] for index in sorted(range(len(keys)), key=keys.__getitem__)[:count]]
        return [AddressEntry(host, port, *entry[:3]) for (host, port), entry in best]

    def _best_entry(self, now, rng) -> AddressEntry:
        """get_good_peers(1, now, rng)[0]: the same draws and the same entry, with few logarithms.

        The dialler asks this every second. An entry's key is f × ln(1 - u) with its draw u,
        ln(1 - u) <= 0 and 0 < f <= _weight_bound = W (f is the hour weight, or less for an entry
        silent for over an hour), so the key is at least W × ln(1 - u). The entry with the largest
        draw has some key B; an entry whose W × ln(1 - u) exceeds B, i.e. whose 1 - u exceeds
        exp(B / W), cannot be the smallest. Only the others (a few of a hundred) get their exact key;
        the margins keep every entry that float rounding could make the smallest.
        """
        entries, log_ = self._entries, math.log
        random_ = rng.random
        draws = [random_() for _ in range(len(entries))]     # one per entry, in store order
        values = list(entries.values())

        def key(index):
            _services, first_seen, last_seen, weight = values[index]
            factor = (weight if now - last_seen <= 3600.0
                      else log_(max(3600.0, last_seen - first_seen)) / log_(now - last_seen))
            return factor * log_(1.0 - draws[index])

        top = draws.index(max(draws))
        cutoff = 1.0 - math.exp(key(top) / self._weight_bound) * (1.0 + 1e-9) - 1e-12
        candidates = [index for index, draw in enumerate(draws) if draw >= cutoff or index == top]
        best = min(candidates, key=key)        # the first of equal keys: ties in store order
        (host, port), entry = next(itertools.islice(entries.items(), best, None))
        return AddressEntry(host, port, *entry[:3])

    # --- persistence ----------------------------------------------------------------

    def load(self) -> int:
        """Merge the stored addresses into memory; returns how many were read."""
        if self.store is None:
            return 0
        records = self.store.get_peers()
        for record in records:
            addr = (normal_host(record.host), record.port)
            if (addr not in self._entries and len(self._entries) < self.max_entries
                    and is_dialable(*addr)):
                weight = _hour_weight(record.first_seen, record.last_seen)
                self._entries[addr] = [record.services, record.first_seen, record.last_seen, weight]
                self._weight_bound = max(self._weight_bound, weight)
        return len(records)

    def save(self) -> None:
        """Replace the stored address table by the in-memory one; errors are logged."""
        if self.store is None:
            return
        try:
            self.store.save_peers([(host, port, services, first_seen, last_seen, 0)
                                   for (host, port), (services, first_seen, last_seen, _weight)
                                   in self._entries.items()])
        except Exception as e:  # a full disk must not stop the node; the next save retries
            log.error('Could not save the peer address store: %s', e)


class BanList:
    """Misbehaviour scores and bans per host (see the module docstring)."""

    def __init__(self, store=None, exempt=(), ban_time=3600.0, max_ban_time=30 * 86400.0,
                 malformed_tolerance=3) -> None:
        self.store = store
        if store is not None:
            store.on_reset.append(self.save)     # a damaged database was replaced: write ours back
        self.exempt = frozenset(normal_host(host) for host in exempt)
        self.ban_time = ban_time
        self.max_ban_time = max_ban_time
        self.malformed_tolerance = malformed_tolerance
        self._bans: dict[Any, Any] = {}       # host -> Ban (active or expired; expired ones keep the score)
        self._strikes: dict[Any, Any] = {}    # host -> MALFORMED reports not yet punished

    def load(self, now) -> 'list[Ban]':
        """Read the active bans from the store; returns them."""
        if self.store is None:
            return []
        bans = [Ban(*record) for record in self.store.get_active_bans(now)]
        for ban in bans:
            self._bans[normal_host(ban.host)] = ban
        return bans

    def save(self) -> None:
        """Write every ban held in memory (active or keeping a score) to the store."""
        for ban in list(self._bans.values()):
            try:
                self.store.ban(ban.host, ban.reason, ban.until, score=ban.score)
            except Exception as e:
                log.error('Could not store the ban of %s: %s', ban.host, e)

    def is_banned(self, host, now) -> 'Ban | None':
        """The active Ban of `host`, or None."""
        ban = self._bans.get(normal_host(host))
        return ban if ban is not None and ban.until > now else None

    def active(self, now) -> 'list[Ban]':
        return sorted((ban for ban in self._bans.values() if ban.until > now), key=lambda ban: ban.host)

    def _previous(self, host):
        ban = self._bans.get(host)
        if ban is None and self.store is not None:
            try:
                record = self.store.get_ban(host)
            except Exception as e:
                log.error('Could not read the ban record of %s: %s', host, e)
                record = None
            ban = None if record is None else Ban(*record)
        return ban

    def punish(self, host, kind, reason, now, ban_time=None, tolerated=False) -> 'Ban | None':
        """Score an offence of `host`; returns the Ban it now has, or None if none was imposed.

        `tolerated` offences (MALFORMED) only count at every malformed_tolerance-th
        report. A host that is already banned keeps its ban (one incident reported by
        several connections counts once). `ban_time` overrides the base duration
        (the spec's 30 s for failed share downloads).
        """
        host = normal_host(host)
        if host in self.exempt:
            log.info('Not banning %s (exempt) for %s: %s', host, kind, reason)
            return None
        active = self.is_banned(host, now)
        if active is not None:
            return active
        if tolerated:
            strikes = self._strikes.get(host, 0) + 1
            if strikes < self.malformed_tolerance:
                self._strikes[host] = strikes
                return None
        self._strikes.pop(host, None)
        previous = self._previous(host)
        score = 1
        if previous is not None:
            decay = int(max(0.0, now - previous.until) // _SECONDS_PER_SCORE_DECAY)
            score = max(0, previous.score - decay) + 1
        duration = min((self.ban_time if ban_time is None else ban_time) * score ** 2, self.max_ban_time)
        ban = Ban(host, '%s: %s' % (kind, reason), score, now + duration)
        self._bans[host] = ban
        if self.store is not None:
            try:
                self.store.ban(host, ban.reason, ban.until, score=score)
            except Exception as e:  # the ban still holds in memory
                log.error('Could not store the ban of %s: %s', host, e)
        log.warning('Banned %s for %d s (score %d): %s', host, duration, score, ban.reason)
        return ban

    def ban_for(self, host, seconds, reason, now) -> 'Ban':
        """The operator's ban (`p2pool ctl ban`): `seconds` from now, exempt hosts included, the
        score kept; returns the Ban."""
        host = normal_host(host)
        previous = self._previous(host)
        ban = Ban(host, reason, previous.score if previous is not None else 0, now + seconds)
        self._bans[host] = ban
        if self.store is not None:
            try:
                self.store.ban(host, ban.reason, ban.until, score=ban.score)
            except Exception as e:  # the ban still holds in memory
                log.error('Could not store the ban of %s: %s', host, e)
        log.warning('Banned %s for %d s by the operator: %s', host, seconds, reason)
        return ban

    def score_of(self, host) -> int:
        """The misbehaviour score remembered for `host` (0 if none)."""
        ban = self._bans.get(normal_host(host))
        return ban.score if ban is not None else 0

    def unban(self, host) -> None:
        host = normal_host(host)
        self._bans.pop(host, None)
        self._strikes.pop(host, None)
        if self.store is not None:
            self.store.unban(host)

    def forget_old(self, now, keep_seconds=7 * 86400.0) -> None:
        """Drop bans that ended long enough ago for their score to be irrelevant."""
        cutoff = now - keep_seconds
        for host in [host for host, ban in self._bans.items() if ban.until <= cutoff]:
            del self._bans[host]
        if self.store is not None:
            try:
                self.store.forget_expired_bans(cutoff)
            except Exception as e:
                log.error('Could not clean up old bans: %s', e)
