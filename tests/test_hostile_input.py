"""Absurd numbers and hostile text from miners (issue 16 findings 5, 7, 8): clear errors, strict JSON,
rate-limited warnings, never a traceback."""
import json
import logging
import socket
import time

import pytest

from p2pool.bitcoin.data import difficulty_to_target
from p2pool.work.targets import MAX_TARGET
from p2pool.testing.testchain import make_addresses
from p2pool.work import jsonrpc
from p2pool.work.cpuminer import GetworkMiner, StratumMiner
from p2pool.work.username import parse_username
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)
from worker_helpers import make_bridge, start_worker_server, stop_worker_server


def strict_loads(raw):
    """json.loads that refuses NaN and Infinity as a strict parser (JavaScript's JSON.parse) does."""
    def refuse(constant):
        raise ValueError('not JSON: %s' % constant)
    return json.loads(raw, parse_constant=refuse)


@pytest.fixture
def served(reactor):
    env = run_in_reactor(make_bridge)
    env.server = run_in_reactor(start_worker_server, env, share_rate=3.0)
    env.address = make_addresses(env.net, 1, seed=b'miner')[0]
    env.sockets = []
    yield env
    for sock in env.sockets:
        sock.close()
    run_in_reactor(stop_worker_server, env.server)


def stratum_lines(env, *lines, replies=None):
    """Send raw Stratum lines on one connection; the replies (not notifications), strictly parsed."""
    sock = socket.create_connection(('127.0.0.1', env.server.number), timeout=5)
    env.sockets.append(sock)
    sock.sendall(b''.join(line + b'\n' for line in lines))
    wanted = len(lines) if replies is None else replies
    buffer, answers = b'', []
    deadline = time.monotonic() + 5
    while len(answers) < wanted and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
        while b'\n' in buffer:
            line, buffer = buffer.split(b'\n', 1)
            message = strict_loads(line)
            if 'method' not in message:
                answers.append(message)
    return answers


def no_tracebacks(caplog):
    return not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]


# --- finding 5: tiny, huge and nonsense difficulties ---------------------------------------------

def test_difficulty_to_target_clamps_to_the_valid_targets():
    assert difficulty_to_target(1e-300) == difficulty_to_target(5e-324) == MAX_TARGET
    assert difficulty_to_target(float('inf')) == difficulty_to_target(10**400) == 0
    assert difficulty_to_target(1) == 0xffff0000 * 2**192     # §5 unchanged
    for nonsense in (float('nan'), -1.0, -1e-300):
        with pytest.raises(ValueError):
            difficulty_to_target(nonsense)


def test_tiny_username_difficulties_mean_the_easiest_targets():
    name = parse_username('addr+1e-300/1e-300')
    assert name.desired_pseudoshare_target == name.desired_share_target == MAX_TARGET
    env = make_bridge()
    address = make_addresses(env.net, 1, seed=b'miner')[0]
    for suffix in ('+1e-300', '/1e-300', '+1e-300/1e-300', '/1e300'):
        record, _ = env.bridge.get_work(address + suffix)
        low, high = env.net.PARENT.SANE_TARGET_RANGE
        assert low <= record.share_target <= high


def test_stratum_tiny_difficulties_are_clamped_and_nonsense_refused(served, caplog):
    caplog.set_level(logging.DEBUG)
    miner = StratumMiner('127.0.0.1', served.server.number, served.address + '+1e-300')
    served.sockets.append(miner.open().sock)
    assert miner.request('mining.configure', [['minimum-difficulty'], {'minimum-difficulty.value': 1e-300}]) \
        == ({'minimum-difficulty': True}, None)
    assert miner.request('mining.suggest_difficulty', [1e-300]) == (True, None)
    miner.request('mining.subscribe', [])
    assert miner.request('mining.authorize', [miner.username, 'x']) == (True, None)
    job = miner.wait_for_job()
    assert job is not None and miner.difficulty > 0
    nonsense = [b'NaN', b'1e999', b'-1e999', b'-1', b'0', b'1' + b'0' * 400, b'"1"', b'true']
    answers = stratum_lines(served, *(b'{"id":%d,"method":"mining.suggest_difficulty","params":[%s]}' % (n, value)
                                      for n, value in enumerate(nonsense)))
    assert [answer['error']['code'] for answer in answers] == [jsonrpc.INVALID_PARAMS] * 8
    configure = stratum_lines(served, b'{"id":1,"method":"mining.configure","params":[["minimum-difficulty"],'
                                      b'{"minimum-difficulty.value":1e999}]}')
    assert configure[0]['error']['code'] == jsonrpc.INVALID_PARAMS
    assert no_tracebacks(caplog)


# --- finding 8: non-finite JSON-RPC ids ----------------------------------------------------------

@pytest.mark.parametrize('request_id', [b'NaN', b'1e999', b'-Infinity', b'-1e999'])
def test_non_finite_ids_are_answered_in_strict_json(served, request_id):
    answers = stratum_lines(served, b'{"id":%s,"method":"mining.subscribe","params":[]}' % request_id,
                            b'{"id":%s,"method":"no.such.method","params":[]}' % request_id)
    assert [answer['id'] for answer in answers] == [None, None]
    assert answers[0]['result'] and answers[1]['error']['code'] == jsonrpc.METHOD_NOT_FOUND
    miner = GetworkMiner('127.0.0.1', served.server.number, served.address)
    status, _, body = miner.post('/', b'{"id":%s,"method":"getwork","params":[]}' % request_id)
    reply = strict_loads(body)
    assert status == 200 and reply['id'] is None and reply['result']['data']


def test_finite_ids_are_echoed():
    for request_id in (0, 1.5, 'x', None, [1], {'a': 1}):
        assert jsonrpc.parse_request({'id': request_id, 'method': 'm'})[0] == request_id
    assert strict_loads(jsonrpc.encode(jsonrpc.result_object(1, {'rate': float('nan')}))) == \
        {'jsonrpc': '2.0', 'id': 1, 'result': {'rate': None}, 'error': None}


# --- finding 7: unknown-work getwork submissions -------------------------------------------------

def test_unknown_work_warnings_are_rate_limited_per_source(served, caplog):
    miner = GetworkMiner('127.0.0.1', served.server.number, served.address)
    work, _ = miner.getwork()
    data = bytearray(bytes.fromhex(work['data']))
    data[40] ^= 1                                   # a merkle root the node never handed out
    caplog.set_level(logging.WARNING, logger='p2pool.work.getwork')
    for _ in range(30):
        assert miner.submit(bytes(data).hex())[2] == 'unknown-work'
    warnings = [record for record in caplog.records if "Couldn't link" in record.getMessage()]
    assert 1 <= len(warnings) <= 3
    assert '127.0.0.1' in warnings[0].getMessage()
