"""A TCP relay that delays every byte by a fixed time in each direction (there is no `tc netem` here).

    relay = DelayRelay(target_port=9333, delay=0.2, reactor=reactor)
    port = relay.listen()          # connect to 127.0.0.1:port to reach 127.0.0.1:9333 200 ms later

Each accepted connection opens one to the target; data read on either side is
written to the other side `delay` seconds after it was read, in order. A close on
either side closes the other once the data in flight has been written. For the
simulator's validation against real node processes (bench/bench_sim_validation.py).
"""
from __future__ import annotations

from typing import Any

from twisted.internet import protocol


class _Side(protocol.Protocol):
    """One end of a relayed connection; `other` is the far end (None until it connects)."""

    transport: Any = None   # a TCP transport (zope's ITransport declares write() without self)

    def __init__(self, relay: DelayRelay) -> None:
        self.relay = relay
        self.other: _Side | None = None
        self.pending: list[bytes] = []   # written before the other side connected
        self.closed = False

    def dataReceived(self, data: bytes) -> None:
        self.relay.reactor.callLater(self.relay.delay, self._forward, data)

    def _forward(self, data: bytes) -> None:
        other = self.other
        if other is None:
            self.pending.append(data)
        elif not other.closed and other.transport is not None:
            other.transport.write(data)

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        self.closed = True
        self.relay.reactor.callLater(self.relay.delay + 0.001, self._close_other)

    def _close_other(self) -> None:
        if self.other is not None and not self.other.closed and self.other.transport is not None:
            self.other.transport.loseConnection()

    def joined(self, other: _Side) -> None:
        self.other = other
        for data in self.pending:
            other.transport.write(data)
        self.pending = []


class _Outgoing(protocol.ClientFactory):
    def __init__(self, incoming: _Side) -> None:
        self.incoming = incoming

    def buildProtocol(self, addr: Any) -> _Side:
        side = _OutgoingSide(self.incoming.relay)
        side.other = self.incoming
        return side

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        if self.incoming.transport is not None:
            self.incoming.transport.loseConnection()


class _Client(_Side):
    def connectionMade(self) -> None:
        self.relay.reactor.connectTCP(self.relay.target_host, self.relay.target_port, _Outgoing(self))


class _OutgoingSide(_Side):
    def connectionMade(self) -> None:
        assert self.other is not None
        if self.other.closed:
            self.transport.loseConnection()
        else:
            self.other.joined(self)


class DelayRelay(protocol.Factory):
    """Listens on a loopback port and relays to (target_host, target_port) with `delay` seconds each way."""

    def __init__(self, target_port: int, delay: float, reactor: Any, target_host: str = '127.0.0.1') -> None:
        self.target_host, self.target_port, self.delay, self.reactor = target_host, target_port, delay, reactor
        self.listener: Any = None

    def buildProtocol(self, addr: Any) -> _Side:
        return _Client(self)

    def listen(self, port: int = 0) -> int:
        self.listener = self.reactor.listenTCP(port, self, interface='127.0.0.1')
        return int(self.listener.getHost().port)
