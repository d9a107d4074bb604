"""Worker-port connection caps and the descriptor limit, over real loopback sockets (issue 16, finding 1).

The floods come from many 127.0.x.y source addresses (all of 127.0.0.0/8 is this host), so that
both the total cap and the per-address cap are reached.
"""
import logging
import socket
import time
import urllib.request

import pytest

from p2pool.app import fdlimit
from p2pool.testing.testchain import make_addresses
from p2pool.work.cpuminer import StratumMiner
from node_processes import node_factory, wait_until  # noqa: F401 (fixture)
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)
from worker_helpers import make_bridge, start_worker_server, stop_worker_server

SUBSCRIBE = b'{"id":1,"method":"mining.subscribe","params":[]}\n'


def flood(port, count, sources, payload=SUBSCRIBE):
    """`count` connections spread over `sources` that each send `payload`; the open sockets."""
    opened = []
    for index in range(count):
        try:
            sock = socket.create_connection(('127.0.0.1', port), timeout=5,
                                            source_address=(sources[index % len(sources)], 0))
            sock.sendall(payload)
            opened.append(sock)
        except OSError:
            pass     # refused at once
    return opened


def still_open(socks, settle=1.0):
    """The sockets the server has not closed after `settle` seconds."""
    time.sleep(settle)
    alive = []
    for sock in socks:
        sock.setblocking(False)
        try:
            data = sock.recv(65536)
            if data:
                alive.append(sock)
        except BlockingIOError:
            alive.append(sock)
        except OSError:
            pass
    return alive


@pytest.fixture
def capped(reactor):
    env = run_in_reactor(make_bridge)
    env.server = run_in_reactor(start_worker_server, env, switch_options={
        'max_connections': 20, 'max_per_address': 8, 'web_reserve': 4})
    env.address = make_addresses(env.net, 1, seed=b'miner')[0]
    yield env
    run_in_reactor(stop_worker_server, env.server)


def test_a_flood_is_capped_and_established_miners_keep_getting_work(capped, caplog):
    caplog.set_level(logging.WARNING, logger='p2pool.work.switch')
    port = capped.server.number
    miner = StratumMiner('127.0.0.1', port, capped.address + '.rig').connect()
    sources = ['127.0.1.%d' % i for i in range(1, 11)]
    socks = flood(port, 300, sources)
    try:
        alive = still_open(socks)
        assert len(alive) <= 20 + 4 - 1                  # total cap (stratum + web reserve) less our miner
        stratum_open = run_in_reactor(lambda: len(capped.server.stratum.connections))
        assert stratum_open <= 20
        one_source = flood(port, 30, ['127.0.2.1'])
        assert len(still_open(one_source, 0.5)) <= 8 or len(alive) >= 19   # per address, unless full anyway
        for sock in one_source:
            sock.close()

        jobs = miner.jobs_received
        run_in_reactor(capped.bridge.bump, 'new block')
        deadline = time.monotonic() + 10
        while miner.jobs_received == jobs and time.monotonic() < deadline:
            miner.read_message(0.2)
        assert miner.jobs_received > jobs                 # the established miner still gets work
        refusals = [r for r in caplog.records if 'Refused a worker-port connection' in r.getMessage()]
        assert 1 <= len(refusals) <= 3                   # one line per LOG_INTERVAL, with a count
    finally:
        for sock in socks:
            sock.close()
        miner.close()
    # the slots come back when the flood goes
    wait_for(lambda: capped.server.port.factory.open_count == 0, 10)


