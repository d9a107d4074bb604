"""The store's small tables: peer address store, bans and graph history.

Mixed into `p2pool.store.sharestore.ShareStore`; import ShareStore, not this module.
These replace the original's `addrs` and `graph_db` files (web.md §3) and make bans
(p2p.md §9) survive a restart.  Every method is one transaction and takes its
timestamps from the caller (no clock reads here).
"""
import json
from collections import namedtuple
from typing import Any

from .schema import StoreError

#: p2p.md §7: the address store keeps at most this many entries; new ones are ignored when full.
MAX_PEERS = 10000

PeerRecord = namedtuple('PeerRecord', 'host port services first_seen last_seen score')
PeerRecord.__doc__ = 'One address-store entry; score is free for the node (good-peer bookkeeping).'

BanRecord = namedtuple('BanRecord', 'host reason score until')
BanRecord.__doc__ = 'One ban: host is refused and not dialled while now < until; score counts offences.'

_U64 = 1 << 64
_I64_LIMIT = 1 << 63


def _services_to_db(services):
    # `services` is a u64 on the wire but SQLite integers are signed 64-bit:
    # store the two's-complement bit pattern and undo it on the way out.
    if not isinstance(services, int) or isinstance(services, bool) or not 0 <= services < _U64:
        raise StoreError('peer services must be an integer in [0, 2**64), got %r' % (services,))
    return services - _U64 if services >= _I64_LIMIT else services


def _services_from_db(value):
    return value + _U64 if value < 0 else value


def _check_host_port(host, port):
    if not isinstance(host, str) or not host:
        raise StoreError('peer host must be a non-empty string, got %r' % (host,))
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 0xffff:
        raise StoreError('peer port must be an integer in [0, 65535], got %r' % (port,))


