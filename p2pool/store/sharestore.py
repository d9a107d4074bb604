"""Crash-safe SQLite persistence of the node: shares, verified marks, peers, bans, graph history.

One database per network, `<datadir>/<network name>/p2pool.sqlite3` (the caller
passes the path).  It replaces the original's `shares.N`, `addrs` and `graph_db`
files (web.md §3); `p2pool.store.import_shares` reads the old share files once.

Shares are stored as their wire wrapper (shares.md §2: VarInt type || VarStr
contents) keyed by the 32-byte share hash, with a separate table of hashes whose
share passed full verification, so loading can restore the verified subset without
re-running `check`.  Pruned shares are forgotten on disk too (sharechain.md §6).

Writes go through a Batch: every batch is one SQLite transaction, so after a crash
the database holds exactly the batches committed before it (WAL journal,
synchronous=NORMAL).  The node normally queues tracker changes into `store.pending`
and calls `flush()` every few seconds; `add_shares` / `mark_verified` /
`forget_shares` are the same thing for callers that want to commit at once.

Damage never stops the node: a record that no longer parses is skipped (and
forgotten) with a warning, and a damaged database file is moved aside and replaced
by a fresh one holding the rows that could still be read (see schema.py); when that
happens while running, every holder of state in memory (the chain, peers and bans,
graph history: `on_reset`) writes what it holds into the fresh one at once.  This module reads no clock: timestamps are
arguments.  It is not share-format aware: `load_shares` takes the parser.

Thread use: every method takes the store's lock, so a worker thread may run
`apply(store.take_pending())` while the reactor thread keeps working; a Batch
itself is not thread-safe.
"""
from collections.abc import Iterator
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .schema import (MEMORY_PATH, SCHEMA_VERSION, StoreError, StoreSchemaError, rollback_quietly,
                     is_corruption, open_database, replace_damaged)
from .payouts import PayoutTableMixin
from .sessions import StratumSessionTableMixin
from .tables import MAX_PEERS, AuxiliaryTablesMixin, BanRecord, PeerRecord

__all__ = ['ShareStore', 'Batch', 'LoadReport', 'StoreError', 'StoreSchemaError', 'PeerRecord', 'BanRecord',
           'MAX_PEERS', 'SCHEMA_VERSION', 'DATABASE_FILENAME', 'hash_to_key', 'key_to_hash']

log = logging.getLogger(__name__)

DATABASE_FILENAME = 'p2pool.sqlite3'

_HASH_LIMIT = 1 << 256
#: after this many per-record warnings in one load, only the final summary is logged
_MAX_RECORD_WARNINGS = 10


def hash_to_key(share_hash) -> bytes:
    """The database key of a share hash (int): 32 bytes, big-endian (display order)."""
    if not isinstance(share_hash, int) or isinstance(share_hash, bool) or not 0 <= share_hash < _HASH_LIMIT:
        raise StoreError('a share hash must be an integer in [0, 2**256), got %r' % (share_hash,))
    return share_hash.to_bytes(32, 'big')


def key_to_hash(key) -> int:
    """Inverse of hash_to_key."""
    return int.from_bytes(key, 'big')