def test_authorized_but_never_subscribed_connections_time_out_quickly(reactor):
    env = run_in_reactor(make_bridge)
    server = run_in_reactor(start_worker_server, env, handshake_timeout=0.5, idle_timeout=600.0)
    try:
        lingering = StratumMiner('127.0.0.1', server.number, make_addresses(env.net, 1)[0]).open()
        lingering.request('mining.authorize', [make_addresses(env.net, 1)[0], 'x'])
        deadline = time.monotonic() + 10
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                lingering.read_message(0.2)
            except (ConnectionError, OSError):
                closed = True
        assert closed, 'an authorized connection that never subscribed held its slot'
        good = StratumMiner('127.0.0.1', server.number, make_addresses(env.net, 1)[0])
        good.open()
        good.request('mining.authorize', [make_addresses(env.net, 1)[0], 'x'])   # authorize first is fine
        good.request('mining.subscribe', [])
        good.wait_for_job()
        time.sleep(1.0)
        good.poll()                                     # still connected after the handshake timeout
        good.close()
    finally:
        run_in_reactor(stop_worker_server, server)


def test_default_caps_leave_room_under_the_limit():
    reserved = fdlimit.reserved_descriptors(40, 6)
    assert fdlimit.default_max_miner_conns(1024, 40, 6) == 1024 - reserved
    assert fdlimit.default_max_miner_conns(100, 40, 6) == fdlimit.MIN_MINER_CONNS
    assert fdlimit.default_per_address(768) == 384


def test_a_node_with_few_descriptors_survives_a_flood(node_factory, regtest_node):  # noqa: F811
    limit = 512
    node = node_factory(regtest_node, name='flooded', file_limit=limit).start().wait_ready()
    cap = fdlimit.default_max_miner_conns(limit, 40, 6)
    assert 'File descriptor limit %d: up to %d Stratum connections' % (limit, cap) in node.console()
    address = regtest_node.wallet_address()
    miner = StratumMiner('127.0.0.1', node.worker_port, address).connect()
    socks = flood(node.worker_port, limit + 100, ['127.0.3.%d' % i for i in range(1, 9)],
                  SUBSCRIBE + b'{"id":2,"method":"mining.authorize","params":["%s","x"]}\n' % address.encode())
    try:
        alive = still_open(socks, 2.0)
        previous = miner.job['prevhash']
        regtest_node.mine(1)            # the node must reach bitcoind for the new template
        deadline = time.monotonic() + 30
        while miner.job['prevhash'] == previous and time.monotonic() < deadline:
            miner.read_message(0.5)
        assert miner.job['prevhash'] != previous, 'no new work after a block:\n' + node.tail()
        with urllib.request.urlopen(node.url('/local_stats'), timeout=10) as answer:   # the web answers
            assert answer.status == 200
        assert 'Too many open files' not in node.console()
        assert len(alive) < cap + fdlimit.WEB_RESERVE
        assert node.console().count('Refused a worker-port connection') <= 3
    finally:
        for sock in socks:
            sock.close()
        miner.close()
    assert node.stop() == 0


def test_a_new_block_asks_the_bridge_once_per_username_and_every_miner_gets_the_job(capped):
    """One job id for the whole new-work event (jobs.py); each miner's submission on it is its own
    connection's job."""
    miners = [StratumMiner('127.0.0.1', capped.server.number, capped.address + '.rig').connect() for _ in range(5)]
    try:
        calls = []
        original = capped.bridge.get_stratum_work

        def counting(username):
            calls.append(username.raw)
            return original(username)
        capped.bridge.get_stratum_work = counting
        run_in_reactor(capped.bridge.bump, 'new block')
        jobs = []
        for miner in miners:
            before = miner.jobs_received
            deadline = time.monotonic() + 10
            while miner.jobs_received == before and time.monotonic() < deadline:
                miner.read_message(0.2)
            jobs.append(miner.job)
        assert len(calls) == 1                            # one username: one piece of work for all
        assert len({job['job_id'] for job in jobs}) == 1 and len({job['coinb1'] for job in jobs}) == 1
        for miner, job in zip(miners, jobs):
            assert miner.job is job and job['clean'] is False   # same parent block: no restart
        for miner, job in zip(miners[:2], jobs):
            assert miner.submit(job, *miner.find(job)) == (True, None)
    finally:
        capped.bridge.get_stratum_work = original
        for miner in miners:
            miner.close()
