"""getwork: the A6 encoding vectors, and the HTTP server (work, submissions, long polling, bad input)."""
import json
import os
import socket
import threading

import pytest

from p2pool.bitcoin.data import header_type, target_to_bits
from p2pool.testing.testchain import make_addresses
from p2pool.work.cpuminer import GetworkMiner
from p2pool.work.getwork import HASH1, GetworkError, decode_data, decode_target, encode_work, swap4
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)
from worker_helpers import make_bridge, start_worker_server, stop_worker_server

with open(os.path.join(os.path.dirname(__file__), 'vectors', 'getwork_a6.json')) as f:
    A6 = json.load(f)


# --- A6 vectors -----------------------------------------------------------------------

@pytest.mark.parametrize('index', range(3))
def test_a6_decode_and_reencode(index):
    reply, expected = A6['replies'][index], A6['decoded'][index]
    header = decode_data(reply['data'])
    assert header == {'version': expected['version'], 'previous_block': int(expected['previous_block'], 16),
                      'merkle_root': int(expected['merkle_root'], 16), 'timestamp': expected['timestamp'],
                      'bits': int(expected['bits'], 16), 'nonce': expected['nonce']}
    target = decode_target(reply['target'])
    assert target == int(expected['target'], 16)
    extra = {key: value for key, value in reply.items() if key not in ('data', 'hash1', 'target', 'midstate')}
    again = encode_work(header, target, extra=extra)
    assert again['data'] == reply['data'] and again['hash1'] == reply['hash1'] == HASH1
    assert again['target'] == reply['target']
    if 'midstate' in reply:
        assert again['midstate'] == reply['midstate']
    assert all(again[key] == value for key, value in extra.items())   # extra keys pass through
    assert 'identifier' not in again


def test_a6_encoding_round_trip():
    values = A6['round_trip']
    share_target = int(values['share_target'], 16)
    assert '%08x' % target_to_bits(share_target) == values['bits']
    header = {'version': values['version'], 'previous_block': int(values['previous_block'], 16),
              'merkle_root': int(values['merkle_root'], 16), 'timestamp': values['timestamp'],
              'bits': int(values['bits'], 16), 'nonce': 0}
    work = encode_work(header, share_target, identifier=7)
    assert decode_data(work['data']) == header and decode_target(work['target']) == share_target
    assert len(work['data']) == 256 and work['identifier'] == '7' and work['submitold'] is True


@pytest.mark.parametrize('bad', ['zz', '00' * 79, 12, '0' * 161])
def test_decode_refuses_bad_data(bad):
    with pytest.raises(GetworkError):
        decode_data(bad)


def test_swap4():
    assert swap4(bytes(range(8))) == bytes([3, 2, 1, 0, 7, 6, 5, 4])


# --- the HTTP server ------------------------------------------------------------------------

@pytest.fixture
def served(reactor):
    env = run_in_reactor(make_bridge)
    server = run_in_reactor(start_worker_server, env)
    env.server, env.address = server, make_addresses(env.net, 1, seed=b'miner')[0]
    env.miner = GetworkMiner('127.0.0.1', server.number, env.address + '.gw')
    yield env
    run_in_reactor(stop_worker_server, server)


def raw_http(port, request_bytes, timeout=5):
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as sock:
        sock.sendall(request_bytes)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)


def test_work_and_headers(served):
    work, headers = served.miner.getwork()
    assert set(work) == {'data', 'hash1', 'target', 'midstate', 'identifier', 'submitold'}
    assert headers['x-long-polling'] == '/long-polling' and headers['x-roll-ntime'] == 'expire=100'
    assert headers['x-is-p2pool'] == 'true'
    assert headers['x-stratum'] == 'stratum+tcp://127.0.0.1:%d' % served.server.number
    assert headers['content-type'] == 'application/json'
    jephis = GetworkMiner('127.0.0.1', served.server.number, served.address, user_agent='Jephis PIC Miner')
    assert set(jephis.getwork()[0]) == {'data', 'hash1', 'target', 'midstate'}