class Batch:
    """Share writes waiting to be committed together in one transaction.

    Only the final state per hash is kept, so queueing is O(1) and a share added
    and forgotten before the commit costs nothing on disk.  Forgetting a share also
    forgets its verified mark; adding one again later does not restore the mark.
    """

    def __init__(self) -> None:
        self._shares: dict[Any, Any] = {}    # key -> (version, wire, added_at, pow) to store, or None to delete
        self._verified: dict[Any, Any] = {}  # key -> True to mark verified, False to remove the mark

    def add_share(self, share, added_at=0.0) -> None:
        """Queue `share` (needs .hash, .VERSION, .to_wire()); `added_at` is the caller's clock."""
        key = hash_to_key(share.hash)
        wire = share.to_wire()
        version = share.VERSION
        if not isinstance(wire, (bytes, bytearray)):
            raise StoreError('share.to_wire() must return bytes, got %s' % type(wire).__name__)
        if not isinstance(version, int) or isinstance(version, bool):
            raise StoreError('share.VERSION must be an integer, got %r' % (version,))
        if not isinstance(added_at, (int, float)) or isinstance(added_at, bool):
            raise StoreError('added_at must be a number, got %r' % (added_at,))
        pow_hash = getattr(share, 'pow_hash', None)
        pow_bytes = pow_hash.to_bytes(32, 'big') if isinstance(pow_hash, int) and 0 <= pow_hash < 2**256 else None
        self._shares[key] = (version, bytes(wire), float(added_at), pow_bytes)

    def add_shares(self, shares, added_at=0.0) -> None:
        for share in shares:
            self.add_share(share, added_at)

    def mark_verified(self, hashes) -> None:
        """Queue verified marks for share hashes (ints)."""
        for share_hash in hashes:
            self._verified[hash_to_key(share_hash)] = True

    def forget_shares(self, hashes) -> None:
        """Queue deletion of shares (and their verified marks) by hash."""
        for share_hash in hashes:
            key = hash_to_key(share_hash)
            self._shares[key] = None
            self._verified[key] = False

    def merge(self, later) -> None:
        """Fold in `later`, a batch whose changes happened after ours."""
        self._shares.update(later._shares)
        self._verified.update(later._verified)

    def clear(self) -> None:
        self._shares.clear()
        self._verified.clear()

    def __len__(self) -> int:
        """Number of pending entries (share writes plus mark changes)."""
        return len(self._shares) + len(self._verified)

    def _rows(self):
        deletes = [(key,) for key, record in self._shares.items() if record is None]
        inserts = [(key,) + record for key, record in self._shares.items() if record is not None]
        marks = [(key,) for key, marked in self._verified.items() if marked]
        unmarks = [(key,) for key, marked in self._verified.items() if not marked]
        return deletes, inserts, marks, unmarks


@dataclass
class LoadReport:
    """What `load_shares` found (complete once its iterator is exhausted)."""
    records: int = 0            # share rows read from the database
    loaded: int = 0             # shares yielded
    verified: int = 0           # of those, marked verified
    unparsable: int = 0         # rows whose parse_fn raised (torn or corrupt records, obsolete formats)
    mismatched: int = 0         # rows that parsed to a share with a different hash than their key
    forgotten: int = 0          # skipped rows deleted from the database afterwards
    database_corrupt: bool = False  # the file was found damaged (at open or now) and replaced by an empty one

    @property
    def skipped(self) -> int:
        return self.unparsable + self.mismatched


