"""Opening the node's SQLite database: errors, schema migrations, corrupt-file recovery.

`p2pool.store.sharestore` builds on this; nothing else needs to import it directly.

Schema changes are append-only: each entry of MIGRATIONS moves the database from
version N-1 to N inside one transaction, so an interrupted upgrade leaves the old
version intact.  A database written by a newer p2pool (higher version than we know)
is refused rather than guessed at, because silently dropping columns we do not
understand would lose that node's data.

A file that is not a SQLite database, or whose pages are damaged, must not keep the
node from starting: it is renamed to `<name>.corrupt-<n>` (with its -wal/-shm
companions, so it can still be inspected with the sqlite3 shell) and a fresh,
empty database takes its place.
"""
import logging
import os
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

MEMORY_PATH = ':memory:'

#: (version, statements) in ascending order; the database is at the last version.
MIGRATIONS = [
    (1, (
        # rowid table on purpose: loading in rowid order returns shares in the
        # order they were stored, which keeps load order stable and cheap.
        'CREATE TABLE shares (hash BLOB PRIMARY KEY, version INTEGER NOT NULL,'
        ' wire BLOB NOT NULL, added_at REAL NOT NULL)',
        'CREATE TABLE verified (hash BLOB PRIMARY KEY) WITHOUT ROWID',
        'CREATE TABLE peers (host TEXT NOT NULL, port INTEGER NOT NULL, services INTEGER NOT NULL,'
        ' first_seen REAL NOT NULL, last_seen REAL NOT NULL, score REAL NOT NULL DEFAULT 0,'
        ' PRIMARY KEY (host, port))',
        'CREATE TABLE bans (host TEXT PRIMARY KEY, reason TEXT NOT NULL, score INTEGER NOT NULL,'
        ' until REAL NOT NULL)',
        'CREATE TABLE history (id INTEGER PRIMARY KEY, source TEXT NOT NULL, view TEXT NOT NULL,'
        ' ts REAL NOT NULL, value TEXT NOT NULL)',
        'CREATE INDEX history_by_source ON history (source, view, ts)',
        'CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
    )),
    (2, (
        # p2pool.store.sessions: Stratum sessions a reconnecting miner resumes
        'CREATE TABLE stratum_sessions (session_id TEXT PRIMARY KEY, extranonce1 BLOB NOT NULL,'
        ' state TEXT NOT NULL, last_seen REAL NOT NULL)',
    )),
    (3, (
        # p2pool.store.payouts: blocks of the pool that pay this node's payees
        'CREATE TABLE payouts (block_hash TEXT PRIMARY KEY, height INTEGER NOT NULL, ts REAL NOT NULL,'
        ' share_hash TEXT NOT NULL, amounts TEXT NOT NULL, confirmations INTEGER NOT NULL, state TEXT NOT NULL)',
    )),
    (4, (
        # each share's proof-of-work hash as computed when it arrived: a restarting node on a
        # scrypt network reads it instead of hashing every stored share again (p2pool.sharechain.chain)
        'ALTER TABLE shares ADD COLUMN pow BLOB',
    )),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]

# Primary result codes meaning "the file itself is damaged" (sqlite3.h).
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_COMPANION_SUFFIXES = ('-wal', '-shm', '-journal')


class StoreError(Exception):
    """The store could not do what was asked (I/O failure, invalid argument, closed store)."""


class StoreSchemaError(StoreError):
    """The database was written by a newer p2pool with a schema this version does not know."""


def is_corruption(exc) -> bool:
    """True if the sqlite3 exception says the database file is damaged or not a database."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, 'sqlite_errorcode', None)
    if code is not None:
        return code & 0xff in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return 'malformed' in text or 'not a database' in text


def move_aside(path) -> Path:
    """Rename a damaged database (and its companions) to `<path>.corrupt-<n>`; return the new path."""
    path = Path(path)
    n = 1
    while any(Path('%s.corrupt-%d%s' % (path, n, suffix)).exists() for suffix in ('',) + _COMPANION_SUFFIXES):
        n += 1
    target = Path('%s.corrupt-%d' % (path, n))
    for suffix in ('',) + _COMPANION_SUFFIXES:
        source = Path(str(path) + suffix)
        if source.exists():
            os.replace(source, str(target) + suffix)
    return target


def open_database(path) -> tuple[sqlite3.Connection, Path | None]:
    """Open (creating if needed) and migrate the database at `path`.

    Returns (connection, moved_to) where moved_to is the path a corrupt file was moved to,
    or None.  A file SQLite cannot open at all is moved aside and replaced by an empty
    database; one that opens but fails `PRAGMA quick_check` (damaged pages) is moved aside
    too, after the rows that can still be read were copied into its replacement.
    Raises StoreSchemaError for a newer schema and StoreError for other failures
    (permissions, locked database, full disk).
    """
    if str(path) != MEMORY_PATH:
        _report_empty_file(Path(path))
    try:
        conn = _connect_and_migrate(path)
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc) or str(path) == MEMORY_PATH:
            raise StoreError('cannot open share database %s: %s' % (path, exc)) from exc
        moved_to = move_aside(path)
        log.warning('share database %s is corrupt (%s); moved it to %s and starting empty',
                    path, exc, moved_to)
        return _create(path), moved_to
    damage = None if str(path) == MEMORY_PATH else _damage_found(conn)
    if damage is None:
        return conn, None
    conn, moved_to, _salvaged = replace_damaged(path, conn, damage)
    return conn, moved_to


def _create(path):
    try:
        return _connect_and_migrate(path)
    except sqlite3.Error as exc:
        raise StoreError('cannot create share database %s: %s' % (path, exc)) from exc


def _damage_found(conn):
    """None when SQLite's quick_check finds the file sound, else what it found (one line)."""
    try:
        rows = conn.execute('PRAGMA quick_check').fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    problems = [' '.join(str(row[0]).split()) for row in rows if row and row[0] != 'ok']
    return '; '.join(problems)[:300] if problems else None


