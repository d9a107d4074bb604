"""The Stratum fan-out (work/notify.py) and a connection's jobs (work/jobs.py), in process.

Connections are real StratumProtocols of a StratumFactory on the real bridge (worker_helpers),
over Twisted's StringTransport or a transport that shows its write buffer and socket send.
"""
import itertools
import json
import struct
import time
import types

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from p2pool.bitcoin.data import difficulty_to_target, target_to_difficulty
from p2pool.testing.testchain import make_addresses
from p2pool.work import jobs as jobs_module
from p2pool.work.bridge import WorkRefused
from p2pool.work.jobs import Job, prune, superseded, trim, with_superseded
from p2pool.work.notify import write_now
from p2pool.work.stratum import STALE_GRACE_SECONDS, StratumFactory
from worker_helpers import header_for, make_bridge, make_template, solve


def job(issued, superseded=None):
    return Job(None, None, 1, issued, superseded)


# --- jobs.py ----------------------------------------------------------------------------------

def test_superseded_is_when_the_next_job_was_issued():
    jobs = {'a': job(10.0), 'b': job(15.0), 'c': job(21.0)}
    assert [superseded(jobs, key, entry) for key, entry in jobs.items()] == [15.0, 21.0, None]
    assert [found for _, _, found in with_superseded(jobs)] == [15.0, 21.0, None]


def test_a_handed_over_job_keeps_its_own_superseded_time():
    jobs = {'a': job(10.0, superseded=12.0), 'c': job(21.0)}     # the job between did not come along
    assert superseded(jobs, 'a', jobs['a']) == 12.0
    assert list(with_superseded(jobs)) == [('a', jobs['a'], 12.0), ('c', jobs['c'], None)]


def test_trim_keeps_the_newest_and_prune_drops_the_expired(monkeypatch):
    monkeypatch.setattr(jobs_module, 'MAX_JOBS', 3)
    jobs = {str(n): job(float(n)) for n in range(5)}
    trim(jobs)
    assert list(jobs) == ['2', '3', '4']
    prune(jobs, now=3.5 + jobs_module.JOB_LIFETIME)
    assert list(jobs) == ['4']


# --- the fan-out ------------------------------------------------------------------------------

class Clocked:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


@pytest.fixture
def node():
    env = make_bridge()
    env.clock = Clocked()
    env.factory = StratumFactory(env.bridge, env.net, clock=env.clock, reactor=Clock())
    env.address = make_addresses(env.net, 1, seed=b'miner')[0]
    return env


def connect(env, username, transport=None):
    connection = env.factory.buildProtocol(types.SimpleNamespace(host='127.0.0.1', port=1))
    connection.makeConnection(transport if transport is not None else StringTransport())
    connection.lineReceived(b'{"id":1,"method":"mining.subscribe","params":[]}')
    connection.lineReceived(json.dumps({'id': 2, 'method': 'mining.authorize', 'params': [username, 'x']}).encode())
    return connection


def notifications(connection):
    """(difficulty, notify params) of each set_difficulty + notify pair written; the buffer is emptied."""
    messages = [json.loads(line) for line in connection.transport.value().splitlines()]
    connection.transport.clear()
    pairs = []
    for message in messages:
        if message.get('method') == 'mining.set_difficulty':
            difficulty = message['params'][0]
        elif message.get('method') == 'mining.notify':
            pairs.append((difficulty, message['params']))
    return pairs


def new_block(env, previous_block):
    env.source.set(make_template(previous_block=previous_block))


def test_one_job_id_per_event_with_each_connections_own_target(node):
    """Connections of one username share the bridge's work and the Job; every connection's job
    has its own target (vardiff or +D) and is only found among its own jobs."""
    easy, hard = node.address + '+1e-9', node.address + '+1e-8'     # a share is 256 hashes here
    connections = [connect(node, easy), connect(node, easy), connect(node, hard), connect(node, node.address)]
    for connection in connections:
        notifications(connection)
    asked = []
    original = node.bridge.get_stratum_work
    node.bridge.get_stratum_work = lambda username: asked.append(username.raw) or original(username)
    node.bridge.bump('new share')
    assert sorted(asked) == sorted({easy, hard, node.address})
    sent = [notifications(connection) for connection in connections]
    assert [len(pairs) for pairs in sent] == [1, 1, 1, 1]
    job_ids = {pairs[0][1][0] for pairs in sent}
    assert len(job_ids) == 1
    job_id = job_ids.pop()
    jobs = [connection.jobs[job_id] for connection in connections]
    assert jobs[0] is jobs[1] and jobs[2] is not jobs[0]
    for connection, pairs, found in zip(connections, sent, jobs):
        record = found.record
        assert found.target == connection.vardiff.job_target(record.share_target, record.min_share_target,
                                                             record.block_target)
        assert pairs[0][0] == pytest.approx(target_to_difficulty(found.target))
    assert jobs[0].target == difficulty_to_target(1e-9) and jobs[2].target == difficulty_to_target(1e-8)


def test_a_fixed_target_is_never_harder_than_a_share(node):
    """bsv_regtest: a share is 256 hashes, so +1000 gets the share target (Vardiff.job_target's rule)."""
    connection = connect(node, node.address + '+1000')
    node.bridge.bump('new share')
    newest = connection.jobs[next(reversed(connection.jobs))]
    assert newest.target == min(newest.record.block_target, newest.record.min_share_target)