def test_solution_is_accepted_and_becomes_a_share(served):
    work, _ = served.miner.getwork()
    data = served.miner.solve(work)
    result, error, reason = served.miner.submit(data)
    assert (result, error, reason) == (True, None, None)
    assert len(served.blocks) == 1    # on regtest every pseudoshare at this target is a block
    assert served.shares and served.shares[0][0].payout_address == served.address


def test_unknown_stale_and_out_of_range_submissions(served):
    work, _ = served.miner.getwork()
    data = served.miner.solve(work)
    unknown = bytearray(bytes.fromhex(data))
    unknown[40] ^= 1                                  # another merkle root
    assert served.miner.submit(bytes(unknown).hex()) == (False, None, 'unknown-work')
    header = decode_data(data)
    late = dict(header, timestamp=header['timestamp'] + 10**6)
    late_data = swap4(header_type.pack(late)).hex()
    assert served.miner.submit(late_data)[2] == 'ntime-out-of-range'
    run_in_reactor(served.bridge.bump, 'new block')
    assert served.miner.submit(data) == (False, None, 'stale')


def test_bad_requests(served):
    miner = served.miner
    assert miner.call('getblocktemplate', [{}])[0]['error']['code'] == -32601
    assert miner.call('mining.subscribe', [])[0]['error']['code'] == -32601
    assert miner.call('getwork', ['not hex'])[0]['error']['code'] == -32602
    assert miner.call('getwork', [12])[0]['error']['code'] == -32602
    status, _, body = miner.post('/', '{"id": 1, "method": "getwork", "params": {}}')
    assert status == 200 and json.loads(body)['error']['code'] == -32600
    status, _, body = miner.post('/', '{not json')
    reply = json.loads(body)
    assert reply['error']['code'] == -32700 and reply['id'] is None and reply['result'] is None
    assert miner.getwork()[0]['data']                 # still serving


def test_oversize_body_is_refused(served):
    answer = raw_http(served.server.number, b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n'
                      + b'x' * 1000)
    assert answer.startswith(b'HTTP/1.1 413')
    chunked = (b'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
               + (b'100000\r\n' + b'x' * 0x100000 + b'\r\n') * 2)
    assert raw_http(served.server.number, chunked).startswith(b'HTTP/1.1 413')
    assert served.miner.getwork()[0]['data']


def test_get_redirects_to_the_dashboard(served):
    status, headers, _ = served.miner.post('/', None, method='GET')
    assert status == 302 and headers['location'] == '/static/'


def test_refusal(served):
    def lose_contact():
        served.source.current = None
    run_in_reactor(lose_contact)
    reply, _ = served.miner.call('getwork', [])
    assert reply['error'] == {'code': -12345, 'message': 'lost contact with bitcoind', 'data': None}


def test_long_polling(served):
    answers = []

    def long_poll():
        answers.append(served.miner.getwork('/long-polling'))

    def waiting():
        return len(served.server.getwork._waiters) == 1

    thread = threading.Thread(target=long_poll)
    thread.start()
    wait_for(waiting)                     # first request: waits for new work
    assert answers == []
    run_in_reactor(served.bridge.bump, 'new block')
    thread.join(10)
    (work, headers), = answers
    assert work['identifier'] == '1'
    run_in_reactor(served.bridge.bump, 'another block')        # counter moved past what we saw
    work, _ = served.miner.getwork('/long-polling')            # answered at once
    assert work['identifier'] == '2'
    answers.clear()
    thread = threading.Thread(target=lambda: answers.append(served.miner.post('/long-polling', None, method='GET')))
    thread.start()                        # a GET long poll with nothing new: waits again
    wait_for(waiting)
    run_in_reactor(served.bridge.bump, 'third block')
    thread.join(10)
    (status, _, body), = answers
    assert status == 200 and json.loads(body)['result']['identifier'] == '3'


def test_long_poll_client_that_goes_away_is_forgotten(served):
    with socket.create_connection(('127.0.0.1', served.server.number)) as sock:
        sock.sendall(b'GET /long-polling HTTP/1.1\r\nHost: x\r\n\r\n')
        wait_for(lambda: len(served.server.getwork._waiters) == 1)
    wait_for(lambda: len(served.server.getwork._waiters) == 0)
