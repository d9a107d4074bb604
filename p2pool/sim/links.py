"""In-memory TCP between simulated nodes, with latency, bandwidth and loss.

SimNetwork stands in for the internet: `listen` and `connect` give each node's
real Twisted protocols (P2PNode's NodePeer) a transport whose bytes arrive at the
other end after the link's delay. What is modelled, per direction of a connection:

* latency: one-way delay of the host pair, log-normal with the given median and
  spread (sigma of ln), drawn once per pair from the seed (stable for a run);
* bandwidth: each host has one uplink of `bandwidth` bytes/s; writes queue on it;
* loss: with probability `loss` a write needs a retransmission and arrives one
  retransmission timeout later (max(200 ms, 2 x RTT), Linux's floor); TCP never
  loses or reorders bytes, so neither does this;
* set-up: the client's connectionMade after one round trip, the server's half a
  round trip later; an address nobody listens on fails after the connect timeout.

NodeReactor is what one node sees: the shared VirtualClock's callLater/seconds
plus listenTCP/connectTCP bound to its own host.
"""
from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, error
from twisted.internet.address import IPv4Address
from twisted.python import failure

from p2pool.sim import clock as _clock
from p2pool.sim.clock import DelayedCall, VirtualClock

MIN_RTO = 0.2


class PyInbox:
    """The receiving end of one direction of a connection: inbox(data) hands the bytes that
    arrive to `receiver` (the protocol's dataReceived) unless the endpoint was closed meanwhile."""

    __slots__ = ('receiver', 'closed')

    def __init__(self) -> None:
        self.receiver: Callable[[bytes], Any] | None = None
        self.closed = False

    def __call__(self, data: bytes) -> None:
        if not self.closed and self.receiver is not None:
            self.receiver(data)


class PyUplink:
    """A host's uplink, shared by all its connections: when it is free to send again."""

    __slots__ = ('free_at', 'bytes_sent')

    def __init__(self) -> None:
        self.free_at = 0.0
        self.bytes_sent = 0


class PyLink:
    """The sending half of one direction of a connection: write(data) puts the bytes on the host's
    uplink after what it is sending already and queues their arrival at the other end's inbox a
    one-way delay later (a retransmitted write a retransmission timeout later), never before an
    earlier write's: TCP neither loses nor reorders bytes."""

    __slots__ = ('clock', 'uplink', 'one_way', 'bandwidth', 'draw_loss', 'inbox', 'closed', 'last_arrival')

    def __init__(self, clock: VirtualClock, uplink: PyUplink, one_way: float, bandwidth: float,
                 draw_loss: Callable[[], bool] | None) -> None:
        self.clock, self.uplink, self.one_way, self.bandwidth = clock, uplink, one_way, bandwidth
        self.draw_loss = draw_loss
        self.inbox: Any = None
        self.closed = False
        self.last_arrival = 0.0

    def write(self, data: bytes) -> None:
        if self.closed or self.inbox is None:
            return
        size = len(data)
        uplink = self.uplink
        uplink.bytes_sent += size
        start, now = uplink.free_at, self.clock.now
        if start < now:
            start = now
        sent = uplink.free_at = start + size / self.bandwidth
        if self.draw_loss is not None and self.draw_loss():
            arrival = sent + (self.one_way + max(MIN_RTO, 4 * self.one_way))
        else:
            arrival = sent + self.one_way
        if arrival < self.last_arrival:
            arrival = self.last_arrival
        self.last_arrival = arrival
        self.clock.deliver_at(arrival, self.inbox, data)


# The C versions (p2pool/sim/_clock.c) do the same without a Python frame per message.
Inbox: Any = PyInbox if _clock._clock_c is None else _clock._clock_c.Inbox
Uplink: Any = PyUplink if _clock._clock_c is None else _clock._clock_c.Uplink
Link: Any = PyLink if _clock._clock_c is None else _clock._clock_c.Link