def test_clean_jobs_only_when_the_parent_block_changes(node):
    connection = connect(node, node.address)
    assert [params[-1] for _, params in notifications(connection)] == [True]     # the first job
    node.bridge.bump('new share')
    new_block(node, 0x5678)
    node.bridge.bump('new share')
    assert [params[-1] for _, params in notifications(connection)] == [False, True, False]


def test_unready_closing_and_refused_connections(node):
    ready = connect(node, node.address)
    unauthorized = node.factory.buildProtocol(None)
    unauthorized.makeConnection(StringTransport())
    unauthorized.lineReceived(b'{"id":1,"method":"mining.subscribe","params":[]}')
    closing = connect(node, node.address)
    closing.transport.loseConnection()
    for connection in (ready, unauthorized, closing):
        connection.transport.clear()
    node.bridge.bump('new share')
    assert len(notifications(ready)) == 1
    assert unauthorized.transport.value() == b'' and closing.transport.value() == b''
    asked = []

    def refuse(username):
        asked.append(username.raw)
        raise WorkRefused('Lost contact with bitcoind')
    node.bridge.get_stratum_work = refuse
    other = connect(node, node.address)
    assert other.transport.disconnecting       # its first job was refused: closed
    other.transport.disconnecting = False
    asked.clear()
    node.bridge.bump('new share')
    assert asked == [node.address]             # once for the username, heard by each connection
    assert ready.transport.disconnecting and other.transport.disconnecting


class BufferedTransport(StringTransport):
    """A transport with Twisted TCP's write-buffer attributes, and a socket send() that takes
    `room` bytes (or raises)."""

    def __init__(self, room=None, error=None):
        super().__init__()
        self._tempDataLen, self.dataBuffer = 0, b''
        self.room, self.error, self.sent = room, error, b''

    def send(self, data):
        if self.error is not None:
            raise self.error
        taken = data if self.room is None else data[:self.room]
        self.sent += taken
        return len(taken)


@pytest.mark.parametrize('queued, room, error', [
    (False, None, None), (True, None, None), (False, 100, None), (False, None, BlockingIOError())])
def test_bytes_go_to_the_socket_only_behind_nothing_queued(queued, room, error):
    transport = BufferedTransport(room=room, error=error)
    if queued:
        transport._tempDataLen = 3          # an earlier reply still waits in Twisted's buffer
    write_now(transport, b'x' * 500, transport.send)
    if queued:
        assert transport.sent == b'' and transport.value() == b'x' * 500
    else:
        assert transport.sent + transport.value() == b'x' * 500
        assert len(transport.sent) == (0 if error else room or 500)


def test_the_fanout_sends_directly_or_through_the_buffer(node):
    direct, behind = BufferedTransport(), BufferedTransport()
    connections = [connect(node, node.address, direct), connect(node, node.address, behind)]
    for connection in connections:
        connection.direct_send = connection.transport.send
        connection.transport.clear()
    behind._tempDataLen = 1
    node.bridge.bump('new share')
    assert direct.value() == b'' and b'mining.notify' in direct.sent
    assert behind.sent == b'' and b'mining.notify' in behind.value()


# --- submissions on older jobs ---------------------------------------------------------------

_extranonce2s = itertools.count(1)


def submit(env, connection, job_id):
    """A valid pseudoshare of the connection's job `job_id`; the answer's result."""
    found = connection.jobs[job_id]
    extranonce2 = struct.pack('<I', next(_extranonce2s))
    header = solve(header_for(found.record, connection.extranonce1 + extranonce2), env.net.PARENT.pow_hash,
                   target=found.target)
    connection.transport.clear()
    connection.lineReceived(json.dumps({'id': 9, 'method': 'mining.submit', 'params': [
        'rig', job_id, extranonce2.hex(), '%08x' % header['timestamp'], '%08x' % header['nonce']]}).encode())
    return json.loads(connection.transport.value())['result']


def test_stale_grace_runs_from_when_the_next_job_came(node):
    connection = connect(node, node.address + '+1e-9')
    first = next(reversed(connection.jobs))
    start = node.clock.now
    node.clock.now = start + 5
    new_block(node, 0x5678)                   # replaces the first job
    second = next(reversed(connection.jobs))
    node.clock.now = start + 12
    node.bridge.bump('new share')             # replaces the second one
    node.clock.now = start + 5 + STALE_GRACE_SECONDS - 1
    assert submit(node, connection, first) is True
    node.clock.now = start + 5 + STALE_GRACE_SECONDS + 1
    assert submit(node, connection, first) is False
    assert submit(node, connection, second) is True


def test_expired_jobs_go_after_a_new_work_event(node):
    connection = connect(node, node.address)
    first = next(iter(connection.jobs))
    node.clock.now += jobs_module.JOB_LIFETIME + 1
    node.bridge.bump('new share')
    assert first in connection.jobs            # the sends come first
    node.factory.reactor.advance(0)
    assert first not in connection.jobs and len(connection.jobs) == 1


def test_a_fault_in_one_usernames_work_leaves_the_others_served(node, caplog):
    broken, fine = connect(node, node.address + '.broken'), connect(node, node.address)
    original = node.bridge.get_stratum_work

    def work(username):
        if username.raw.endswith('.broken'):
            raise KeyError('a bug')
        return original(username)
    node.bridge.get_stratum_work = work
    broken.transport.clear()
    fine.transport.clear()
    node.bridge.bump('new share')
    assert len(notifications(fine)) == 1
    assert broken.transport.value() == b'' and not broken.transport.disconnecting
    assert 'Stratum work for %s.broken failed' % node.address in caplog.text
