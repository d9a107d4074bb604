"""One TCP port for Stratum and HTTP (worker.md, introduction).

The first byte a client sends decides: `{` starts a Stratum session, anything else
is HTTP served by a twisted.web Site (getwork, long polling and the web API all
hang off the same root Resource). The chosen protocol then takes the connection
over directly. A client that sends nothing within FIRST_BYTE_TIMEOUT is dropped.

HTTP limits: request bodies above `max_body` bytes get `413` and a closed
connection (checked against Content-Length and while chunks arrive), and idle
connections are closed after `timeout` seconds (not while a request such as a
long poll is being answered).

    factory = worker_port_factory(root_resource, stratum_factory)
    port = listen_worker_port(root_resource, stratum_factory, 9332, interface='')

The web API mounts its resources on `root_resource`; getwork is attached to it with
p2pool.work.getwork.attach_getwork(root_resource, getwork_server).

Connection caps (the process has only so many file descriptors, p2pool/app/fdlimit.py):
at most `max_connections` Stratum connections, `web_reserve` more sockets for HTTP
and for clients that have not sent their first byte yet, and `max_per_address`
sockets from one source address. The excess is closed at once, with a log line at
most every LOG_INTERVAL seconds that counts what it left out. None means no cap.
"""
import logging
from typing import Any

from twisted.internet import protocol
from twisted.web import server

from p2pool.util.ratelimit import TokenBucket

log = logging.getLogger(__name__)

FIRST_BYTE_TIMEOUT = 10.0
WEB_RESERVE = 64
LOG_INTERVAL = 10.0
HTTP_IDLE_TIMEOUT = 120.0
MAX_BODY = 1024 * 1024
_TOO_LARGE = (b'HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nContent-Length: 22\r\n'
              b'Connection: close\r\n\r\nrequest body too large')


class LimitedRequest(server.Request):
    """A Request that refuses bodies larger than its site's `max_body`."""

    _too_large = False
    _received = 0

    def _limit(self):
        return getattr(self.channel.site, 'max_body', MAX_BODY) if self.channel is not None else MAX_BODY

    def gotLength(self, length) -> None:
        if length is not None and length > self._limit():
            self._refuse()
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data) -> None:
        if self._too_large:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse()
            return
        super().handleContentChunk(data)

    def process(self) -> None:
        if not self._too_large:
            super().process()

    def _refuse(self) -> None:
        self._too_large = True
        transport: Any = self.channel.transport
        transport.write(_TOO_LARGE)
        transport.loseConnection()


class WorkerSite(server.Site):
    """The HTTP side of the worker port: quiet, with a body limit and an idle timeout."""

    noisy = False
    displayTracebacks = False

    def __init__(self, root, max_body=MAX_BODY, timeout=HTTP_IDLE_TIMEOUT, reactor=None) -> None:
        kwargs = {'timeout': timeout}
        if reactor is not None:
            kwargs['reactor'] = reactor
        super().__init__(root, requestFactory=LimitedRequest, **kwargs)
        self.max_body = max_body


class SwitchProtocol(protocol.Protocol):
    """Waits for the first byte, then hands the connection to Stratum or HTTP."""

    # set by Twisted before connectionMade; the protocol never runs without one
    transport: Any

    def __init__(self, factory, addr) -> None:
        self.factory, self.addr = factory, addr
        self.inner = None
        self.stratum = False
        self._timer = None

    def connectionMade(self) -> None:
        self._timer = self.factory.reactor.callLater(self.factory.first_byte_timeout, self._silent)

    def _silent(self) -> None:
        self._timer = None
        self.transport.abortConnection()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def dataReceived(self, data) -> None:
        if self.inner is not None:
            self.inner.dataReceived(data)
            return
        if not data:
            return
        self._cancel_timer()
        factory = self.factory
        stratum = data[:1] == b'{'
        if stratum and not factory.stratum_allowed(self.addr):
            self.transport.abortConnection()
            return
        inner = (factory.stratum_factory if stratum else factory.site).buildProtocol(self.addr)
        if inner is None:
            self.transport.loseConnection()
            return
        # SwitchProtocol stays the transport's protocol (it forwards), so that it hears the end
        # of the connection and the port's connection counts stay right
        self.inner, self.stratum = inner, stratum
        if stratum:
            factory.stratum_count += 1
        inner.makeConnection(self.transport)
        inner.dataReceived(data)

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self._cancel_timer()
        self.factory.released(self)
        if self.inner is not None:
            self.inner.connectionLost(reason)