def _check_time(name, value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        raise StoreError('%s must be a number, got %r' % (name, value))
    return float(value)


def _encode_json(value):
    try:
        return json.dumps(value, separators=(',', ':'), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise StoreError('history value is not JSON-serialisable: %s' % exc) from exc


class AuxiliaryTablesMixin:
    """Peers, bans and history; relies on ShareStore's _read(work, default) and _write(work)."""

    _read: Any
    _write: Any

    # -- peer address store (p2p.md §7) -------------------------------------------------

    def add_peer(self, host, port, services, seen_at) -> bool:
        """Record that (host, port) was heard of at `seen_at` (the original's got_addr).

        A known address gets the new services and last_seen = max(last_seen, seen_at);
        a new one is inserted as (services, seen_at, seen_at) unless the store already
        holds MAX_PEERS entries.  Returns False only when a new address was refused.
        """
        _check_host_port(host, port)
        db_services = _services_to_db(services)
        seen_at = _check_time('seen_at', seen_at)

        def work(conn) -> bool:
            updated = conn.execute(
                'UPDATE peers SET services = ?, last_seen = max(last_seen, ?) WHERE host = ? AND port = ?',
                (db_services, seen_at, host, port)).rowcount
            if updated:
                return True
            if conn.execute('SELECT count(*) FROM peers').fetchone()[0] >= MAX_PEERS:
                return False
            conn.execute('INSERT INTO peers (host, port, services, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)',
                         (host, port, db_services, seen_at, seen_at))
            return True
        return self._write(work)

    def update_peer(self, host, port, *, services=None, first_seen=None, last_seen=None, score=None) -> bool:
        """Overwrite the given fields of a known peer; returns False if it is not stored."""
        _check_host_port(host, port)
        changes = []
        if services is not None:
            changes.append(('services', _services_to_db(services)))
        for name, value in (('first_seen', first_seen), ('last_seen', last_seen), ('score', score)):
            if value is not None:
                changes.append((name, _check_time(name, value)))
        if not changes:
            return self.get_peer(host, port) is not None
        assignments = ', '.join('%s = ?' % name for name, _value in changes)
        parameters = [value for _name, value in changes] + [host, port]
        return self._write(lambda conn: conn.execute(
            'UPDATE peers SET %s WHERE host = ? AND port = ?' % assignments, parameters).rowcount > 0)

    def save_peers(self, records) -> int:
        """Replace the whole address store with `records` (PeerRecords or 6-tuples) in one transaction.

        For the node's periodic save of its in-memory address store (web.md §3, every 60 s).
        """
        rows = []
        for record in records:
            host, port, services, first_seen, last_seen, score = record
            _check_host_port(host, port)
            rows.append((host, port, _services_to_db(services), _check_time('first_seen', first_seen),
                         _check_time('last_seen', last_seen), _check_time('score', score)))
        del rows[MAX_PEERS:]

        def work(conn):
            conn.execute('DELETE FROM peers')
            conn.executemany('INSERT OR REPLACE INTO peers (host, port, services, first_seen, last_seen, score)'
                             ' VALUES (?, ?, ?, ?, ?, ?)', rows)
            return len(rows)
        return self._write(work)

    def get_peer(self, host, port) -> 'PeerRecord | None':
        """The PeerRecord for (host, port), or None."""
        row = self._read(lambda conn: conn.execute(
            'SELECT host, port, services, first_seen, last_seen, score FROM peers WHERE host = ? AND port = ?',
            (host, port)).fetchone(), None)
        return None if row is None else _peer_from_row(row)

    def get_peers(self) -> 'list[PeerRecord]':
        """Every stored peer as a list of PeerRecord, in no particular order."""
        rows = self._read(lambda conn: conn.execute(
            'SELECT host, port, services, first_seen, last_seen, score FROM peers').fetchall(), [])
        return [_peer_from_row(row) for row in rows]

    def forget_peer(self, host, port) -> bool:
        """Remove (host, port); returns whether it was stored."""
        return self._write(lambda conn: conn.execute(
            'DELETE FROM peers WHERE host = ? AND port = ?', (host, port)).rowcount > 0)

    # -- bans (p2p.md §9) ----------------------------------------------------------------

    def ban(self, host, reason, until, score=1) -> None:
        """Ban `host` until time `until` (replacing any earlier ban of that host).

        `score` is the offence counter the node uses for [jt] ban durations
        (bantime × score²); it is stored so it survives restarts.  Which hosts may
        be banned at all (never 127.0.0.1) is the node's policy, not the store's.
        """
        if not isinstance(host, str) or not host:
            raise StoreError('ban host must be a non-empty string, got %r' % (host,))
        if not isinstance(score, int) or isinstance(score, bool):
            raise StoreError('ban score must be an integer, got %r' % (score,))
        until = _check_time('until', until)
        self._write(lambda conn: conn.execute(
            'INSERT OR REPLACE INTO bans (host, reason, score, until) VALUES (?, ?, ?, ?)',
            (host, str(reason), score, until)))

    def get_ban(self, host) -> 'BanRecord | None':
        """The BanRecord for `host` whether or not it has expired (for its score), or None."""
        row = self._read(lambda conn: conn.execute(
            'SELECT host, reason, score, until FROM bans WHERE host = ?', (host,)).fetchone(), None)
        return None if row is None else BanRecord(*row)

    def get_active_bans(self, now) -> 'list[BanRecord]':
        """BanRecords whose `until` is after `now`."""
        now = _check_time('now', now)
        rows = self._read(lambda conn: conn.execute(
            'SELECT host, reason, score, until FROM bans WHERE until > ? ORDER BY host', (now,)).fetchall(), [])
        return [BanRecord(*row) for row in rows]

    def unban(self, host) -> bool:
        """Lift the ban of `host` (forgetting its score); returns whether it was stored."""
        return self._write(lambda conn: conn.execute('DELETE FROM bans WHERE host = ?', (host,)).rowcount > 0)

    def forget_expired_bans(self, now) -> int:
        """Delete bans that ended at or before `now`; returns how many."""
        now = _check_time('now', now)
        return self._write(lambda conn: conn.execute('DELETE FROM bans WHERE until <= ?', (now,)).rowcount)

    # -- graph history (web.md §2.4) -------------------------------------------------------

    def history_put(self, source, ts, value, view='') -> None:
        """Store one JSON-serialisable `value` for graph `source` (and optional `view`) at time `ts`."""
        self.history_put_many(source, [(ts, value)], view=view)

    def history_put_many(self, source, items, view='') -> None:
        """Store [(ts, value), ...] for one source/view in a single transaction."""
        if not isinstance(source, str) or not isinstance(view, str):
            raise StoreError('history source and view must be strings')
        rows = [(source, view, _check_time('ts', ts), _encode_json(value)) for ts, value in items]
        self._write(lambda conn: conn.executemany(
            'INSERT INTO history (source, view, ts, value) VALUES (?, ?, ?, ?)', rows))

    def history_get(self, source, since, view='', until=None) -> list[tuple[float, Any]]:
        """[(ts, value), ...] for source/view with since <= ts (< until if given), oldest first."""
        since = _check_time('since', since)
        query: tuple[str, tuple[Any, ...]]
        if until is None:
            query = ('SELECT ts, value FROM history WHERE source = ? AND view = ? AND ts >= ? ORDER BY ts, id',
                     (source, view, since))
        else:
            query = ('SELECT ts, value FROM history WHERE source = ? AND view = ? AND ts >= ? AND ts < ?'
                     ' ORDER BY ts, id', (source, view, since, _check_time('until', until)))
        rows = self._read(lambda conn: conn.execute(*query).fetchall(), [])
        return [(ts, json.loads(value)) for ts, value in rows]

    def history_latest(self, source, view='') -> tuple[float, Any] | None:
        """The newest (ts, value) of source/view, or None (e.g. a saved per-view bin state)."""
        row = self._read(lambda conn: conn.execute(
            'SELECT ts, value FROM history WHERE source = ? AND view = ? ORDER BY ts DESC, id DESC LIMIT 1',
            (source, view)).fetchone(), None)
        return None if row is None else (row[0], json.loads(row[1]))

    def history_prune(self, before, source=None) -> int:
        """Delete history older than `before` (of one source, or all); returns how many rows."""
        before = _check_time('before', before)
        if source is None:
            return self._write(lambda conn: conn.execute('DELETE FROM history WHERE ts < ?', (before,)).rowcount)
        return self._write(lambda conn: conn.execute(
            'DELETE FROM history WHERE source = ? AND ts < ?', (source, before)).rowcount)


def _peer_from_row(row):
    host, port, services, first_seen, last_seen, score = row
    return PeerRecord(host, port, _services_from_db(services), first_seen, last_seen, score)
