"""Faults of bitcoind: a stalled RPC, a stopped daemon, garbage answers.

The daemon here is p2pool.testing.jsonrpc_server.JsonRpcTestServer used as a
FAULT-INJECTION DOUBLE (per-method stalls, raw malformed bodies, stop/start on the
same port). The tests marked `bitcoind` repeat the scenarios on the real regtest
bitcoind: stopped and restarted under a running bridge, and stalled behind a
forwarding fault-injection proxy.
"""
import threading
import time

import pytest
from twisted.internet import task

from p2pool.bitcoin import rpc
from p2pool.bitcoin.template import TemplateSource
from p2pool.config import load_network
from p2pool.testing.jsonrpc_server import JsonRpcTestServer
from twisted_helpers import reactor, reactor_thread, run_in_reactor, wait_for  # noqa: F401 (fixture)

STALL = 5.0  # seconds a slow RPC hangs (worker.md fault requirement)


def template_answer(height=102):
    return {'version': 0x20000000, 'previousblockhash': '%064x' % height, 'height': height, 'bits': '207fffff',
            'curtime': 1700000000, 'coinbasevalue': 5000000000, 'transactions': []}


@pytest.fixture
def slow_daemon():
    with JsonRpcTestServer({'getblocktemplate': lambda request: template_answer(),
                            'getblockcount': lambda: 101}) as server:
        yield server


class TickRecorder:
    """A LoopingCall every 10 ms recording when the reactor actually ran it."""

    def __init__(self):
        self.ticks = []
        self.loop = task.LoopingCall(lambda: self.ticks.append(time.monotonic()))

    def start(self):
        self.loop.start(0.01, now=True)  # its Deferred only fires when the loop stops

    def largest_gap(self):
        return max(b - a for a, b in zip(self.ticks, self.ticks[1:]))


def test_a_stalled_rpc_never_blocks_the_reactor(reactor, slow_daemon):
    slow_daemon.delays['getblocktemplate'] = STALL
    client = rpc.RpcClient('127.0.0.1', slow_daemon.port, slow_daemon.user, slow_daemon.password, timeout=30)
    recorder = TickRecorder()
    run_in_reactor(recorder.start)
    pending = []
    started = time.monotonic()
    run_in_reactor(lambda: pending.append(client.call('getblocktemplate', {'mode': 'template'})))
    # Other RPC calls go through on other worker threads while the first one hangs.
    assert run_in_reactor(client.call, 'getblockcount') == 101
    result = run_in_reactor(lambda: pending[0], timeout=STALL + 10)
    run_in_reactor(recorder.loop.stop)
    assert result['height'] == 102 and time.monotonic() - started >= STALL
    # The reactor kept ticking all along: a blocked reactor would show one gap of STALL seconds.
    ticks_during_stall = [t for t in recorder.ticks if started < t < started + STALL]
    assert len(ticks_during_stall) > 10
    assert recorder.largest_gap() < STALL / 2
    run_in_reactor(client.close)


def test_template_source_stays_responsive_while_bitcoind_stalls(reactor, slow_daemon):
    client = rpc.RpcClient('127.0.0.1', slow_daemon.port, slow_daemon.user, slow_daemon.password, timeout=1)
    source = TemplateSource(client, load_network('bsv_regtest'), longpoll=False, retry_interval=0.1)
    run_in_reactor(source.start)
    slow_daemon.delays['getblocktemplate'] = 2  # longer than the 1 s RPC timeout
    recorder = TickRecorder()
    run_in_reactor(recorder.start)
    assert run_in_reactor(source.refresh, timeout=30) is None  # three timed-out attempts
    run_in_reactor(recorder.loop.stop)
    assert source.contact is False and recorder.largest_gap() < 1.0
    slow_daemon.delays.clear()
    wait_for(lambda: source.contact is True, timeout=10)
    run_in_reactor(source.stop)


def test_stopped_bitcoind_is_lost_contact_and_work_resumes_within_five_seconds(reactor, slow_daemon, caplog):
    client = rpc.RpcClient('127.0.0.1', slow_daemon.port, slow_daemon.user, slow_daemon.password, timeout=2)
    source = TemplateSource(client, load_network('bsv_regtest'), longpoll=False)  # default 1 s retry
    first = run_in_reactor(source.start)
    slow_daemon.stop()
    assert run_in_reactor(source.refresh) is None
    assert source.contact is False and 'lost contact with bitcoind' in caplog.text
    assert source.current is first  # old work kept; it turns stale (refusal) after 60 s
    assert source.is_stale(now=first.last_update + 61)
    slow_daemon.handlers['getblocktemplate'] = lambda request: template_answer(103)
    slow_daemon.start()
    restarted = time.monotonic()
    wait_for(lambda: source.current.height == 103, timeout=5)
    assert time.monotonic() - restarted < 5 and 'contact with bitcoind restored' in caplog.text
    run_in_reactor(source.stop)


