"""Stratum server: protocol shapes, submissions and their errors, vardiff, limits and timeouts."""
import json
import random
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pool.bitcoin.data import (
    average_attempts_to_target, bits_to_target, difficulty_to_target, target_to_average_attempts, target_to_bits,
    target_to_difficulty)
from p2pool.testing.testchain import make_addresses
from p2pool.work.cpuminer import StratumMiner, sha256d_int
from p2pool.work.targets import Vardiff
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)
from worker_helpers import make_bridge, make_template, start_worker_server, stop_worker_server

SANE = (2**200, 2**255 - 1)


@pytest.fixture
def served(reactor):
    env = run_in_reactor(make_bridge)
    env.server = run_in_reactor(start_worker_server, env, share_rate=3.0)
    env.address = make_addresses(env.net, 1, seed=b'miner')[0]
    env.miners = []

    def new_miner(username=None, connect=True, **options):
        miner = StratumMiner('127.0.0.1', env.server.number, username or env.address + '.rig', **options)
        env.miners.append(miner)
        return miner.connect() if connect else miner.open()
    env.new_miner = new_miner
    yield env
    for miner in env.miners:
        miner.close()
    run_in_reactor(stop_worker_server, env.server)


def closed(miner, timeout=5):
    """True once the server has closed the miner's connection."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            miner.read_message(0.05)
    except (ConnectionError, OSError):
        return True
    return False


def search(miner, job, accept):
    """(extranonce2, nonce) of a header of `job` whose hash satisfies accept(hash)."""
    extranonce2 = struct.pack('<I', random.getrandbits(32))
    prefix = miner.header_prefix(job, extranonce2)
    for nonce in range(2**32):
        if accept(sha256d_int(prefix + struct.pack('<I', nonce))):
            return extranonce2, nonce


# --- shapes -------------------------------------------------------------------------------

def test_subscribe_authorize_and_first_job(served):
    miner = served.new_miner(connect=False)
    result, error = miner.request('mining.subscribe', ['test/1.0'])
    assert error is None and result[0][0] == 'mining.notify' and len(bytes.fromhex(result[0][1])) == 8
    assert len(bytes.fromhex(result[1])) == 4 and result[2] == 4
    assert miner.request('mining.authorize', [' %s.rig ' % served.address, 'x']) == (True, None)
    job = miner.wait_for_job()
    methods = [method for method, _ in miner.notifications]
    assert methods == ['mining.set_difficulty', 'mining.notify']
    template = served.source.current
    swapped = template.previous_block.to_bytes(32, 'little')
    assert job['prevhash'] == b''.join(swapped[i:i + 4][::-1] for i in range(0, 32, 4)).hex()
    assert (job['version'], job['nbits'], job['ntime']) == ('20000000', '207fffff', '%08x' % template.time)
    assert job['clean'] is True and int(job['job_id']) < 2**128
    assert bytes.fromhex(job['coinb2']) == b'\x00' * 4


def test_every_connection_has_its_own_extranonce1(served):
    values = {served.new_miner().extranonce1 for _ in range(4)}
    assert len(values) == 4 and all(value[3] & 0x80 for value in values)


def test_valid_submission_makes_a_share(served):
    miner = served.new_miner()
    job = miner.job
    extranonce2, nonce = miner.find(job)
    assert miner.submit(job, extranonce2, nonce) == (True, None)
    (share, dead), = served.shares
    assert not dead and share.payout_address == served.address
    assert share.last_txout_nonce.to_bytes(8, 'little') == miner.extranonce1 + extranonce2
    assert served.blocks      # regtest: this share is also a block


def test_submission_errors(served):
    early = served.new_miner(connect=False)
    params = ['w', '1', '00000000', '00000000', '00000000']
    assert early.request('mining.submit', params)[1]['code'] == 25
    early.request('mining.subscribe', [])
    assert early.request('mining.submit', params)[1]['code'] == 24

    miner = served.new_miner()
    job = miner.job
    assert miner.request('mining.submit', ['w', 'nope'] + params[2:])[1]['code'] == 21
    extranonce2, nonce = miner.find(job)
    base = [miner.username, job['job_id']]
    assert miner.request('mining.submit', base + ['0000', job['ntime'], '%08x' % nonce])[1]['code'] == 20
    assert miner.request('mining.submit', base + ['zz' * 4, job['ntime'], '%08x' % nonce])[1]['code'] == 20
    too_late = '%08x' % (int(job['ntime'], 16) + 3 * 3600 + int(time.time()) - int(job['ntime'], 16))
    error = miner.request('mining.submit', base + [extranonce2.hex(), too_late, '%08x' % nonce])[1]
    assert error['code'] == 20 and 'ntime' in error['message']
    too_early = '%08x' % (int(job['ntime'], 16) - 1)
    assert miner.request('mining.submit', base + [extranonce2.hex(), too_early, '%08x' % nonce])[1]['code'] == 20
    assert miner.request('mining.submit', base + [extranonce2.hex(), job['ntime'], 'xyz'])[1]['code'] == 20
    error = miner.request('mining.submit', base + [extranonce2.hex(), job['ntime'], '%08x' % nonce, 'e0000000'])[1]
    assert error['code'] == 20 and error['message'] == 'Invalid version mask'
    assert miner.request('mining.submit', base + [extranonce2.hex(), 5, 6])[1]['code'] == -32602
    assert miner.submit(job, extranonce2, nonce) == (True, None)
    assert miner.submit(job, extranonce2, nonce)[1]['code'] == 22
    extranonce2, nonce = search(miner, job, lambda value: value > 2**255)    # neither share nor block
    assert miner.submit(job, extranonce2, nonce)[1]['code'] == 23


def test_version_rolling(served):
    miner = served.new_miner(connect=False)
    result, _ = miner.request('mining.configure', [['version-rolling'], {'version-rolling.mask': '1fffffff'}])
    assert result == {'version-rolling': True, 'version-rolling.mask': '1fffe000'}
    miner.extranonce1 = bytes.fromhex(miner.request('mining.subscribe', [])[0][1])
    miner.request('mining.authorize', [served.address, ''])
    job = miner.wait_for_job()
    extranonce2 = b'\x00\x00\x00\x07'
    version_bits = 0x00ffe000
    prefix = bytearray(miner.header_prefix(job, extranonce2))
    prefix[0:4] = struct.pack('<I', 0x20000000 | version_bits)
    nonce = next(n for n in range(2**32) if sha256d_int(bytes(prefix) + struct.pack('<I', n)) <= 2**248)
    assert miner.submit(job, extranonce2, nonce, version_bits=version_bits) == (True, None)
    assert served.shares[-1][0].header['version'] == 0x20000000 | version_bits


def wait_for_new_job(miner, old, timeout=5):
    deadline = time.monotonic() + timeout
    while miner.job is old and time.monotonic() < deadline:
        miner.read_message(0.1)
    assert miner.job is not old
    return miner.job


def test_dead_on_arrival_and_clean_jobs(served):
    """A new parent block restarts the miners (clean_jobs); a solution of the older job is still
    taken for STALE_GRACE_SECONDS (recorded as dead), and refused after that."""
    from p2pool.work.stratum import STALE_GRACE_SECONDS
    miners = [served.new_miner() for _ in range(3)]
    old_jobs = [miner.job for miner in miners]
    run_in_reactor(served.source.set, make_template(previous_block=0x5678, height=201))
    for miner, old in zip(miners, old_jobs):
        assert wait_for_new_job(miner, old)['clean'] is True
    extranonce2, nonce = miners[0].find(old_jobs[0])
    assert miners[0].submit(old_jobs[0], extranonce2, nonce) == (True, None)
    assert served.shares[-1][1] is True      # recorded as dead
    later = time.time() + STALE_GRACE_SECONDS + 1
    served.server.stratum.clock = lambda: later
    extranonce2, nonce = miners[1].find(old_jobs[1])
    assert miners[1].submit(old_jobs[1], extranonce2, nonce) == (False, None)


def test_new_work_on_the_same_block_does_not_restart_the_miner(served):
    miner = served.new_miner()
    old = miner.job
    run_in_reactor(served.bridge.bump, 'new best share')        # same parent block
    job = wait_for_new_job(miner, old)
    assert job['clean'] is False and job['prevhash'] == old['prevhash']
    extranonce2, nonce = miner.find(old)
    assert miner.submit(old, extranonce2, nonce) == (True, None)


def test_expired_job(served):
    miner = served.new_miner()
    job = miner.job
    served.server.stratum.clock = lambda: time.time() + 301
    extranonce2, nonce = miner.find(job)
    assert miner.submit(job, extranonce2, nonce)[1]['code'] == 21


def test_other_methods(served):
    miner = served.new_miner()
    assert miner.request('mining.extranonce.subscribe', []) == (True, None)
    assert miner.request('client.reconnect', [])[1]['code'] == -32601
    assert miner.request('nodot', [])[1]['code'] == -32601
    assert miner.request('mining.authorize', [42])[1]['code'] == -32602
    assert miner.request('mining.suggest_difficulty', ['x'])[1]['code'] == -32602
    jobs = miner.jobs_received
    assert miner.request('mining.suggest_difficulty', [1e-9]) == (True, None)   # easier than a share here
    deadline = time.monotonic() + 5
    while miner.jobs_received == jobs and time.monotonic() < deadline:
        miner.read_message(0.1)
    assert miner.difficulty == pytest.approx(1e-9)
    result, _ = miner.request('mining.configure', [['minimum-difficulty', 'subscribe-extranonce', 'x'],
                                                   {'minimum-difficulty.value': 2}])
    assert result == {'minimum-difficulty': True, 'subscribe-extranonce': True, 'x': False}
    assert miner.request('mining.configure', [['minimum-difficulty'], {}])[1]['code'] == -32602


def test_malformed_input_keeps_the_connection(served):
    miner = served.new_miner()
    miner.send_raw(b'{not json\n')
    reply = miner.next_reply()
    assert reply['error']['code'] == -32700 and reply['id'] is None
    miner.send_raw(b'[1, 2]\n{"id": 5, "method": "mining.subscribe", "params": "x"}\n')
    assert miner.next_reply()['error']['code'] == -32600
    assert miner.next_reply()['error']['code'] == -32600
    miner.send_raw(b'{"id": 9, "result": true, "error": null}\n\n')      # a reply to us: ignored
    assert miner.request('mining.extranonce.subscribe', []) == (True, None)


def test_too_many_bad_messages_disconnect(served):
    miner = served.new_miner()
    miner.send_raw(b'garbage\n' * 30)
    assert closed(miner)


def test_oversize_line_disconnects(served):
    miner = served.new_miner()
    miner.send_raw(b'{"id": 1, "method": "mining.subscribe", "params": ["' + b'x' * 20000)
    assert closed(miner)
    assert served.new_miner().job is not None      # others are still served


def test_timeouts_and_slow_readers(reactor):
    env = run_in_reactor(make_bridge)
    server = run_in_reactor(start_worker_server, env, handshake_timeout=0.3, idle_timeout=0.5,
                            slow_reader_timeout=0.2, switch_options={'first_byte_timeout': 0.3})
    try:
        silent = socket.create_connection(('127.0.0.1', server.number))
        silent.settimeout(5)
        try:
            assert silent.recv(10) == b''                  # no first byte: dropped
        except ConnectionResetError:
            pass
        stalling = StratumMiner('127.0.0.1', server.number, 'x').open()
        stalling.request('mining.subscribe', [])
        assert closed(stalling)                            # never authorized
        idle = StratumMiner('127.0.0.1', server.number, make_addresses(env.net, 1)[0]).connect()
        assert closed(idle)                                # authorized, then silent
        slow = StratumMiner('127.0.0.1', server.number, make_addresses(env.net, 1)[0]).connect()
        connection = wait_for(lambda: next(iter(server.stratum.connections), None))
        run_in_reactor(connection.pauseProducing)          # as the transport does when we do not read
        assert closed(slow)
    finally:
        run_in_reactor(stop_worker_server, server)


def test_refusal_closes_the_connection(served):
    miner = served.new_miner()

    def lose_contact():
        served.source.current = None
        served.bridge.bump('bitcoind gone')
    run_in_reactor(lose_contact)
    assert closed(miner)


def test_vardiff_resends_work_after_twelve_pseudoshares(served):
    miner = served.new_miner()
    start_jobs = miner.jobs_received
    for _ in range(13):
        job = miner.job
        extranonce2, nonce = miner.find(job)
        assert miner.submit(job, extranonce2, nonce) == (True, None)
    miner.poll()
    assert miner.jobs_received == start_jobs + 1
    assert [m for m, _ in miner.notifications[-2:]] == ['mining.set_difficulty', 'mining.notify']


def test_fixed_pseudoshare_difficulty(served):
    miner = served.new_miner(served.address + '+0.001')
    # +D, but never harder than a block; on regtest, where blocks are easier than shares,
    # never easier than a share either (else every hash would come back): the fresh
    # chain's share target (MAX_TARGET as compact bits) wins over difficulty 0.001
    share_target = bits_to_target(target_to_bits(served.net.MAX_TARGET))
    assert bits_to_target(0x207fffff) > share_target
    assert miner.difficulty == pytest.approx(target_to_difficulty(share_target))
    for _ in range(14):
        job = miner.job
        extranonce2, nonce = miner.find(job)
        miner.submit(job, extranonce2, nonce)
    miner.poll()
    assert sum(1 for m, _ in miner.notifications if m == 'mining.notify') == 1   # never adjusted


# --- vardiff arithmetic (no sockets) ---------------------------------------------------------

def simulate(vardiff, hash_rate, submissions, rng=None, min_share_target=2**200):
    now = 0.0
    target = vardiff.job_target(2**250, min_share_target, 2**190)
    for _ in range(submissions):
        expected = target_to_average_attempts(target) / hash_rate
        now += rng.expovariate(1 / expected) if rng else expected
        if vardiff.record_submission(now, min_share_target):
            target = vardiff.job_target(2**250, min_share_target, 2**190)
    return target


@pytest.mark.parametrize('hash_rate', [1e3, 1e6, 1e9])
def test_vardiff_converges_to_the_share_rate(hash_rate):
    vardiff = Vardiff(3.0, SANE)
    target = simulate(vardiff, hash_rate, 600)
    ideal = average_attempts_to_target(hash_rate * 3.0)
    assert ideal / 2 <= target <= ideal * 2


def test_vardiff_converges_with_random_arrivals():
    vardiff = Vardiff(3.0, SANE)
    simulate(vardiff, 1e6, 400, random.Random(5))
    targets = []
    for _ in range(20):
        targets.append(simulate(vardiff, 1e6, 30, random.Random(len(targets))))
    ideal = average_attempts_to_target(3e6)
    assert ideal / 3 <= sorted(targets)[10] <= ideal * 3


def test_vardiff_floors_grace_and_minimum_difficulty():
    vardiff = Vardiff(1.0, SANE)
    assert vardiff.job_target(2**240, 2**245, 2**190) == 2**245          # never harder than a share
    vardiff.set_minimum_difficulty_target(2**230)
    vardiff.target = 2**244
    assert vardiff.job_target(2**240, 2**220, 2**190) == 2**230          # miner's minimum difficulty
    before = vardiff.target
    for second in range(13):
        vardiff.record_submission(100 + second * 0.001, 2**200)          # far too fast: harder
    assert vardiff.target < before
    assert vardiff.acceptance_target(vardiff.target, 100.1) == before    # grace: the old target counts
    assert vardiff.acceptance_target(vardiff.target, 200) == vardiff.target
    fixed = Vardiff(1.0, SANE, fixed_target=difficulty_to_target(1))
    assert fixed.job_target(2**240, 2**245, 2**200) == difficulty_to_target(1)  # +D on a real network
    assert fixed.job_target(2**240, 2**245, 2**230) == 2**230            # +D, but never below a block
    assert fixed.job_target(2**240, 2**245, 2**250) == 2**245            # regtest: never easier than a share
    assert not fixed.record_submission(1, 0)


def test_notify_json_is_valid(served):
    miner = served.new_miner()
    raw = json.dumps(miner.notifications[-1][1])
    assert json.loads(raw)[0] == miner.job['job_id']


# --- fuzzing the dispatcher (no sockets: a string transport and a fake clock) -----------------

_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=12)
_METHODS = st.sampled_from(['mining.subscribe', 'mining.authorize', 'mining.submit', 'mining.configure',
                            'mining.suggest_difficulty', 'mining.extranonce.subscribe', 'mining.x', 'x'])
_REQUESTS = st.fixed_dictionaries({'id': _JSON, 'method': _METHODS, 'params': _JSON})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_REQUESTS.map(json.dumps).map(str.encode) | st.binary(max_size=40), min_size=1, max_size=8))
def test_any_input_gets_json_answers(lines):
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport
    from p2pool.work.stratum import StratumFactory
    env = make_bridge()
    factory = StratumFactory(env.bridge, env.net, reactor=Clock())
    connection = factory.buildProtocol(None)
    transport = StringTransport()
    connection.makeConnection(transport)
    for line in lines:
        connection.dataReceived(line.replace(b'\n', b' ') + b'\n')
    for message in transport.value().splitlines():
        decoded = json.loads(message)
        assert 'method' in decoded or ('result' in decoded and 'error' in decoded)


def test_a_worker_port_connection_is_sent_to_directly(served):
    """Through the worker port's switch the transport is Twisted's TCP one, whose write buffer the
    fan-out can see (notify.direct_sender): its notifies go straight to the socket."""
    served.new_miner()
    connections = list(served.server.stratum.connections)
    assert connections and all(connection.direct_send is not None for connection in connections)