class WorkerPortFactory(protocol.ServerFactory):
    noisy = False

    def __init__(self, site, stratum_factory, first_byte_timeout=FIRST_BYTE_TIMEOUT, reactor=None,
                 max_connections=None, max_per_address=None, web_reserve=WEB_RESERVE) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.site, self.stratum_factory = site, stratum_factory
        self.first_byte_timeout, self.reactor = first_byte_timeout, reactor
        self.max_connections, self.max_per_address, self.web_reserve = max_connections, max_per_address, web_reserve
        self.open_count = self.stratum_count = 0
        self.per_address: dict[str, int] = {}
        self.refused = 0                      # since the last refusal log line
        self._log_bucket = TokenBucket(1, 1 / LOG_INTERVAL, reactor)

    def buildProtocol(self, addr) -> Any:
        host = getattr(addr, 'host', '?')
        if self.max_connections is not None and self.open_count >= self.max_connections + self.web_reserve:
            return self._refuse(host, '%d connections open' % self.open_count)
        held = self.per_address.get(host, 0)
        if self.max_per_address is not None and held >= self.max_per_address:
            return self._refuse(host, '%d connections from that address' % held)
        self.open_count += 1
        self.per_address[host] = held + 1
        return SwitchProtocol(self, addr)

    def stratum_allowed(self, addr: Any) -> bool:
        if self.max_connections is None or self.stratum_count < self.max_connections:
            return True
        self._refuse(getattr(addr, 'host', '?'), '%d Stratum connections open' % self.stratum_count)
        return False

    def released(self, connection: SwitchProtocol) -> None:
        """A connection built by buildProtocol ended."""
        self.open_count -= 1
        host = getattr(connection.addr, 'host', '?')
        left = self.per_address.get(host, 1) - 1
        if left > 0:
            self.per_address[host] = left
        else:
            self.per_address.pop(host, None)
        if connection.stratum:
            self.stratum_count -= 1

    def _refuse(self, host: str, why: str) -> None:
        self.refused += 1
        if self._log_bucket.take():
            log.warning('Refused a worker-port connection from %s: %s (limits: %s Stratum, %s per address; '
                        '%d refused since the last such line)', host, why, self.max_connections,
                        self.max_per_address, self.refused)
            self.refused = 0
        return None

    def startFactory(self) -> None:
        self.site.doStart()
        self.stratum_factory.doStart()

    def stopFactory(self) -> None:
        self.site.doStop()
        self.stratum_factory.doStop()


def worker_port_factory(root, stratum_factory, max_body=MAX_BODY, http_timeout=HTTP_IDLE_TIMEOUT,
                        first_byte_timeout=FIRST_BYTE_TIMEOUT, reactor=None, max_connections=None,
                        max_per_address=None, web_reserve=WEB_RESERVE) -> 'WorkerPortFactory':
    """The factory serving Stratum (first byte `{`) and HTTP on `root` (a twisted.web Resource)."""
    site = WorkerSite(root, max_body=max_body, timeout=http_timeout, reactor=reactor)
    return WorkerPortFactory(site, stratum_factory, first_byte_timeout, reactor, max_connections=max_connections,
                             max_per_address=max_per_address, web_reserve=web_reserve)


def listen_worker_port(root, stratum_factory, port, interface='', reactor=None, **options) -> Any:
    """Listen on `port` (0 picks a free one); returns the IListeningPort."""
    if reactor is None:
        from twisted.internet import reactor
    factory = worker_port_factory(root, stratum_factory, reactor=reactor, **options)
    return reactor.listenTCP(port, factory, interface=interface)