@dataclass
class LinkModel:
    latency_ms: float = 100.0       # median one-way delay between two hosts
    latency_spread: float = 0.5     # sigma of ln(delay); 0: every link has the median
    bandwidth: float = 12.5e6       # bytes/s of each host's uplink (100 Mbit/s)
    loss: float = 0.0               # chance that a write is retransmitted once
    seed: int = 1

    def one_way(self, a: str, b: str) -> float:
        """Seconds from host a to host b (symmetric, fixed for the run)."""
        low, high = (a, b) if a <= b else (b, a)
        rng = random.Random(zlib.crc32(('%d|%s|%s' % (self.seed, low, high)).encode()))
        median = self.latency_ms / 1000.0
        if self.latency_spread <= 0:
            return median
        return median * math.exp(rng.gauss(0.0, self.latency_spread))


class Endpoint:
    """One side of a simulated TCP connection (the subset of ITransport the node uses)."""

    #: the transport's write: the bound write of this endpoint's Link, called by the protocol directly
    write: Callable[[bytes], None]

    def __init__(self, network: SimNetwork, host: str, port: int, peer_host: str, peer_port: int) -> None:
        self.network = network
        self.host, self.port, self.peer_host, self.peer_port = host, port, peer_host, peer_port
        self.other: Endpoint | None = None
        self.protocol: Any = None
        self.closed = False
        self.inbox = Inbox()    # what the other side's writes are delivered to
        self.one_way = network.one_way(host, peer_host)
        self.link = Link(network.clock, network.uplink(host), self.one_way, network.bandwidth,
                         network.draw_loss if network.loss else None)
        self.write = self.link.write

    def getPeer(self) -> IPv4Address:
        return IPv4Address('TCP', self.peer_host, self.peer_port)

    def getHost(self) -> IPv4Address:
        return IPv4Address('TCP', self.host, self.port)

    def writeSequence(self, chunks: list[bytes]) -> None:
        self.write(b''.join(chunks))

    def connect_to(self, other: Endpoint | None) -> None:
        """The other side of the connection (None: nobody, writes go nowhere)."""
        self.other = other
        self.link.inbox = None if other is None else other.inbox

    def attach(self, protocol: Any) -> None:
        """The protocol this endpoint belongs to: it receives what the other side writes."""
        self.protocol = protocol
        self.inbox.receiver = protocol.dataReceived

    def _close(self) -> None:
        self.closed = self.inbox.closed = self.link.closed = True

    def loseConnection(self) -> None:
        self.abortConnection()

    def abortConnection(self) -> None:
        """Close now: our protocol hears it at once, the other side after the data in flight."""
        if self.closed:
            return
        self._close()
        clock = self.network.clock
        clock.callLater(0, self._lost)
        if self.other is not None:
            when = max(clock.now + self.one_way, self.link.last_arrival)
            clock.callLater(when - clock.now, self.other.remote_closed)

    def remote_closed(self) -> None:
        if not self.closed:
            self._close()
            self._lost()

    def _lost(self) -> None:
        self.network.connections -= 1
        self.protocol.connectionLost(failure.Failure(error.ConnectionDone()))


class Listener:
    def __init__(self, network: SimNetwork, host: str, port: int, factory: Any) -> None:
        self.network, self.host, self.port, self.factory = network, host, port, factory

    def getHost(self) -> IPv4Address:
        return IPv4Address('TCP', self.host, self.port)

    def stopListening(self) -> None:
        self.network.listeners.pop((self.host, self.port), None)


class Connector:
    """What connectTCP returns: `state` and `stopConnecting()`."""

    def __init__(self, factory: Any, host: str, port: int) -> None:
        self.factory, self.host, self.port = factory, host, port
        self.state = 'connecting'

    def stopConnecting(self) -> None:
        if self.state == 'connecting':
            self.state = 'disconnected'
            self.factory.clientConnectionFailed(self, failure.Failure(error.UserError()))

    def getDestination(self) -> IPv4Address:
        return IPv4Address('TCP', self.host, self.port)


