"""SQLite store: share batches, loading, damage recovery, schema versions, crash safety, small tables."""
import hashlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from p2pool.store import schema as store_schema
from p2pool.store import tables as store_tables
from p2pool.store.sharestore import (
    DATABASE_FILENAME, SCHEMA_VERSION, Batch, BanRecord, PeerRecord, ShareStore, StoreError, StoreSchemaError,
    hash_to_key, key_to_hash)

REPO_ROOT = Path(__file__).resolve().parents[1]


def fake_share(n, version=35, padding=100):
    """A stand-in share: its wire bytes start with its hash so parse_fake can rebuild it."""
    share_hash = int.from_bytes(hashlib.sha256(b'share %d' % n).digest(), 'big')
    wire = share_hash.to_bytes(32, 'big') + n.to_bytes(4, 'big') + bytes(padding)
    return SimpleNamespace(hash=share_hash, VERSION=version, to_wire=lambda: wire)


def parse_fake(wire):
    if len(wire) < 36:
        raise ValueError('record too short')
    return SimpleNamespace(hash=int.from_bytes(wire[:32], 'big'), n=int.from_bytes(wire[32:36], 'big'),
                           wire=wire)


def loaded(store, net=None, parse_fn=parse_fake):
    """{n: verified} of everything load_shares yields."""
    return {share.n: verified for share, verified in store.load_shares(net, parse_fn)}


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / 'bitcoin' / DATABASE_FILENAME


@pytest.fixture
def store(db_path):
    with ShareStore(db_path) as opened:
        yield opened


# -- opening, schema ---------------------------------------------------------------------------

def test_creates_directory_wal_database_with_schema_version(db_path):
    with ShareStore(db_path):
        pass
    assert db_path.is_file()
    conn = sqlite3.connect(db_path)
    assert conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
    assert conn.execute('SELECT version FROM schema_version').fetchall() == [(SCHEMA_VERSION,)]
    conn.close()


