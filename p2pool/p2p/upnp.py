"""UPnP mapping of the P2P port on the local Internet gateway (p2p.md §8), with miniupnpc.

Optional and best effort: PortMapper asks the gateway to forward the listening
port to this host at start and then after every Exp(mean 120 s) delay, so a
gateway that reboots or forgets the mapping gets it back. miniupnpc blocks (device
discovery alone waits for answers), so each attempt runs in the reactor's thread
pool. Nothing here is ever fatal: a missing library, no gateway, a refusal — each
failed attempt is exactly one log line (a warning the first time a given failure
is seen, debug when it repeats) and the node carries on.

    mapper = PortMapper(9333)
    mapper.start()
    ...
    mapper.stop()
"""
import logging
import random
from typing import Any

log = logging.getLogger(__name__)

MEAN_INTERVAL = 120.0
DISCOVER_DELAY_MS = 2000
DESCRIPTION = 'p2pool'


class UPnPError(Exception):
    """A port-mapping attempt failed (the message says why, in one line)."""


def _default_upnp():
    try:
        import miniupnpc
    except ImportError:
        raise UPnPError('miniupnpc is not installed') from None
    return miniupnpc.UPnP()


def map_port(port, upnp_factory=_default_upnp, description=DESCRIPTION, discover_delay_ms=DISCOVER_DELAY_MS) -> str:
    """Blocking: map TCP `port` of the gateway to the same port of this host.

    Returns what was done ('mapped to LAN-IP' or 'already mapped to LAN-IP');
    raises UPnPError for every failure, whatever miniupnpc raised.
    """
    try:
        upnp = upnp_factory()
        upnp.discoverdelay = discover_delay_ms
        if not upnp.discover():
            raise UPnPError('no UPnP device found')
        upnp.selectigd()
        lan_address = upnp.lanaddr
        existing = upnp.getspecificportmapping(port, 'TCP')
        if existing is not None and tuple(existing[:2]) == (lan_address, port):
            return 'already mapped to %s' % lan_address
        if not upnp.addportmapping(port, 'TCP', lan_address, port, description, ''):
            raise UPnPError('the gateway refused the mapping')
        return 'mapped to %s' % lan_address
    except UPnPError:
        raise
    except Exception as e:  # miniupnpc raises bare Exceptions ('Success', 'No UPnP device discovered')
        raise UPnPError('%s: %s' % (type(e).__name__, e) if str(e) else type(e).__name__) from None


class PortMapper:
    """Keeps the P2P port mapped while started (see the module docstring)."""

    def __init__(self, port, reactor=None, rng=None, mean_interval=MEAN_INTERVAL, run_in_thread=None,
                 map_fn=map_port) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.port = port
        self.reactor = reactor
        self.rng = rng or random.Random()
        self.mean_interval = mean_interval
        self.map_fn = map_fn
        self.run_in_thread = run_in_thread or self._in_thread_pool
        self.running = False
        self.attempts = self.failures = 0
        self._timer = None
        self._seen_failures: set[Any] = set()
        self._last_result = None

    def _in_thread_pool(self, fn, *args):
        from twisted.internet import threads
        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), fn, *args)

    def start(self) -> None:
        self.running = True
        self._attempt()

    def stop(self) -> None:
        self.running = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _attempt(self) -> None:
        self._timer = None
        if not self.running:
            return
        self.attempts += 1
        try:
            d = self.run_in_thread(self.map_fn, self.port)
        except Exception as e:  # e.g. the thread pool is shutting down
            self._failed_with(str(e) or type(e).__name__)
            self._schedule()
            return
        d.addCallbacks(self._mapped, self._failed)
        d.addBoth(self._schedule)

    def _mapped(self, result) -> None:
        level = logging.INFO if result != self._last_result else logging.DEBUG
        self._last_result = result
        log.log(level, 'UPnP: port %d %s', self.port, result)

    def _failed(self, failure) -> None:
        self._failed_with(failure.getErrorMessage())

    def _failed_with(self, message) -> None:
        self.failures += 1
        self._last_result = None
        level = logging.WARNING if message not in self._seen_failures else logging.DEBUG
        self._seen_failures.add(message)
        log.log(level, 'UPnP: could not map port %d: %s', self.port, message)

    def _schedule(self, _result=None) -> None:
        if self.running:
            self._timer = self.reactor.callLater(self.rng.expovariate(1 / self.mean_interval), self._attempt)