def _salvaged_tables():
    """[(table, key)] of every table the migrations create (schema_version aside: the fresh file
    has its own), each with the key it is read in: rowid, or the first column of a table
    WITHOUT ROWID."""
    conn = _connect_and_migrate(MEMORY_PATH)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                            " AND name != 'schema_version' ORDER BY rowid").fetchall()
    finally:
        conn.close()
    return [(name, '1' if 'WITHOUT ROWID' in sql.upper() else 'rowid') for name, sql in rows]


def replace_damaged(path, damaged, reason) -> tuple[sqlite3.Connection, Path, dict[str, int]]:
    """Move the damaged database at `path` aside and put a fresh one in its place holding every
    row of the damaged one that can still be read; `damaged` (its open connection) is closed.

    Returns (connection, moved_to, {table: rows salvaged}).
    """
    salvaged = {table: _readable_rows(damaged, table, key) for table, key in _salvaged_tables()}
    try:
        damaged.close()
    except sqlite3.Error:
        pass  # the file is being discarded anyway
    moved_to = move_aside(path)
    conn = _create(path)
    counts = {}
    for table, rows in salvaged.items():
        if not rows:
            continue
        marks = ', '.join('?' * len(rows[0]))
        try:
            conn.execute('BEGIN IMMEDIATE')
            conn.executemany('INSERT OR IGNORE INTO %s VALUES (%s)' % (table, marks), rows)
            conn.execute('COMMIT')
            counts[table] = len(rows)
        except sqlite3.Error as exc:
            rollback_quietly(conn)
            log.warning('share database %s: could not copy the readable %s rows: %s', path, table, exc)
    log.warning('share database %s is damaged (%s); moved it to %s and copied what could still be read '
                'into a fresh one: %s', path, reason, moved_to,
                ', '.join('%d %s' % (count, table) for table, count in counts.items()) or 'nothing')
    return conn, moved_to, counts


def _readable_rows(conn, table, key):
    """The rows of `table` a damaged file still yields: read forwards up to the first damaged
    page, then backwards from the end down to it (rows between are lost)."""
    head, tail, seen = [], [], set()
    columns = 'rowid, *' if key == 'rowid' else '*'
    try:
        for row in conn.execute('SELECT %s FROM %s ORDER BY %s' % (columns, table, key)):
            head.append(row)
            seen.add(row[0])
        return _without_rowid(head, key)
    except sqlite3.DatabaseError:
        pass     # damaged (or the table is missing): try from the other end
    try:
        for row in conn.execute('SELECT %s FROM %s ORDER BY %s DESC' % (columns, table, key)):
            if row[0] in seen:
                break
            tail.append(row)
    except sqlite3.DatabaseError:
        pass
    return _without_rowid(head + tail[::-1], key)


def _without_rowid(rows, key):
    return [row[1:] for row in rows] if key == 'rowid' else rows


def _report_empty_file(path) -> None:
    """SQLite takes a 0-byte file as a new database; a node's store is never 0 bytes once
    created (the schema is written at once), so such a file was truncated: say so."""
    try:
        empty = path.stat().st_size == 0
    except OSError:
        return      # no file yet: a new store, as expected
    if empty:
        log.warning('share database %s is an empty (0-byte) file: it was truncated or replaced, so the '
                    'node starts without its stored chain, peers, bans and graph history', path)


def _connect_and_migrate(path):
    if str(path) != MEMORY_PATH:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError('cannot create directory for %s: %s' % (path, exc)) from exc
    # isolation_level=None: we issue BEGIN/COMMIT ourselves so each batch is exactly
    # one transaction.  check_same_thread=False: the store serialises access with its
    # own lock, so a flush may run in a worker thread.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        if str(path) != MEMORY_PATH:
            conn.execute('PRAGMA journal_mode=WAL').fetchone()
        # NORMAL in WAL mode: a process crash never loses a commit; a power loss may
        # lose the last few, but the file always stays consistent.
        conn.execute('PRAGMA synchronous=NORMAL')
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn, path):
    conn.execute('BEGIN IMMEDIATE')
    try:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        if not exists:
            conn.execute('CREATE TABLE schema_version (version INTEGER NOT NULL)')
            conn.execute('INSERT INTO schema_version (version) VALUES (0)')
            version = 0
        else:
            row = conn.execute('SELECT version FROM schema_version').fetchone()
            if row is None or not isinstance(row[0], int):
                raise sqlite3.DatabaseError('database disk image is malformed (no schema version)')
            version = row[0]
        if version > SCHEMA_VERSION:
            raise StoreSchemaError(
                '%s has schema version %d but this p2pool only knows up to %d; it was written by a '
                'newer p2pool. Upgrade p2pool or move the file away to start afresh.'
                % (path, version, SCHEMA_VERSION))
        conn.execute('COMMIT')
    except BaseException:
        rollback_quietly(conn)
        raise
    for target, statements in MIGRATIONS:
        if target <= version:
            continue
        conn.execute('BEGIN IMMEDIATE')
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute('UPDATE schema_version SET version = ?', (target,))
            conn.execute('COMMIT')
        except BaseException:
            rollback_quietly(conn)
            raise
        if str(path) != MEMORY_PATH:
            log.info('share database %s migrated to schema version %d', path, target)
        version = target


def rollback_quietly(conn) -> None:
    try:
        conn.execute('ROLLBACK')
    except sqlite3.Error:
        # Nothing to roll back (the failing statement already ended the transaction)
        # or the file is unusable; either way the original error is what matters.
        pass
