"""Bitcoin P2P client to the local bitcoind (worker.md §10.2, p2p.md §11).

The node keeps one connection to its own bitcoind and uses it to hear about new
blocks and transactions the moment bitcoind announces them, to fetch blocks and
headers, and to push found blocks. Framing is P2Pool's (p2p.md §1) with the
parent chain's 4-byte magic; payloads may carry trailing bytes, which are
ignored on this connection (serialization.md §1.11). Unknown commands and
inventory types are ignored.

BitcoindP2P manages the connection (reconnecting within a second) and exposes
Events: new_block(block_hash), new_tx(tx), new_headers(list of headers),
connection_changed(bool).
"""
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.python.failure import Failure

from p2pool import __version__
from p2pool.bitcoin import data
from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.events import Event
from p2pool.bitcoin.hashes import sha256d

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 70002
MAX_PAYLOAD = 32000000
PING_INTERVAL = 30
INV_TX, INV_BLOCK = 1, 2


# --- message payloads ------------------------------------------------------------

version_type = s.Struct('version', [
    ('version', s.u32),
    ('services', s.u64),
    ('time', s.u64),
    ('addr_to', data.address_type),
    ('addr_from', data.address_type),
    ('nonce', s.u64),
    ('sub_version', s.VarStr),
    ('start_height', s.u32),
])
ping_type = s.Struct('ping', [('nonce', s.u64)])
inv_vector_type = s.Struct('inv_vector', [('type', s.u32), ('hash', s.u256)])
inv_type = s.List(inv_vector_type)
getheaders_type = s.Struct('getheaders', [
    ('version', s.u32),
    ('have', s.List(s.u256)),
    ('last', s.PossiblyNone(0, s.u256)),
])
headers_type = s.List(data.block_type)
empty_type = s.Struct('empty', [])

MESSAGE_TYPES: dict[str, s.Type[Any]] = {
    'version': version_type,
    'verack': empty_type,
    'ping': ping_type,
    'pong': ping_type,
    'inv': inv_type,
    'getdata': inv_type,
    'getheaders': getheaders_type,
    'headers': headers_type,
    'block': data.block_type,
    'tx': data.tx_type,
}
#: parsed as opaque and ignored
IGNORED_COMMANDS = frozenset({'alert', 'reject', 'addr', 'sendheaders', 'sendcmpct', 'feefilter',
                              'protoconf', 'getheaders', 'getaddr', 'mempool', 'notfound'})


class FrameError(ValueError):
    """A message that cannot be framed for sending."""


def frame(magic: bytes, command: str, payload: bytes) -> bytes:
    """One wire message: magic || command(12) || u32 length || checksum || payload."""
    name = command.encode('ascii')
    if len(name) >= 12:
        raise FrameError('command name %r is too long' % command)
    if len(payload) > MAX_PAYLOAD:
        raise FrameError('%s payload of %d bytes is too long' % (command, len(payload)))
    return (magic + name.ljust(12, b'\x00') + len(payload).to_bytes(4, 'little')
            + sha256d(payload)[:4] + payload)


