"""Fuzzing (issue 16 finding 11): hypothesis mutates real inputs and feeds them to the real code.

* Share wires: the golden shares of tests/vectors/golden_shares.json (formats 17 and 35, SHA256d
  and scrypt) with bytes flipped, replaced, inserted, cut or appended, through the decoder
  (Share.from_wire) and, when they still decode, the full check against their real ancestors
  (verify.check_share). The only failures allowed are ShareDecodeError and its subclasses
  (ShareMisbehaviour, ShareInvalid): anything else would be a crash on a peer's bytes.
* getwork bodies: a real getwork request and a real solution submission (the A6 vectors),
  mutated the same way, POSTed to the worker port (Stratum and HTTP on one socket): every
  answer is HTTP 200 with a strict JSON-RPC object, nothing is logged as an error, and the
  port still serves work afterwards.

Bounded for CI: a fixed number of examples and a deadline per example.
"""
import json
import logging
import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pool.config import load_network
from p2pool.sharechain import verify
from p2pool.sharechain.share import Share, ShareDecodeError
from p2pool.sharechain.tracker import Tracker
from p2pool.testing.testchain import make_addresses
from p2pool.work.cpuminer import GetworkMiner
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)
from worker_helpers import make_bridge, start_worker_server, stop_worker_server

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'vectors')
FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


def _golden_chains():
    with open(os.path.join(VECTORS, 'golden_shares.json')) as f:
        chains = json.load(f)['chains']
    loaded = []
    for chain in chains:
        net = load_network(chain['network'])
        wires = [bytes.fromhex(record['wire']) for record in chain['shares']]
        loaded.append((net, wires))
    return loaded


GOLDEN = _golden_chains()


def mutated(data, edits):
    """`data` with the edits applied: (kind, position, byte) with kind flip/set/insert/delete/cut/append."""
    data = bytearray(data)
    for kind, position, value in edits:
        at = position % (len(data) + 1)
        if kind == 'flip' and data:
            data[at % len(data)] ^= 1 << (value % 8)
        elif kind == 'set' and data:
            data[at % len(data)] = value
        elif kind == 'insert':
            data[at:at] = bytes([value])
        elif kind == 'delete' and data:
            del data[at % len(data)]
        elif kind == 'cut':
            del data[at:]
        elif kind == 'append':
            data += bytes([value]) * (1 + value % 64)
    return bytes(data)


edits = st.lists(st.tuples(st.sampled_from(['flip', 'set', 'insert', 'delete', 'cut', 'append']),
                           st.integers(0, 2**16), st.integers(0, 255)), min_size=1, max_size=4)


@FUZZ
@given(chain=st.integers(0, len(GOLDEN) - 1), index=st.integers(1, 5), changes=edits)
def test_mutated_golden_shares_fail_only_with_decode_errors(chain, index, changes):
    net, wires = GOLDEN[chain]
    tracker = Tracker()
    for wire in wires[:index]:
        tracker.add(Share.from_wire(net, wire))
    raw = mutated(wires[index], changes)
    try:
        share = Share.from_wire(net, raw)
    except ShareDecodeError:
        return
    if share.hash in tracker.items:
        return
    tracker.add(share)
    try:
        verify.check_share(tracker, share, now=share.timestamp)
    except ShareDecodeError:
        pass


def test_the_unmutated_golden_shares_pass_the_full_check():
    for net, wires in GOLDEN:
        tracker = Tracker()
        for wire in wires:
            share = Share.from_wire(net, wire)
            tracker.add(share)
            verify.check_share(tracker, share, now=share.timestamp)


# --- getwork bodies through the worker port -----------------------------------------------------

with open(os.path.join(VECTORS, 'getwork_a6.json')) as f:
    _A6 = json.load(f)
REAL_BODIES = [
    b'{"method": "getwork", "params": [], "id": 0}',
    json.dumps({'method': 'getwork', 'params': [_A6['replies'][0]['data']], 'id': 1}).encode(),
    json.dumps({'method': 'getwork', 'params': [_A6['replies'][1]['data']], 'id': 'x'}).encode(),
]


@pytest.fixture(scope='module')
def worker_port(reactor):  # noqa: F811
    env = run_in_reactor(make_bridge)
    server = run_in_reactor(start_worker_server, env)
    env.number = server.number
    env.address = make_addresses(env.net, 1, seed=b'miner')[0]
    yield env
    run_in_reactor(stop_worker_server, server)


def post(port, body, path=b'/'):
    """One raw HTTP POST (so that any bytes can be sent); (status line, body)."""
    request = (b'POST ' + path + b' HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'
               b'Authorization: Basic YWRkcjp4\r\nConnection: close\r\nContent-Length: %d\r\n\r\n' % len(body)
               + body)
    with socket.create_connection(('127.0.0.1', port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, payload = b''.join(chunks).partition(b'\r\n\r\n')
    return head.split(b'\r\n', 1)[0], payload


def strict_json(raw):
    def refuse(constant):
        raise ValueError('not strict JSON: %s' % constant)
    return json.loads(raw, parse_constant=refuse)


@FUZZ
@given(base=st.sampled_from(REAL_BODIES), changes=edits)
def test_mutated_getwork_bodies_get_a_json_rpc_answer(worker_port, caplog, base, changes):
    caplog.set_level(logging.WARNING)
    caplog.clear()
    body = mutated(base, changes)
    status, payload = post(worker_port.number, body)
    assert status == b'HTTP/1.1 200 OK', (body, status, payload[:200])
    reply = strict_json(payload)
    assert set(reply) == {'jsonrpc', 'id', 'result', 'error'}, reply
    assert (reply['result'] is None) != (reply['error'] is None), reply
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info], \
        [record.getMessage() for record in caplog.records]


def test_the_worker_port_still_serves_work_after_the_fuzzing(worker_port):
    miner = GetworkMiner('127.0.0.1', worker_port.number, worker_port.address)
    work, _ = miner.getwork()
    assert len(work['data']) == 256