class SimNetwork:
    """Hosts, listeners and links of one simulation on one VirtualClock."""

    def __init__(self, clock: VirtualClock, model: LinkModel) -> None:
        self.clock, self.model = clock, model
        self.listeners: dict[tuple[str, int], Listener] = {}
        self.hosts_up: set[str] = set()
        self.connections = 0            # open endpoints (two per connection)
        self._latency: dict[tuple[str, str], float] = {}
        self._uplinks: dict[str, Any] = {}   # host -> its Uplink
        self.bandwidth, self.loss = model.bandwidth, model.loss
        self._rng = random.Random(model.seed ^ 0x5151)
        self._next_port = 40000

    def one_way(self, a: str, b: str) -> float:
        key = (a, b) if a <= b else (b, a)
        delay = self._latency.get(key)
        if delay is None:
            delay = self._latency[key] = self.model.one_way(a, b)
        return delay

    def uplink(self, host: str) -> Any:
        """The Uplink of `host`, shared by all its endpoints."""
        found = self._uplinks.get(host)
        if found is None:
            found = self._uplinks[host] = Uplink()
        return found

    @property
    def bytes_sent(self) -> int:
        return sum(uplink.bytes_sent for uplink in self._uplinks.values())

    def draw_loss(self) -> bool:
        """Whether the write being made needs a retransmission."""
        return self._rng.random() < self.loss

    def listen(self, host: str, port: int, factory: Any) -> Listener:
        if (host, port) in self.listeners:
            raise error.CannotListenError(host, port, 'address already in use')
        listener = self.listeners[(host, port)] = Listener(self, host, port, factory)
        return listener

    def connect(self, source: str, host: str, port: int, factory: Any, timeout: float) -> Connector:
        connector = Connector(factory, host, port)
        one_way = self.one_way(source, host)
        if host not in self.hosts_up:
            self.clock.callLater(timeout, self._failed, connector, error.TCPTimedOutError())
        elif (host, port) not in self.listeners:
            self.clock.callLater(2 * one_way, self._failed, connector, error.ConnectionRefusedError())
        else:
            self.clock.callLater(2 * one_way, self._established, connector, source)
        return connector

    def _failed(self, connector: Connector, reason: Exception) -> None:
        if connector.state == 'connecting':
            connector.state = 'disconnected'
            connector.factory.clientConnectionFailed(connector, failure.Failure(reason))

    def _established(self, connector: Connector, source: str) -> None:
        if connector.state != 'connecting':
            return
        listener = self.listeners.get((connector.host, connector.port))
        if listener is None:
            self._failed(connector, error.ConnectionRefusedError())
            return
        connector.state = 'connected'
        self._next_port += 1
        client = Endpoint(self, source, self._next_port, connector.host, connector.port)
        server = Endpoint(self, connector.host, connector.port, source, self._next_port)
        client.connect_to(server)
        server.connect_to(client)
        server_protocol = listener.factory.buildProtocol(client.getHost())
        client_protocol = connector.factory.buildProtocol(server.getHost())
        if client_protocol is None:
            return
        client.attach(client_protocol)
        self.connections += 1
        # the server side first: the client's first bytes arrive half a round trip later
        if server_protocol is None:
            client.connect_to(None)
            client_protocol.makeConnection(client)
            self.clock.callLater(2 * client.one_way, client.remote_closed)
            return
        server.attach(server_protocol)
        self.connections += 1
        self.clock.callLater(client.one_way, self._accept, server)
        client_protocol.makeConnection(client)

    def _accept(self, server: Endpoint) -> None:
        if not server.closed:
            server.protocol.makeConnection(server)


class NodeReactor:
    """One node's reactor: the shared clock plus TCP on its own host."""

    #: the clock's own methods: every timer and every time read of the node goes through them,
    #: a method of ours that only passed them on would cost a Python call each time
    callLater: Callable[..., DelayedCall]
    seconds: Callable[[], float]

    def __init__(self, network: SimNetwork, host: str) -> None:
        self.network, self.host = network, host
        self.clock = network.clock
        self.callLater = self.clock.callLater
        self.seconds = self.clock.seconds

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = '') -> Listener:
        return self.network.listen(self.host, port, factory)

    def connectTCP(self, host: str, port: int, factory: Any, timeout: float = 30.0,
                   bindAddress: Any = None) -> Connector:
        return self.network.connect(self.host, host, port, factory, timeout)

    def resolve(self, name: str, timeout: Any = None) -> defer.Deferred[str]:
        return defer.fail(error.DNSLookupError('no DNS in the simulation: %s' % name))


class OrderedSet:
    """A set that iterates in insertion order (P2PNode.connections in the simulator, so that
    a run does not depend on object addresses)."""

    def __init__(self) -> None:
        self._items: dict[Any, None] = {}

    def add(self, item: Any) -> None:
        self._items[item] = None

    def discard(self, item: Any) -> None:
        self._items.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)