def test_newer_schema_is_refused_and_file_left_alone(db_path):
    ShareStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute('UPDATE schema_version SET version = ?', (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreSchemaError, match='newer p2pool'):
        ShareStore(db_path)
    assert db_path.exists()
    assert not list(db_path.parent.glob('*.corrupt-*'))


def test_migrations_run_in_order_once(db_path, monkeypatch):
    with ShareStore(db_path) as opened:
        opened.add_shares([fake_share(1)])
    extra = (SCHEMA_VERSION + 1, ('CREATE TABLE notes (text TEXT)', "INSERT INTO notes VALUES ('migrated')"))
    monkeypatch.setattr(store_schema, 'MIGRATIONS', store_schema.MIGRATIONS + [extra])
    monkeypatch.setattr(store_schema, 'SCHEMA_VERSION', SCHEMA_VERSION + 1)
    for _ in range(2):  # the second open must not re-run the migration
        with ShareStore(db_path) as opened:
            assert loaded(opened) == {1: False}
    conn = sqlite3.connect(db_path)
    assert conn.execute('SELECT version FROM schema_version').fetchone()[0] == SCHEMA_VERSION + 1
    assert conn.execute('SELECT text FROM notes').fetchall() == [('migrated',)]
    conn.close()


def test_in_memory_store():
    with ShareStore(':memory:') as opened:
        opened.add_shares([fake_share(1)])
        assert loaded(opened) == {1: False}


def test_closed_store_raises_store_error(db_path):
    opened = ShareStore(db_path)
    opened.close()
    opened.close()  # idempotent
    assert opened.closed
    with pytest.raises(StoreError, match='closed'):
        opened.add_shares([fake_share(1)])


@pytest.mark.parametrize('bad_hash', [-1, 1 << 256, 'ab', 1.0, None, True])
def test_bad_hash_is_a_store_error(store, bad_hash):
    with pytest.raises(StoreError):
        store.mark_verified([bad_hash])


def test_hash_key_round_trip():
    for value in (0, 1, (1 << 256) - 1, 0x1234 << 200):
        assert key_to_hash(hash_to_key(value)) == value
        assert len(hash_to_key(value)) == 32


# -- share writes and loading -------------------------------------------------------------------

def test_round_trip_with_verified_marks_in_storage_order(db_path):
    shares = [fake_share(n) for n in range(50)]
    with ShareStore(db_path) as opened:
        opened.add_shares(shares[:30], added_at=1000.5)
        opened.add_shares(shares[30:])
        opened.mark_verified([share.hash for share in shares[::3]])
    with ShareStore(db_path) as opened:
        records = list(opened.load_shares(None, parse_fake))
        assert [share.n for share, _verified in records] == list(range(50))
        assert {share.n: verified for share, verified in records} == {n: n % 3 == 0 for n in range(50)}
        report = opened.last_load_report
        assert (report.records, report.loaded, report.verified, report.skipped) == (50, 50, 17, 0)
        assert not report.database_corrupt
        assert opened.count_shares() == 50 and opened.count_verified() == 17
        assert opened.get_wire(shares[7].hash) == shares[7].to_wire()
        assert opened.get_wire(fake_share(99).hash) is None
        assert opened.has_share(shares[0].hash) and not opened.has_share(fake_share(99).hash)
        assert opened.is_verified(shares[3].hash) and not opened.is_verified(shares[4].hash)
        assert opened.share_hashes() == {share.hash for share in shares}
        row = opened._conn.execute('SELECT version, added_at FROM shares WHERE hash = ?',
                                   (hash_to_key(shares[0].hash),)).fetchone()
        assert row == (35, 1000.5)


def test_forget_removes_share_and_mark(store):
    shares = [fake_share(n) for n in range(5)]
    store.add_shares(shares)
    store.mark_verified([share.hash for share in shares])
    store.forget_shares([shares[1].hash, shares[3].hash, fake_share(42).hash])
    assert loaded(store) == {0: True, 2: True, 4: True}
    assert store.count_verified() == 3


def test_batch_keeps_final_state_per_hash(store):
    a, b, c = fake_share(1), fake_share(2), fake_share(3)
    store.add_shares([c])
    store.mark_verified([c.hash])
    batch = store.pending
    batch.add_shares([a, b])
    batch.mark_verified([a.hash, b.hash])
    batch.forget_shares([a.hash])          # added then forgotten: never reaches the disk
    batch.forget_shares([c.hash])
    batch.add_share(c)                     # forgotten then re-added: present, mark gone
    assert store.count_shares() == 1       # nothing committed yet
    store.flush()
    assert len(store.pending) == 0
    assert loaded(store) == {2: True, 3: False}


def test_close_flushes_pending(db_path):
    opened = ShareStore(db_path)
    opened.pending.add_shares([fake_share(n) for n in range(10)])
    opened.pending.mark_verified([fake_share(4).hash])
    opened.close()
    with ShareStore(db_path) as reopened:
        assert loaded(reopened) == {n: n == 4 for n in range(10)}


def test_take_pending_and_apply_in_another_thread(store):
    import threading
    store.pending.add_shares([fake_share(n) for n in range(20)])
    batch = store.take_pending()
    assert len(store.pending) == 0 and len(batch) == 20
    worker = threading.Thread(target=store.apply, args=(batch,))
    worker.start()
    worker.join()
    assert store.count_shares() == 20


def test_failed_flush_keeps_entries_pending(store, monkeypatch):
    store.pending.add_shares([fake_share(1)])

    def failing_write(work):
        raise StoreError('disk full')
    monkeypatch.setattr(store, '_write', failing_write)
    with pytest.raises(StoreError):
        store.add_shares([fake_share(2)])
    monkeypatch.undo()
    assert len(store.pending) == 2
    store.flush()
    assert loaded(store) == {1: False, 2: False}


def test_add_shares_rejects_non_bytes_wire(store):
    bad = SimpleNamespace(hash=1, VERSION=35, to_wire=lambda: 'text')
    with pytest.raises(StoreError):
        store.add_shares([bad])


def test_unparsable_records_are_skipped_counted_and_forgotten(store, caplog):
    store.add_shares([fake_share(n) for n in range(10)])
    store.mark_verified([fake_share(n).hash for n in range(10)])
    wrong_hash = fake_share(20)
    store.add_shares([SimpleNamespace(hash=wrong_hash.hash ^ 1, VERSION=35, to_wire=wrong_hash.to_wire)])
    store._conn.execute("UPDATE shares SET wire = x'0102' WHERE hash = ?", (hash_to_key(fake_share(3).hash),))

    def parse_or_fail(wire):
        if wire[32:36] == (7).to_bytes(4, 'big'):
            raise IndexError('parser bug on record 7')
        return parse_fake(wire)
    with caplog.at_level(logging.WARNING, logger='p2pool.store.sharestore'):
        result = loaded(store, parse_fn=parse_or_fail)
    assert result == {n: True for n in range(10) if n not in (3, 7)}
    report = store.last_load_report
    assert (report.records, report.loaded, report.unparsable, report.mismatched) == (11, 8, 2, 1)
    assert report.forgotten == 3
    assert 'skipped 3 of 11' in caplog.text
    assert store.count_shares() == 8
    assert loaded(store) == result and store.last_load_report.skipped == 0


def test_mostly_unparsable_records_are_kept(store):
    store.add_shares([fake_share(n) for n in range(10)])

    def broken_parser(wire):
        raise ValueError('wrong parser')
    assert loaded(store, parse_fn=broken_parser) == {}
    assert store.last_load_report.unparsable == 10
    assert store.last_load_report.forgotten == 0
    assert store.count_shares() == 10


def test_load_checks_the_network(store):
    bitcoin, litecoin = SimpleNamespace(NAME='bitcoin'), SimpleNamespace(NAME='litecoin')
    store.add_shares([fake_share(1)])
    assert loaded(store, net=bitcoin) == {1: False}
    assert loaded(store, net=bitcoin) == {1: False}
    with pytest.raises(StoreError, match='bitcoin'):
        store.load_shares(litecoin, parse_fake)


def test_many_shares_load(store):
    # the node keeps about 2 * CHAIN_LENGTH = 17280 shares on BTC
    store.add_shares([fake_share(n, padding=400) for n in range(17280)])
    assert len(loaded(store)) == 17280


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(st.sampled_from(['add', 'mark', 'forget']), st.integers(0, 7)), max_size=12),
                max_size=6))