class BitcoinP2PProtocol(protocol.Protocol):
    """One connection to bitcoind; reports to its factory's `client` (a BitcoindP2P)."""

    # connected by Twisted before connectionMade; the protocol never runs without one
    transport: Any

    def __init__(self, client: 'BitcoindP2P') -> None:
        self.client = client
        self.magic = client.magic
        self._buffer = bytearray()
        self.ready = False
        self._pinger: task.LoopingCall | None = None

    # --- framing ----------------------------------------------------------

    def connectionMade(self) -> None:
        peer, host = self.transport.getPeer(), self.transport.getHost()
        self.send('version', {
            'version': PROTOCOL_VERSION, 'services': 1, 'time': int(time.time()),
            'addr_to': {'services': 1, 'address': _ip(peer), 'port': getattr(peer, 'port', 0)},
            'addr_from': {'services': 1, 'address': _ip(host), 'port': getattr(host, 'port', 0)},
            'nonce': int.from_bytes(os.urandom(8), 'little'),
            'sub_version': ('/P2Pool:%s/' % __version__).encode('ascii'),
            'start_height': 0,
        })

    def send(self, command: str, payload_record: Any) -> None:
        payload = MESSAGE_TYPES[command].pack(payload_record)
        self.transport.write(frame(self.magic, command, payload))

    def dataReceived(self, chunk: bytes) -> None:
        self._buffer += chunk
        buffer, magic = self._buffer, self.magic
        while True:
            start = buffer.find(magic)
            if start < 0:
                del buffer[:max(0, len(buffer) - len(magic) + 1)]  # keep a possible partial magic
                return
            if start:
                del buffer[:start]
            if len(buffer) < 24:
                return
            length = int.from_bytes(buffer[16:20], 'little')
            if length > MAX_PAYLOAD:
                log.warning('bitcoind P2P: frame of %d bytes exceeds the limit; skipped', length)
                del buffer[:20]
                continue
            if len(buffer) < 24 + length:
                return
            command = bytes(buffer[4:16]).rstrip(b'\x00').decode('ascii', 'replace')
            checksum, payload = bytes(buffer[20:24]), bytes(buffer[24:24 + length])
            del buffer[:24 + length]
            if sha256d(payload)[:4] != checksum:
                log.warning('bitcoind P2P: bad checksum on %r message; skipped', command)
                continue
            self._handle(command, payload)
            if self.transport is None or getattr(self.transport, 'disconnecting', False):
                return

    def _handle(self, command: str, payload: bytes) -> None:
        message_type = MESSAGE_TYPES.get(command)
        if message_type is None or command in IGNORED_COMMANDS:
            return
        try:
            record = message_type.unpack(payload, allow_trailing=True)
        except s.DecodeError as e:
            log.warning('bitcoind P2P: undecodable %r message (%s); ignored', command, e)
            return
        handler = getattr(self, 'handle_' + command, None)
        if handler is not None:
            handler(record)

    # --- handlers ---------------------------------------------------------

    def handle_version(self, record: dict[str, Any]) -> None:
        self.send('verack', {})

    def handle_verack(self, record: dict[str, Any]) -> None:
        if self.ready:
            return
        self.ready = True
        self._pinger = task.LoopingCall(self.send, 'ping', {'nonce': 1234})
        self._pinger.start(PING_INTERVAL, now=False)
        self.client._protocol_ready(self)

    def handle_ping(self, record: dict[str, Any]) -> None:
        self.send('pong', record)

    def handle_inv(self, vectors: list[dict[str, Any]]) -> None:
        wanted: list[dict[str, Any]] = []
        for vector in vectors:
            if vector['type'] == INV_TX:
                if vector['hash'] not in self.client.known_txs:
                    wanted.append(vector)
            elif vector['type'] == INV_BLOCK:
                self.client.new_block.happened(vector['hash'])
        if wanted:
            self.send('getdata', wanted)

    def handle_tx(self, tx: data.Tx) -> None:
        self.client._got_tx(tx)

    def handle_block(self, block: dict[str, Any]) -> None:
        self.client._got_block(block)

    def handle_headers(self, blocks: list[dict[str, Any]]) -> None:
        self.client._got_headers([block['header'] for block in blocks])

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        was_ready, self.ready = self.ready, False
        self.client._protocol_lost(self, was_ready)


def _ip(address: object) -> str:
    host: str = getattr(address, 'host', '0.0.0.0')
    return host if ':' in host or host.count('.') == 3 else '0.0.0.0'


class _Factory(protocol.ReconnectingClientFactory):
    # Twisted annotates maxDelay as int; the delays here are fractions of a second.
    maxDelay = 1.0  # type: ignore[assignment]
    initialDelay = 0.1
    factor = 1.5

    def __init__(self, client: 'BitcoindP2P') -> None:
        self.client = client

    def buildProtocol(self, addr: Any) -> BitcoinP2PProtocol:
        self.resetDelay()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        proto = BitcoinP2PProtocol(self.client)
        proto.factory = self
        return proto


#: block hash -> the Deferreds waiting for its block or header
Waiters = dict[int, list[defer.Deferred[Any]]]


