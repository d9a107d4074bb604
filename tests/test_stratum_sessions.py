"""Resumed Stratum sessions: same extranonce1 and difficulty for a miner that sends its session id back."""
import time

import pytest

from p2pool.store.sharestore import ShareStore
from p2pool.testing.testchain import make_addresses
from p2pool.work.cpuminer import StratumMiner
from p2pool.work.sessions import SessionBook, vardiff_state
from p2pool.work.targets import Vardiff
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)
from worker_helpers import make_bridge, start_worker_server, stop_worker_server


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_session_book_resumes_known_sessions_only_once_and_until_expiry():
    clock = Clock()
    book = SessionBook(clock=clock, lifetime=600)
    session = book.open(b'\x01\x00\x00\x80')
    assert book.resume(session.session_id) is None            # its connection is still open
    book.close(session)
    assert book.resume('unknown') is None and book.resume(None) is None and book.resume(7) is None
    assert book.resume(session.session_id) is session
    book.close(session)
    clock.now += 601
    assert book.resume(session.session_id) is None            # expired
    assert session.session_id not in book.sessions


def test_new_extranonce1_skips_values_of_remembered_sessions():
    book = SessionBook()
    book.close(book.open(b'\x00\x00\x00\x80'))
    values = iter([b'\x00\x00\x00\x80', b'\x01\x00\x00\x80'])
    assert book.new_extranonce1(lambda: next(values)) == b'\x01\x00\x00\x80'


def test_sessions_survive_in_the_store(tmp_path):
    clock = Clock()
    path = tmp_path / 'p2pool.sqlite3'
    with ShareStore(path) as store:
        book = SessionBook(store, clock=clock)
        vardiff = Vardiff(3.0, (2**200, 2**255 - 1))
        vardiff.target, vardiff.recent = 2**230 + 5, [999.5]
        session = book.open(b'\x02\x00\x00\x80')
        book.update(session, {'vardiff': vardiff_state(vardiff), 'worker': 'addr.rig'})
        book.close(session)
        book.flush()
    clock.now += 300
    with ShareStore(path) as store:
        book = SessionBook(store, clock=clock)
        assert book.load() == 1
        resumed = book.resume(session.session_id)
        assert resumed.extranonce1 == b'\x02\x00\x00\x80'
        assert resumed.state['vardiff']['target'] == 2**230 + 5 and resumed.state['worker'] == 'addr.rig'
        clock.now += 2000
        book.close(resumed)
        book.flush()
        clock.now += 1000
        assert SessionBook(store, clock=clock).load() == 0


@pytest.fixture
def served(reactor):
    env = run_in_reactor(make_bridge)
    env.server = run_in_reactor(start_worker_server, env, share_rate=3.0)
    env.address = make_addresses(env.net, 1, seed=b'miner')[0]
    yield env
    run_in_reactor(stop_worker_server, env.server)


def test_reconnecting_miner_keeps_extranonce1_and_difficulty(served):
    first = StratumMiner('127.0.0.1', served.server.number, served.address + '.rig').connect()
    assert first.request('mining.suggest_difficulty', [0.5]) == (True, None)
    first.wait_for_job()
    first.job = None
    first.wait_for_job()
    difficulty, extranonce1, session_id = first.difficulty, first.extranonce1, first.session_id
    first.close()
    other = StratumMiner('127.0.0.1', served.server.number, served.address + '.other').connect()
    assert other.extranonce1 != extranonce1
    again = StratumMiner('127.0.0.1', served.server.number, served.address + '.rig')
    deadline = time.monotonic() + 5
    while session_id in served.server.stratum.sessions.live and time.monotonic() < deadline:
        time.sleep(0.01)               # until the server has seen the first connection close
    again.connect(session_id=session_id)
    assert (again.session_id, again.extranonce1, again.difficulty) == (session_id, extranonce1, difficulty)
    # a second connection naming the same live session gets a fresh one
    twin = StratumMiner('127.0.0.1', served.server.number, served.address + '.rig').connect(session_id=session_id)
    assert twin.session_id != session_id and twin.extranonce1 != extranonce1
    for miner in (other, again, twin):
        miner.close()