def test_batches_match_a_simple_model(tmp_path, batches):
    path = tmp_path / ('model-%d.sqlite3' % time.monotonic_ns())
    stored, marked = set(), set()
    with ShareStore(path) as opened:
        for operations in batches:
            for operation, n in operations:
                share = fake_share(n)
                if operation == 'add':
                    opened.pending.add_share(share)
                    stored.add(n)
                elif operation == 'mark':
                    opened.pending.mark_verified([share.hash])
                    marked.add(n)
                else:
                    opened.pending.forget_shares([share.hash])
                    stored.discard(n)
                    marked.discard(n)
            opened.flush()
    with ShareStore(path) as reopened:
        assert loaded(reopened) == {n: n in marked for n in stored}


# -- damaged database files ---------------------------------------------------------------------

def test_garbage_file_is_moved_aside(db_path, caplog):
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b'this is not a database at all' * 200)
    with caplog.at_level(logging.WARNING, logger='p2pool.sharechain'):
        with ShareStore(db_path) as opened:
            aside = db_path.parent / (DATABASE_FILENAME + '.corrupt-1')
            assert opened.moved_aside == [aside]
            assert aside.read_bytes().startswith(b'this is not')
            assert loaded(opened) == {}
            assert opened.last_load_report.database_corrupt
            opened.add_shares([fake_share(1)])
    assert 'corrupt' in caplog.text
    db_path.write_bytes(b'garbage again' * 1000)
    with ShareStore(db_path) as opened:
        assert opened.moved_aside == [db_path.parent / (DATABASE_FILENAME + '.corrupt-2')]


def test_malformed_pages_found_while_loading(db_path, caplog):
    with ShareStore(db_path) as opened:
        opened.add_shares([fake_share(n, padding=3000) for n in range(300)])
    size = db_path.stat().st_size
    with open(db_path, 'r+b') as handle:  # keep the schema pages, damage the share pages
        handle.seek(20 * 4096)
        handle.write(b'\xaa' * (size - 20 * 4096))
    resets = []
    with caplog.at_level(logging.WARNING, logger='p2pool.store'):
        with ShareStore(db_path) as opened:     # quick_check finds the damage at open
            opened.on_reset.append(lambda: resets.append(True))
            salvaged = loaded(opened)
            assert set(salvaged) < set(range(300)) and not any(salvaged.values())
            assert opened.last_load_report.database_corrupt
            assert resets == []                 # found before anything was loaded: nothing to write back
            assert (db_path.parent / (DATABASE_FILENAME + '.corrupt-1')).exists()
            opened.add_shares([fake_share(1000)])
            assert loaded(opened) == {**salvaged, 1000: False}
    assert 'damaged' in caplog.text and '\n' not in caplog.records[-1].getMessage()
    with ShareStore(db_path) as reopened:
        assert loaded(reopened) == {**salvaged, 1000: False}


