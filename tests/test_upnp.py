"""UPnP port mapping (p2p.md §8): every failure is one log line and never fatal."""
import logging
import random

import pytest
from twisted.internet import defer, task

from p2pool.p2p import upnp
from p2pool.p2p.upnp import PortMapper, UPnPError, map_port


class FakeGateway:
    """Stands in for miniupnpc.UPnP; `fail_at` names the call that raises like miniupnpc does."""

    def __init__(self, devices=1, fail_at=None, existing=None, accept=True):
        self.devices, self.fail_at, self.existing, self.accept = devices, fail_at, existing, accept
        self.lanaddr = '192.168.1.20'
        self.discoverdelay = None
        self.added = []

    def _maybe_fail(self, name):
        if self.fail_at == name:
            raise Exception('No UPnP device discovered' if name == 'selectigd' else 'Success')

    def discover(self):
        self._maybe_fail('discover')
        return self.devices

    def selectigd(self):
        self._maybe_fail('selectigd')

    def getspecificportmapping(self, port, protocol):
        self._maybe_fail('getspecificportmapping')
        return self.existing

    def addportmapping(self, *args):
        self._maybe_fail('addportmapping')
        self.added.append(args)
        return self.accept


def synchronous(fn, *args):
    return defer.maybeDeferred(fn, *args)


def test_map_port_adds_a_mapping_to_the_lan_address():
    gateway = FakeGateway()
    assert map_port(9333, lambda: gateway) == 'mapped to 192.168.1.20'
    assert gateway.added == [(9333, 'TCP', '192.168.1.20', 9333, 'p2pool', '')]
    assert gateway.discoverdelay == upnp.DISCOVER_DELAY_MS


def test_an_existing_mapping_is_left_alone():
    gateway = FakeGateway(existing=('192.168.1.20', 9333, 'p2pool', True, 0))
    assert map_port(9333, lambda: gateway) == 'already mapped to 192.168.1.20'
    assert gateway.added == []


@pytest.mark.parametrize('gateway, message', [
    (FakeGateway(devices=0), 'no UPnP device found'),
    (FakeGateway(fail_at='discover'), 'Exception: Success'),
    (FakeGateway(fail_at='selectigd'), 'Exception: No UPnP device discovered'),
    (FakeGateway(fail_at='addportmapping'), 'Exception: Success'),
    (FakeGateway(accept=False), 'the gateway refused the mapping'),
])
def test_every_failure_becomes_an_upnp_error(gateway, message):
    with pytest.raises(UPnPError, match=message):
        map_port(9333, lambda: gateway)


def test_a_missing_library_is_an_upnp_error(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_miniupnpc(name, *args, **kwargs):
        if name == 'miniupnpc':
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, '__import__', no_miniupnpc)
    with pytest.raises(UPnPError, match='not installed'):
        map_port(9333)


def upnp_records(caplog):
    return [r for r in caplog.records if r.name == 'p2pool.p2p.upnp']


def test_missing_gateway_is_one_log_line_and_retried(caplog):
    caplog.set_level(logging.DEBUG, logger='p2pool.p2p.upnp')
    clock = task.Clock()
    mapper = PortMapper(9333, reactor=clock, rng=random.Random(1), run_in_thread=synchronous,
                        map_fn=lambda port: map_port(port, lambda: FakeGateway(fail_at='selectigd')))
    mapper.start()
    records = upnp_records(caplog)
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert records[0].getMessage() == ('UPnP: could not map port 9333: '
                                       'Exception: No UPnP device discovered')
    assert records[0].exc_info is None
    assert mapper.failures == 1 and mapper.running
    clock.advance(10 * upnp.MEAN_INTERVAL)  # retried: the same failure again, at debug level
    records = upnp_records(caplog)
    assert mapper.attempts >= 2 and len(records) == mapper.attempts
    assert all(r.levelno == logging.DEBUG for r in records[1:])
    mapper.stop()
    assert not clock.getDelayedCalls()


def test_a_mapping_is_logged_and_refreshed(caplog):
    caplog.set_level(logging.DEBUG, logger='p2pool.p2p.upnp')
    clock = task.Clock()
    gateway = FakeGateway()
    mapper = PortMapper(9333, reactor=clock, rng=random.Random(2), run_in_thread=synchronous,
                        map_fn=lambda port: map_port(port, lambda: gateway))
    mapper.start()
    assert [r.getMessage() for r in upnp_records(caplog)] == ['UPnP: port 9333 mapped to 192.168.1.20']
    clock.advance(10 * upnp.MEAN_INTERVAL)
    assert len(gateway.added) == mapper.attempts >= 2
    mapper.stop()


def test_a_thread_pool_refusal_is_a_log_line(caplog):
    caplog.set_level(logging.DEBUG, logger='p2pool.p2p.upnp')

    def refuse(fn, *args):
        raise RuntimeError('thread pool stopped')
    mapper = PortMapper(9333, reactor=task.Clock(), run_in_thread=refuse)
    mapper.start()
    assert [r.getMessage() for r in upnp_records(caplog)] == ['UPnP: could not map port 9333: thread pool stopped']
    mapper.stop()


def test_real_thread_pool_run(caplog):
    """The default runner: the attempt runs in the reactor's thread pool and reports back."""
    from twisted_helpers import run_in_reactor
    caplog.set_level(logging.DEBUG, logger='p2pool.p2p.upnp')
    results = []

    def start():
        from twisted.internet import reactor
        mapper = PortMapper(9333, reactor=reactor, map_fn=lambda port: 'mapped to 10.0.0.2')
        d = mapper._in_thread_pool(mapper.map_fn, 9333)
        d.addCallback(results.append)
        return d
    run_in_reactor(start)
    assert results == ['mapped to 10.0.0.2']