def test_bitcoind_down_at_start_then_coming_up(reactor, slow_daemon):
    port = slow_daemon.port
    slow_daemon.stop()
    client = rpc.RpcClient('127.0.0.1', port, slow_daemon.user, slow_daemon.password)
    source = TemplateSource(client, load_network('bsv_regtest'), retry_interval=0.1)
    assert run_in_reactor(source.start) is None and source.contact is False and source.is_stale()
    slow_daemon.start()
    wait_for(lambda: source.current is not None, timeout=5)
    run_in_reactor(source.stop)


def test_garbage_answers_are_logged_and_skipped(reactor, slow_daemon, caplog):
    client = rpc.RpcClient('127.0.0.1', slow_daemon.port, slow_daemon.user, slow_daemon.password)
    source = TemplateSource(client, load_network('bsv_regtest'), longpoll=False)
    first = run_in_reactor(source.start)
    for body in (b'<html>busy</html>', b'{"result": {"height": "x"}, "error": null, "id": 1}', b'[]'):
        slow_daemon.raw_replies['getblocktemplate'] = body
        assert run_in_reactor(source.refresh) is None
        assert source.current is first and source.contact is True
    assert caplog.text.count('skipping a malformed block template') == 3
    run_in_reactor(source.stop)


def test_worker_threads_do_not_outlive_close(reactor, slow_daemon):
    client = rpc.RpcClient('127.0.0.1', slow_daemon.port, slow_daemon.user, slow_daemon.password,
                           name='closing-test')
    assert run_in_reactor(client.call, 'getblockcount') == 101
    run_in_reactor(client.close)
    wait_for(lambda: not any(t.name.startswith('closing-test') for t in threading.enumerate()
                             if 'stop' not in t.name), timeout=5)


# --- the real regtest bitcoind -----------------------------------------------------------------

def start_bridge(rpc_port, node, **options):
    from p2pool.bitcoin.daemon import BitcoindBridge
    bridge = BitcoindBridge('127.0.0.1', rpc_port, node.p2p_port, node.user, node.password,
                            load_network('bsv_regtest'), reactor=reactor_thread(), **options)
    run_in_reactor(bridge.start, timeout=30)
    return bridge


@pytest.mark.bitcoind
def test_real_bitcoind_stop_and_start_recovers_without_restarting_us(reactor, fresh_bitcoind, caplog):
    node = fresh_bitcoind
    bridge = start_bridge(node.rpc_port, node)
    try:
        before = bridge.source.current
        node.stop()
        wait_for(lambda: bridge.source.contact is False, timeout=20)
        assert 'lost contact with bitcoind' in caplog.text and bridge.source.current is before
        node.start()
        wait_for(lambda: bridge.source.contact is True, timeout=5)
        new_hash = int(node.mine(1)[0], 16)
        wait_for(lambda: bridge.source.current.previous_block == new_hash, timeout=10)
        assert bridge.p2p.connected
    finally:
        run_in_reactor(bridge.stop)


class ForwardingProxy(JsonRpcTestServer):
    """FAULT-INJECTION DOUBLE: forwards every call to a real bitcoind, stalling chosen methods."""

    def __init__(self, node):
        super().__init__({}, user=node.user, password=node.password)
        from p2pool.testing.regtest import RegtestRpcError
        from p2pool.testing.jsonrpc_server import JsonRpcFault

        def forward(method, *params):
            try:
                return node.rpc(method, *params)
            except RegtestRpcError as e:
                raise JsonRpcFault(e.code, e.rpc_message) from None
        self.fallback = forward


@pytest.mark.bitcoind
def test_real_bitcoind_behind_a_stalling_proxy_never_blocks_the_reactor(reactor, regtest_node):
    with ForwardingProxy(regtest_node) as proxy:
        bridge = start_bridge(proxy.port, regtest_node, longpoll=False)
        try:
            proxy.delays['getblocktemplate'] = STALL
            recorder = TickRecorder()
            run_in_reactor(recorder.start)
            started = time.monotonic()
            new_hash = int(regtest_node.mine(1)[0], 16)  # P2P inv -> refresh -> stalls in the proxy
            wait_for(lambda: bridge.source.current.previous_block == new_hash, timeout=STALL + 15)
            run_in_reactor(recorder.loop.stop)
            assert time.monotonic() - started >= STALL
            assert recorder.largest_gap() < STALL / 2 and bridge.p2p.connected
        finally:
            proxy.delays.clear()
            run_in_reactor(bridge.stop)