def test_damage_found_while_running_keeps_what_can_be_read_and_asks_the_holders(db_path, caplog):
    """Issue 16 finding 2: the fresh database gets the damaged one's readable rows at once, then every
    on_reset holder writes what it holds (the chain, peers, bans, history); nothing stays lost."""
    with ShareStore(db_path) as opened:
        opened.add_shares([fake_share(n) for n in range(20)])
        opened.mark_verified([fake_share(n).hash for n in range(5)])
        opened.ban('10.0.0.1', 'flooding: test', until=5000.0, score=3)
        opened.history_put('graph_peers', 10.0, {'incoming': 1})

        def holder():              # what a running node holds and the file has not
            opened.pending.add_shares([fake_share(99)])
            opened.add_peer('10.0.0.2', 9333, 0, 1.0)
        opened.on_reset.append(holder)
        opened._recover(sqlite3.DatabaseError('database disk image is malformed'))
        assert opened.moved_aside == [db_path.parent / (DATABASE_FILENAME + '.corrupt-1')]
        assert set(loaded(opened)) == set(range(20)) | {99}
        assert opened.count_verified() == 5
        assert opened.get_ban('10.0.0.1').score == 3
        assert opened.history_get('graph_peers', 0) == [(10.0, {'incoming': 1})]
        assert opened.get_peer('10.0.0.2', 9333) is not None


def test_an_empty_file_is_reported(db_path, caplog):
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b'')
    with caplog.at_level(logging.WARNING, logger='p2pool.store'):
        with ShareStore(db_path) as opened:
            assert loaded(opened) == {}
    assert 'empty (0-byte)' in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger='p2pool.store'):
        with ShareStore(db_path):               # now a real (empty) store: nothing to say
            pass
    assert 'empty (0-byte)' not in caplog.text


# -- crash safety ---------------------------------------------------------------------------------

WRITER = textwrap.dedent('''
    import hashlib, sys
    from types import SimpleNamespace
    from p2pool.store.sharestore import ShareStore

    def share(batch, item):
        share_hash = int.from_bytes(hashlib.sha256(b'%d/%d' % (batch, item)).digest(), 'big')
        wire = share_hash.to_bytes(32, 'big') + bytes((batch % 256, batch // 256, item)) + bytes(1500)
        return SimpleNamespace(hash=share_hash, VERSION=35, to_wire=lambda: wire)

    store = ShareStore(sys.argv[1])
    batch = 0
    while True:
        shares = [share(batch, item) for item in range({size})]
        store.pending.add_shares(shares, added_at=batch)
        store.pending.mark_verified([s.hash for s in shares[::2]])
        if batch >= 2:  # also exercise deletes: forget two batches back
            store.pending.forget_shares([share(batch - 2, item).hash for item in range(0, {size}, 5)])
        store.flush()
        print(batch, flush=True)
        batch += 1
''')


def parse_writer_share(wire):
    return SimpleNamespace(hash=int.from_bytes(wire[:32], 'big'), batch=wire[32] + 256 * wire[33], item=wire[34])


@pytest.mark.parametrize('kill_after', [3, 25, 60])
def test_sigkill_mid_stream_leaves_whole_batches(tmp_path, kill_after):
    size = 40
    path = tmp_path / DATABASE_FILENAME
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get('PYTHONPATH', '')]))
    writer = subprocess.Popen([sys.executable, '-c', WRITER.format(size=size), str(path)],
                              stdout=subprocess.PIPE, env=env)
    try:
        committed = -1
        while committed < kill_after:
            line = writer.stdout.readline()
            assert line, 'writer exited early with %s' % writer.wait()
            committed = int(line)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL

    with ShareStore(path) as reopened:
        assert reopened.moved_aside == []
        by_batch = {}
        for share, verified in reopened.load_shares(None, parse_writer_share):
            by_batch.setdefault(share.batch, {})[share.item] = verified
        assert reopened.last_load_report.skipped == 0
        assert reopened._conn.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    last = max(by_batch)
    assert last >= committed  # everything reported as committed survived
    assert sorted(by_batch) == list(range(last + 1))
    for batch, items in by_batch.items():
        # batch b's commit deleted part of batch b-2, so exactly batches <= last-2 lost those items
        forgotten = batch <= last - 2
        expected = {item: item % 2 == 0 for item in range(size) if not (forgotten and item % 5 == 0)}
        assert items == expected, batch


# -- peers, bans, history ----------------------------------------------------------------------

def test_add_peer_follows_got_addr(store):
    assert store.add_peer('10.0.0.1', 9333, 1, 100.0)
    assert store.add_peer('10.0.0.1', 9333, 5, 50.0)     # older sighting: last_seen kept, services replaced
    assert store.get_peer('10.0.0.1', 9333) == PeerRecord('10.0.0.1', 9333, 5, 100.0, 100.0, 0.0)
    assert store.add_peer('10.0.0.1', 9333, 5, 300.0)
    assert store.get_peer('10.0.0.1', 9333).last_seen == 300.0
    assert store.get_peer('10.0.0.1', 9333).first_seen == 100.0