class ShareStore(AuxiliaryTablesMixin, StratumSessionTableMixin, PayoutTableMixin):
    """The node's database.  `ShareStore(path)` opens or creates it (see module docstring).

    Raises StoreSchemaError if the file has a newer schema, StoreError if it cannot
    be opened at all; a corrupt file is moved aside (`moved_aside` lists where to).
    """

    def __init__(self, path) -> None:
        self.path = path if str(path) == MEMORY_PATH else Path(path)
        self._lock = threading.RLock()
        self.moved_aside = []
        #: callables run (with no arguments) after a damaged database was replaced by an
        #: empty one while running: each holder of state (the chain, the address store and
        #: bans, the graph history) writes what it holds into the fresh database at once
        self.on_reset: list[Any] = []
        self._resetting = False
        self.pending = Batch()
        self.last_load_report: LoadReport | None = None
        self._conn: sqlite3.Connection | None
        self._conn, moved_to = open_database(self.path)
        if moved_to is not None:
            self.moved_aside.append(moved_to)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        """Flush pending writes and close; idempotent.  Flush failures still close, then raise."""
        with self._lock:
            if self._conn is None:
                return
            try:
                self.flush()
            finally:
                try:
                    self._conn.execute('PRAGMA optimize')
                except sqlite3.Error:
                    pass  # only a query-planner hint; closing matters more
                self._conn.close()
                self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- share writes -----------------------------------------------------------------------

    def add_shares(self, shares, added_at=0.0) -> int:
        """Store shares now (together with anything pending) in one transaction."""
        self.pending.add_shares(shares, added_at)
        return self.flush()

    def mark_verified(self, hashes) -> int:
        """Mark share hashes verified now (together with anything pending) in one transaction."""
        self.pending.mark_verified(hashes)
        return self.flush()

    def forget_shares(self, hashes) -> int:
        """Delete shares and their marks now (together with anything pending) in one transaction."""
        self.pending.forget_shares(hashes)
        return self.flush()

    def take_pending(self) -> Batch:
        """Detach and return the pending Batch (for `apply` in another thread)."""
        with self._lock:
            batch, self.pending = self.pending, Batch()
            return batch

    def flush(self) -> int:
        """Commit `pending` in one transaction; returns the number of entries written.

        On failure the entries stay pending (a later flush retries) and StoreError is raised.
        """
        with self._lock:
            batch = self.take_pending()
            try:
                return self.apply(batch)
            except BaseException:
                batch.merge(self.pending)
                self.pending = batch
                raise

    def apply(self, batch) -> int:
        """Commit `batch` in one transaction; returns its number of entries."""
        if not batch:
            return 0
        deletes, inserts, marks, unmarks = batch._rows()

        def work(conn) -> None:
            if deletes:
                conn.executemany('DELETE FROM shares WHERE hash = ?', deletes)
            if inserts:
                # A hash names one immutable share, so an existing row is already right.
                conn.executemany('INSERT OR IGNORE INTO shares (hash, version, wire, added_at, pow)'
                                 ' VALUES (?, ?, ?, ?, ?)', inserts)
            if unmarks:
                conn.executemany('DELETE FROM verified WHERE hash = ?', unmarks)
            if marks:
                conn.executemany('INSERT OR IGNORE INTO verified (hash) VALUES (?)', marks)
        self._write(work)
        return len(batch)

    # -- share reads ------------------------------------------------------------------------

    def load_shares(self, net, parse_fn, forget_unparsable=True, with_pow=False) -> Iterator[tuple[Any, bool]]:
        """Iterate (share, verified) over every stored share, in the order they were stored.

        `parse_fn(wire_bytes)` builds the share (e.g. `lambda b: Share.from_wire(net, b)`).
        Records it cannot parse, or that parse to a share of another hash, are skipped
        with a warning and counted in `self.last_load_report`; once the iterator is
        exhausted they are deleted, unless `forget_unparsable` is false or they are the
        majority of records (then the parser, not the data, is the likely culprit).
        `net` (anything with a NAME, or None) guards against opening another network's
        database: StoreError if the database was first loaded for a different network.
        `with_pow`: call `parse_fn(wire_bytes, pow_hash)` with the proof-of-work hash stored with
        the share (an int, or None for rows written without one).
        The database is read eagerly here; only parsing happens while iterating.
        """
        report = self.last_load_report = LoadReport()
        self.flush()
        self._check_network(net)
        rows = self._read(lambda conn: conn.execute(
            'SELECT s.hash, s.wire, v.hash IS NOT NULL, s.pow FROM shares AS s'
            ' LEFT JOIN verified AS v ON v.hash = s.hash ORDER BY s.rowid').fetchall(), [])
        report.database_corrupt = bool(self.moved_aside)
        report.records = len(rows)
        return self._parse_rows(rows, parse_fn, report, forget_unparsable, with_pow)

    def _parse_rows(self, rows, parse_fn, report, forget_unparsable, with_pow=False):
        bad_hashes = []
        for key, wire, verified, pow_bytes in rows:
            share_hash = key_to_hash(key)
            try:
                if with_pow:
                    stored_pow = int.from_bytes(pow_bytes, 'big') if isinstance(pow_bytes, bytes) and len(
                        pow_bytes) == 32 else None
                    share = parse_fn(wire, stored_pow)
                else:
                    share = parse_fn(wire)
            except Exception as exc:  # noqa: BLE001 - a bad record must never stop start-up
                report.unparsable += 1
                bad_hashes.append(share_hash)
                self._warn_record(report, 'cannot parse stored share %064x (%s: %s); skipping',
                                  share_hash, type(exc).__name__, exc)
                continue
            if getattr(share, 'hash', None) != share_hash:
                report.mismatched += 1
                bad_hashes.append(share_hash)
                self._warn_record(report, 'stored share %064x parses to a share with another hash; skipping',
                                  share_hash)
                continue
            report.loaded += 1
            if verified:
                report.verified += 1
            yield share, bool(verified)
        if report.skipped:
            log.warning('share database %s: skipped %d of %d stored shares (%d unparsable, %d with wrong hash)',
                        self.path, report.skipped, report.records, report.unparsable, report.mismatched)
        if bad_hashes and forget_unparsable:
            if 2 * len(bad_hashes) >= report.records:
                # Most records failing points at the parser (or a mismatched network),
                # not at damaged records: keep the data for a fixed version to read.
                log.warning('share database %s: not forgetting the skipped shares because most records'
                            ' failed to parse', self.path)
                return
            try:
                self.forget_shares(bad_hashes)
                report.forgotten = len(bad_hashes)
            except StoreError as exc:
                log.warning('could not forget unparsable shares: %s', exc)

    def _warn_record(self, report, message, *args) -> None:
        if report.skipped <= _MAX_RECORD_WARNINGS:
            log.warning(message, *args)

    def _check_network(self, net):
        name = None if net is None else getattr(net, 'NAME', None)
        if name is None:
            return
        row = self._read(lambda conn: conn.execute("SELECT value FROM meta WHERE key = 'network'").fetchone(),
                         None)
        if row is None:
            self._write(lambda conn: conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('network', ?)", (str(name),)))
        elif row[0] != str(name):
            raise StoreError('%s holds shares of network %r, not %r' % (self.path, row[0], name))

    def has_share(self, share_hash) -> bool:
        key = hash_to_key(share_hash)
        return self._read(lambda conn: conn.execute(
            'SELECT 1 FROM shares WHERE hash = ?', (key,)).fetchone(), None) is not None

    def is_verified(self, share_hash) -> bool:
        key = hash_to_key(share_hash)
        return self._read(lambda conn: conn.execute(
            'SELECT 1 FROM verified WHERE hash = ?', (key,)).fetchone(), None) is not None

    def get_wire(self, share_hash) -> bytes | None:
        """The stored wire bytes of a share, or None."""
        key = hash_to_key(share_hash)
        row = self._read(lambda conn: conn.execute('SELECT wire FROM shares WHERE hash = ?', (key,)).fetchone(),
                         None)
        return None if row is None else row[0]

    def share_hashes(self) -> set[int]:
        """The set of stored share hashes (ints)."""
        rows = self._read(lambda conn: conn.execute('SELECT hash FROM shares').fetchall(), [])
        return {key_to_hash(key) for (key,) in rows}

    def count_shares(self) -> int:
        return self._read(lambda conn: conn.execute('SELECT count(*) FROM shares').fetchone()[0], 0)

    def count_verified(self) -> int:
        return self._read(lambda conn: conn.execute('SELECT count(*) FROM verified').fetchone()[0], 0)

    # -- plumbing -----------------------------------------------------------------------------

    def _connection(self):
        if self._conn is None:
            raise StoreError('the share store %s is closed' % (self.path,))
        return self._conn

    def _read(self, work, default):
        """Run a query; on a damaged database recover and ask the fresh one (else `default`)."""
        with self._lock:
            conn = self._connection()
            try:
                return work(conn)
            except sqlite3.Error as exc:
                if not is_corruption(exc):
                    raise StoreError('reading %s failed: %s' % (self.path, exc)) from exc
                self._recover(exc)
            try:
                return work(self._conn)
            except sqlite3.Error:
                return default

    def _write(self, work):
        """Run `work(conn)` in one transaction; on a damaged database recover and retry once."""
        with self._lock:
            conn = self._connection()
            try:
                return _in_transaction(conn, work)
            except sqlite3.Error as exc:
                if not is_corruption(exc):
                    raise StoreError('writing %s failed: %s' % (self.path, exc)) from exc
                self._recover(exc)
            try:
                return _in_transaction(self._conn, work)
            except sqlite3.Error as exc:
                raise StoreError('writing %s failed: %s' % (self.path, exc)) from exc

    def _recover(self, exc):
        """Replace a database found damaged while running by a fresh one holding what can still be
        read of it, then have every holder of state write what it holds (on_reset)."""
        if self.path == MEMORY_PATH:
            raise StoreError('in-memory share database failed: %s' % exc) from exc
        damaged, self._conn = self._conn, None
        self._conn, moved_to, _salvaged = replace_damaged(self.path, damaged, exc)
        self.moved_aside.append(moved_to)
        if self._resetting:
            return      # damaged again while the holders rewrite: they are still at it
        self._resetting = True
        try:
            for callback in list(self.on_reset):
                try:
                    callback()
                except Exception:  # noqa: BLE001 - one holder failing must not stop the others
                    log.exception('rewriting the node\'s state into the fresh share database failed')
            self.flush()
        finally:
            self._resetting = False
        log.warning('share database %s: wrote what the node holds (%d shares, %d verified, %d peers, %d bans)'
                    ' into the fresh database', self.path, self.count_shares(), self.count_verified(),
                    len(self.get_peers()), len(self.get_active_bans(0)))


def _in_transaction(conn, work):
    conn.execute('BEGIN IMMEDIATE')
    try:
        result = work(conn)
        conn.execute('COMMIT')
    except BaseException:
        rollback_quietly(conn)
        raise
    return result