class BitcoindP2P:
    """Keeps a P2P connection to bitcoind at host:port open and reports what it hears."""

    KNOWN_TXS_LIMIT = 20000

    def __init__(self, host: str, port: int | str, magic: bytes, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        if not isinstance(magic, (bytes, bytearray)) or len(magic) != 4:
            raise ValueError('the Bitcoin P2P magic must be 4 bytes, got %r' % (magic,))
        self.host, self.port, self.magic = host, int(port), bytes(magic)
        self._reactor: Any = reactor
        self._factory = _Factory(self)
        self._connector: Any = None
        self._stopping = False
        self.protocol: BitcoinP2PProtocol | None = None  # the ready connection, or None
        self.known_txs: dict[int, data.Tx] = {}  # P2Pool tx key -> tx, filled by tx messages
        self.new_block = Event()
        self.new_tx = Event()
        self.new_headers = Event()
        self.connection_changed = Event()
        self._block_waiters: Waiters = {}
        self._header_waiters: Waiters = {}
        self._ready_waiters: list[defer.Deferred[BitcoinP2PProtocol]] = []

    @property
    def connected(self) -> bool:
        return self.protocol is not None

    def start(self) -> 'BitcoindP2P':
        self._stopping = False
        self._factory.continueTrying = True
        self._connector = self._reactor.connectTCP(self.host, self.port, self._factory, timeout=5)
        return self

    def stop(self) -> None:
        self._stopping = True
        self._factory.stopTrying()  # type: ignore[no-untyped-call]  # unannotated in Twisted
        if self._connector is not None:
            self._connector.disconnect()
            self._connector = None

    def when_connected(self) -> defer.Deferred[BitcoinP2PProtocol]:
        """Deferred firing once a handshake is complete (at once if it already is)."""
        if self.protocol is not None:
            return defer.succeed(self.protocol)
        d: defer.Deferred[BitcoinP2PProtocol] = defer.Deferred(lambda d: self._ready_waiters.remove(d))
        self._ready_waiters.append(d)
        return d

    # --- outgoing -------------------------------------------------------------

    def send_block(self, block: dict[str, Any]) -> bool:
        """Push a block (witness serialization) to bitcoind; False when not connected."""
        if self.protocol is None:
            return False
        self.protocol.send('block', block)
        return True

    def get_block(self, block_hash: int, timeout: float = 10) -> defer.Deferred[Any]:
        """Deferred firing with the block dict of `block_hash` fetched with getdata."""
        return self._request(self._block_waiters, block_hash, timeout,
                             lambda proto: proto.send('getdata', [{'type': INV_BLOCK, 'hash': block_hash}]))

    def get_header(self, block_hash: int, timeout: float = 10) -> defer.Deferred[Any]:
        """Deferred firing with the header dict of `block_hash` (getheaders with an empty locator)."""
        return self._request(self._header_waiters, block_hash, timeout,
                             lambda proto: proto.send('getheaders', {'version': 1, 'have': [],
                                                                     'last': block_hash}))

    def _request(self, waiters: 'Waiters', block_hash: int, timeout: float,
                 send: Callable[[BitcoinP2PProtocol], object]) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()  # _forget_waiter removes it whatever happens
        waiters.setdefault(block_hash, []).append(d)
        d.addTimeout(timeout, self._reactor)
        d.addBoth(self._forget_waiter, waiters, block_hash, d)

        def ask(proto: BitcoinP2PProtocol) -> None:
            if block_hash in waiters:
                send(proto)
        self.when_connected().addCallback(ask).addErrback(lambda _: None)
        return d

    @staticmethod
    def _forget_waiter(result: Any, waiters: 'Waiters', block_hash: int, d: defer.Deferred[Any]) -> Any:
        pending = waiters.get(block_hash)
        if pending is not None and d in pending:
            pending.remove(d)
            if not pending:
                del waiters[block_hash]
        return result

    # --- called by the protocol ----------------------------------------------

    def _protocol_ready(self, proto: BitcoinP2PProtocol) -> None:
        self.protocol = proto
        log.info('Bitcoin P2P connection to bitcoind at %s:%d established', self.host, self.port)
        self.connection_changed.happened(True)
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.callback(proto)

    def _protocol_lost(self, proto: BitcoinP2PProtocol, was_ready: bool) -> None:
        if self.protocol is proto:
            self.protocol = None
            if was_ready:
                if self._stopping:
                    log.info('Bitcoin P2P connection to bitcoind at %s:%d closed', self.host, self.port)
                else:
                    log.warning('Bitcoin P2P connection to bitcoind at %s:%d lost; reconnecting',
                                self.host, self.port)
                self.connection_changed.happened(False)

    def _got_tx(self, tx: data.Tx) -> None:
        key = data.tx_key(tx)
        if len(self.known_txs) >= self.KNOWN_TXS_LIMIT:
            for old in list(self.known_txs)[:self.KNOWN_TXS_LIMIT // 10]:
                del self.known_txs[old]
        self.known_txs[key] = tx
        self.new_tx.happened(tx)

    def _got_block(self, block: dict[str, Any]) -> None:
        block_hash = data.header_hash(block['header'])
        for d in list(self._block_waiters.get(block_hash, [])):
            d.callback(block)

    def _got_headers(self, headers: list[data.Header]) -> None:
        for header in headers:
            block_hash = data.header_hash(header)
            for d in list(self._header_waiters.get(block_hash, [])):
                d.callback(header)
        if headers:
            self.new_headers.happened(headers)