def test_peer_store_is_bounded(store, monkeypatch):
    monkeypatch.setattr(store_tables, 'MAX_PEERS', 3)
    assert all(store.add_peer('10.0.0.%d' % n, 9333, 0, 1.0) for n in range(3))
    assert not store.add_peer('10.0.0.9', 9333, 0, 1.0)
    assert store.add_peer('10.0.0.1', 9333, 0, 2.0)  # known addresses still update
    assert len(store.get_peers()) == 3


def test_peers_update_forget_save_and_persist(db_path):
    with ShareStore(db_path) as opened:
        opened.add_peer('2001:db8::1', 9333, (1 << 64) - 1, 10.0)
        opened.add_peer('10.0.0.2', 9334, 0, 20.0)
        assert opened.update_peer('10.0.0.2', 9334, score=2.5, last_seen=30.0)
        assert not opened.update_peer('10.9.9.9', 1, score=1.0)
        assert opened.forget_peer('10.0.0.2', 9334)
        assert not opened.forget_peer('10.0.0.2', 9334)
    with ShareStore(db_path) as reopened:
        assert reopened.get_peers() == [PeerRecord('2001:db8::1', 9333, (1 << 64) - 1, 10.0, 10.0, 0.0)]
        assert reopened.save_peers([('a', 1, 1, 1.0, 2.0, 0.0), PeerRecord('b', 2, 2, 3.0, 4.0, 1.0)]) == 2
        assert sorted(reopened.get_peers()) == [PeerRecord('a', 1, 1, 1.0, 2.0, 0.0),
                                               PeerRecord('b', 2, 2, 3.0, 4.0, 1.0)]


@pytest.mark.parametrize('host, port, services', [('', 1, 0), ('h', -1, 0), ('h', 70000, 0), ('h', 1, -1),
                                                  ('h', 1, 1 << 64), (None, 1, 0)])
def test_bad_peer_arguments(store, host, port, services):
    with pytest.raises(StoreError):
        store.add_peer(host, port, services, 1.0)


def test_bans(db_path):
    with ShareStore(db_path) as opened:
        opened.ban('10.0.0.1', 'obsolete share', until=1000.0)
        opened.ban('10.0.0.2', 'bad checksum', until=500.0, score=3)
        assert opened.get_active_bans(400.0) == [BanRecord('10.0.0.1', 'obsolete share', 1, 1000.0),
                                                BanRecord('10.0.0.2', 'bad checksum', 3, 500.0)]
        assert opened.get_active_bans(500.0) == [BanRecord('10.0.0.1', 'obsolete share', 1, 1000.0)]
    with ShareStore(db_path) as reopened:
        assert reopened.get_ban('10.0.0.2').score == 3          # expired bans keep their score
        reopened.ban('10.0.0.2', 'again', until=2000.0, score=4)
        assert reopened.get_ban('10.0.0.2') == BanRecord('10.0.0.2', 'again', 4, 2000.0)
        assert reopened.unban('10.0.0.1') and not reopened.unban('10.0.0.1')
        assert reopened.forget_expired_bans(2000.0) == 1
        assert reopened.get_ban('10.0.0.2') is None


def test_history(db_path):
    with ShareStore(db_path) as opened:
        opened.history_put('local_hash_rate', 100.0, 1.5e12)
        opened.history_put_many('pool_rates', [(100.0, {'good': 1.0, 'orphan': 0.5}), (105.0, {'good': 2.0})])
        opened.history_put('local_hash_rate', 110.0, None)
        opened.history_put('local_hash_rate', 50.0, {'bins': [[1, 2]]}, view='last_hour')
    with ShareStore(db_path) as reopened:
        assert reopened.history_get('local_hash_rate', 0) == [(100.0, 1.5e12), (110.0, None)]
        assert reopened.history_get('local_hash_rate', 101) == [(110.0, None)]
        assert reopened.history_get('pool_rates', 0, until=105.0) == [(100.0, {'good': 1.0, 'orphan': 0.5})]
        assert reopened.history_latest('local_hash_rate', view='last_hour') == (50.0, {'bins': [[1, 2]]})
        assert reopened.history_latest('nothing') is None
        assert reopened.history_prune(105.0) == 3
        assert reopened.history_get('pool_rates', 0) == [(105.0, {'good': 2.0})]
        with pytest.raises(StoreError):
            reopened.history_put('x', 1.0, object())
        with pytest.raises(StoreError):
            reopened.history_put('x', 'soon', 1)


def test_batch_is_empty_when_new():
    batch = Batch()
    assert len(batch) == 0 and not batch
