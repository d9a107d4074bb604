"""One P2Pool peer connection (p2p.md §3 lifecycle, §4 message handling, §9 misbehaviour).

PeerConnection is a Twisted Protocol. It owns everything that is per connection: framing, the handshake, timeouts
and pings, per-peer rate limits, the per-peer transaction views (§4.10-§4.13, §5) and outstanding share requests.
Everything that concerns more than one peer (peer set, address store, bans, the tracker, relay) belongs to the node,
which the connection talks to through the interface below and nothing else.

The node interface
------------------
(typed as p2pool.p2p.contracts.PeerNode; what the node needs of the sharechain is PeerChain there)

Attributes, read when needed (so they may change at run time):

    node.nonce                      int: our random 64-bit nonce, fixed per node start
    node.minimum_protocol_version   int: peers announcing less are refused; the node raises
                                    it at run time (shares.md §13.3), new handshakes only
    node.known_txs                  mapping tx key -> transaction dict (the known pool, §5);
                                    only .get(key) is used

Methods, called synchronously from the reactor thread. The message handlers may raise Misbehaviour (reported, then
the peer is dropped), ProtocolError (peer dropped, not reported) or DecodeError (reported as MALFORMED); any other
exception is logged as our own bug and drops the peer without a report.

    node.best_share_hash() -> int | None          announced in our version message
    node.peer_connected(peer) -> bool             handshake done: register the peer and start
                                                  its node-level loops (§3.4: fetch
                                                  peer.announced_best_share_hash, tx view sync,
                                                  advertising). Return False to refuse a
                                                  duplicate nonce (§4.1.5): the connection is
                                                  closed silently. If it raises, the peer is
                                                  dropped as not registered.
    node.peer_disconnected(peer)                  called once, only for peers peer_connected
                                                  accepted
    node.report_misbehaviour(peer, kind, reason)  kind is one of MISBEHAVIOUR_KINDS; the node
                                                  scores and bans the host (§9), except for
                                                  MALFORMED (§1: dropped, not banned). The
                                                  peer is dropped right after.
    node.handle_shares(peer, wrappers)            `shares` push: list of {'type', 'contents'};
                                                  the node skips types below the lowest
                                                  supported version (§4.6) and resolves
                                                  transactions with peer.lookup_tx
    node.handle_sharereq(peer, hashes, parents, stops) -> list of wrappers
                                                  serve §4.7 (`hashes` is never empty)
    node.handle_bestblock(peer, header)           header dict whose PoW was already checked
    node.got_addrme(peer, port)                   §4.3
    node.got_addrs(peer, records)                 §4.4: [{'timestamp', 'address': {'services',
                                                  'address', 'port'}}]
    node.get_good_peers(count) -> list of records for an `addrs` reply (§4.5)
    node.add_known_txs(peer, txs)                 {key: tx} received in remember_tx
    node.traffic (optional)                       Event fired with ('p2p/in' | 'p2p/out', bytes)

Toward the node a peer offers: host, port, incoming, version, sub_version, services, nonce,
announced_best_share_hash, remote_tx_hashes (keys the peer has), remembered_txs (what it asked us to keep),
send(command, **fields), send_frames(frames) (frames encoded once for several peers with encode_frames: a relay to
many peers), send_losing_tx(txs_by_key), lookup_tx(key), request_shares(hashes, parents, stops) -> Deferred,
misbehaved(kind, reason), disconnect(reason).

PeerSettings (p2p/peersettings.py) holds the per-network constants and local limits; PeerFactory builds
connections for listenTCP/connectTCP.

Message size limits (checked from the frame header, before buffering) and the byte budget of `sharereq` answers are
in peerlimits.py.
"""
import itertools
import logging
import random
from collections import OrderedDict
from typing import Any, ClassVar, cast

from twisted.internet import defer, protocol

from p2pool.bitcoin.data import bits_to_target, header_type, tx_type
from p2pool.bitcoin.hashes import hash256
from p2pool.p2p import messages
from p2pool.p2p.addrstore import is_ip_address
from p2pool.p2p.contracts import PeerNode
from p2pool.p2p.messages import DecodeError, MESSAGE_TYPES
from p2pool.p2p.peerlimits import fixed_payload_limits, payload_limit, within_budget
from p2pool.util.ratelimit import TokenBucket
from p2pool.util.untrusted import shown

log = logging.getLogger(__name__)

# Misbehaviour kinds reported to node.report_misbehaviour.
INVALID_SHARE = 'invalid_share'            # a share that fails its checks
BAD_POW = 'bad_pow'                        # a header (bestblock, share) failing its target
BAD_CHECKSUM = 'bad_checksum'              # a frame whose checksum does not match (§1)
PROTOCOL_VIOLATION = 'protocol_violation'  # handshake rules (§3, §4.1)
FLOODING = 'flooding'                      # over a rate limit, or too much remembered tx data
SELF_CONNECTION = 'self_connection'        # our own nonce came back: the address is ours
MALFORMED = 'malformed'                    # a payload that does not decode; the spec drops
#                                            such peers without a ban (§1), so the node only logs it

MAX_SUB_VERSION_SHOWN = 200   # characters of a peer's sub_version kept for logs and pages

MISBEHAVIOUR_KINDS = (INVALID_SHARE, BAD_POW, BAD_CHECKSUM, PROTOCOL_VIOLATION, FLOODING,
                      SELF_CONNECTION, MALFORMED)


class Misbehaviour(Exception):
    """The peer broke a rule that the spec punishes with disconnect and ban."""

    def __init__(self, kind, reason) -> None:
        super().__init__('%s: %s' % (kind, reason))
        self.kind, self.reason = kind, reason


class ProtocolError(Exception):
    """The peer broke a rule that costs it the connection but no ban (spec: "drop")."""


class ShareRequestError(Exception):
    """A sharereq that did not succeed: error reply, timeout or lost connection."""


class ShareRequestTimeout(ShareRequestError):
    """No sharereply within the request timeout (the peer has been disconnected)."""


def _address_record(address):
    """An address_type record for a Twisted address (services 0, as the original sends)."""
    host = (getattr(address, 'host', None) or '0.0.0.0').split('%', 1)[0]
    if not is_ip_address(host):
        host = '0.0.0.0'
    port = getattr(address, 'port', 0)
    return {'services': 0, 'address': host, 'port': port if isinstance(port, int) and 0 <= port < 65536 else 0}


class PeerConnection(protocol.Protocol):
    """One connection to a P2Pool peer; see the module docstring for the node interface."""

    # set by Twisted before connectionMade; the protocol never runs without one
    transport: Any
    _handlers: ClassVar[dict[str, Any]]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._handlers = {command: getattr(cls, '_got_' + command) for command in MESSAGE_TYPES}

    def __init__(self, node: PeerNode, settings: Any, incoming: bool = False, clock: Any = None,
                 rng: random.Random | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.node, self.settings, self.incoming = node, settings, incoming
        self.clock: Any = cast(Any, clock)   # the reactor or a task.Clock
        self._seconds = self.clock.seconds
        self._received_at = 0.0   # the clock when the read being handled arrived (its rate-limit charges)
        self.rng = rng or random.Random()
        self.host: Any = None
        self.port: Any = None
        self.connected_at: Any = None
        self.version: Any = None
        self.sub_version: Any = None
        self.services: Any = None
        self.nonce: Any = None
        self.announced_best_share_hash: Any = None
        self.handshake_done = self.closing = self.registered = False
        self.close_reason: Any = None
        self.remote_tx_hashes: dict[Any, Any] = {}          # ordered set: oldest entries are discarded first
        self.remembered_txs: dict[Any, Any] = {}            # key -> tx the peer asked us to keep
        self._remembered_sizes: dict[Any, Any] = {}
        self.remembered_txs_size = 0
        self._latency_cache: OrderedDict[Any, Any] = OrderedDict()  # key -> (tx, expiry), expiries ascending
        self._pending_requests: dict[Any, Any] = {}          # request id -> (Deferred, timeout call)
        self._handshake_timer: Any = None
        self._idle_timer: Any = None
        self._ping_timer: Any = None
        self.refused_messages = 0
        # charged for every frame, every pushed share, every gossiped address; the other limits get
        # their buckets in _bucket when first charged (many connections never are, and a bucket
        # nobody charged since the connection started is full either way)
        (messages_burst, messages_rate), (shares_burst, shares_rate), (addrs_burst, addrs_rate) = (
            settings.messages_limit, settings.shares_limit, settings.addrs_limit)
        self._messages_bucket = TokenBucket(messages_burst, messages_rate, self.clock)
        self._shares_bucket = TokenBucket(shares_burst, shares_rate, self.clock)
        self._addrs_bucket = TokenBucket(addrs_burst, addrs_rate, self.clock)
        self._buckets = {'messages': self._messages_bucket, 'shares': self._shares_bucket,
                         'addrs': self._addrs_bucket}
        self._replies_expected_until = 0.0   # a sharereply may be large until then
        self.peer_not_reading = False        # our transport's write buffer is full
        self._fixed_limits = fixed_payload_limits(settings)
        self._decoder = messages.FrameDecoder(settings.prefix, settings.max_payload_size,
                                              payload_limit=self._payload_limit,
                                              checksum=getattr(settings, 'checksum', messages.checksum))
        self._decode_payload = getattr(settings, 'decode_payload', messages.decode_payload)
        # the node's optional traffic Event (the traffic_rate graph), looked up once
        self._traffic = getattr(node, 'traffic', None)
        self._ping_frames = messages.fieldless_frames(settings.prefix, 'ping')

    def __repr__(self) -> str:
        return '<Peer %s:%s%s>' % (self.host, self.port, ' in' if self.incoming else '')

    # --- connection events --------------------------------------------------------------

    def connectionMade(self) -> None:
        register = getattr(self.transport, 'registerProducer', None)
        if register is not None:
            register(self, True)   # told when the peer stops reading what we send
        peer = self.transport.getPeer()
        self.host, self.port = getattr(peer, 'host', None), getattr(peer, 'port', None)
        self.connected_at = self.clock.seconds()     # uptime for `p2pool ctl peers`
        self._handshake_timer = self.clock.callLater(
            self.settings.handshake_timeout, self.disconnect, 'handshake timeout')
        self.send('version', version=self.settings.protocol_version, services=0,
                  addr_to=_address_record(peer), addr_from=_address_record(self.transport.getHost()),
                  nonce=self.node.nonce, sub_version=self.settings.sub_version, mode=1,
                  best_share_hash=self.node.best_share_hash())

    def dataReceived(self, data) -> None:
        if self.closing:
            return
        if self._traffic is not None:
            self._traffic.happened('p2p/in', len(data))
        try:
            # one clock reading for every rate-limit charge of this read (its frames arrived together)
            self._received_at = self._seconds()
            idle_timer = self._idle_timer
            if idle_timer is not None:   # active: it ends only by firing (which closes us) or on close
                idle_timer.reset(self.settings.idle_timeout)
            decoder = self._decoder
            whole = decoder.whole_frame(data)   # most reads are one whole frame
            if whole is not None:
                self._handle_frame(*whole)
                return
            decoder.feed(data)
            while not self.closing:
                event = decoder.next_event()
                if event is None:
                    break
                self._handle_event(event)
        except Exception:
            # A bug of ours must not take the node down nor keep a confused connection.
            log.exception('%s: unexpected error while handling data', self)
            self.disconnect('internal error')

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self.closing = True
        for timer in (self._handshake_timer, self._idle_timer, self._ping_timer):
            if timer is not None and timer.active():
                timer.cancel()
        pending, self._pending_requests = self._pending_requests, {}
        for d, timer in pending.values():
            if timer.active():
                timer.cancel()
            d.errback(ShareRequestError('connection lost'))
        if self.registered:
            self.registered = False
            self.node.peer_disconnected(self)

    # IPushProducer: the transport pauses us when its write buffer is full
    def pauseProducing(self) -> None:
        self.peer_not_reading = True

    def resumeProducing(self) -> None:
        self.peer_not_reading = False

    def stopProducing(self) -> None:
        self.peer_not_reading = True

    # --- closing --------------------------------------------------------------------------

    def disconnect(self, reason) -> None:
        """Close at once, without reporting anything to the node."""
        if self.closing:
            return
        log.info('%s: disconnecting: %s', self, reason)
        self.closing, self.close_reason = True, reason
        self.transport.abortConnection()

    def misbehaved(self, kind, reason) -> None:
        """Report misbehaviour to the node, then drop the peer."""
        if self.closing:
            return
        (log.debug if kind == SELF_CONNECTION else log.warning)('%s: misbehaviour %s: %s', self, kind, reason)
        try:
            self.node.report_misbehaviour(self, kind, reason)
        finally:
            self.disconnect('%s: %s' % (kind, reason))

    # --- receiving ------------------------------------------------------------------------

    def _handle_event(self, event) -> None:
        if isinstance(event, messages.Frame):
            self._handle_frame(event.command, event.payload)
        elif isinstance(event, messages.BadChecksum):
            self.misbehaved(BAD_CHECKSUM, 'bad checksum on %r frame' % event.command)
        elif isinstance(event, messages.OverLimitFrame):
            self._over_limit(event)
        elif isinstance(event, messages.OversizedFrame):
            # §1: the frame is abandoned after its length field and scanning resumes
            log.info('%s: skipping a %r frame of %d bytes, over the maximum payload size',
                     self, event.command, event.length)
        else:
            log.debug('%s: skipped %d bytes between frames', self, event.count)  # §1 resynchronisation

    def _over_limit(self, event) -> None:
        if event.command not in MESSAGE_TYPES:
            log.debug('%s: skipping an unknown %r frame of %d bytes', self, event.command, event.length)
        elif not self.handshake_done and event.command != 'version':
            self.misbehaved(PROTOCOL_VIOLATION, 'first message was not version message')
        else:
            self.misbehaved(FLOODING, '%s message of %d bytes, over its limit of %d bytes'
                            % (event.command, event.length, event.limit))

    def _payload_limit(self, command) -> int:
        if self.handshake_done:
            limit = self._fixed_limits.get(command)
            if limit is not None:
                return limit
        return payload_limit(self, command)

    def _handle_frame(self, command, payload) -> None:
        handler = self._handlers.get(command)
        if handler is None:
            log.debug('%s: ignoring unknown command %r', self, command)
            return
        if not self.handshake_done and command != 'version':
            self.misbehaved(PROTOCOL_VIOLATION, 'first message was not version message')
            return
        try:
            if not self._messages_bucket.take(1, self._received_at) and not self._refused('messages'):
                return
            handler(self, **self._decode_payload(command, payload))
        except Misbehaviour as e:
            self.misbehaved(e.kind, e.reason)
        except ProtocolError as e:
            self.disconnect('%s message: %s' % (command, e))
        except DecodeError as e:
            self.misbehaved(MALFORMED, '%s message: %s' % (command, e))

    def _allow(self, bucket, cost=1) -> bool:
        """Charge a rate limit; count a refusal and report FLOODING past the tolerance."""
        return self._bucket(bucket).take(cost, self._received_at) or self._refused(bucket)

    def _bucket(self, name) -> TokenBucket:
        """The bucket of PeerSettings.<name>_limit ('sharereply': the sharereply byte budget)."""
        bucket = self._buckets.get(name)
        if bucket is None:
            burst, rate = (self.settings.sharereply_budget if name == 'sharereply'
                           else getattr(self.settings, name + '_limit'))
            bucket = self._buckets[name] = TokenBucket(burst, rate, self.clock)
        return bucket

    def _refused(self, bucket) -> bool:
        """A message over the `bucket` limit: False, or Misbehaviour past the flood tolerance."""
        self.refused_messages += 1
        log.debug('%s: over the %s rate limit', self, bucket)
        if self.refused_messages >= self.settings.flood_tolerance:
            raise Misbehaviour(FLOODING, '%d messages over the rate limits (last: %s)'
                               % (self.refused_messages, bucket))
        return False

    def _got_version(self, version, services, addr_to, addr_from, nonce, sub_version, mode,
                     best_share_hash):
        if self.version is not None:
            raise Misbehaviour(PROTOCOL_VIOLATION, 'more than one version message')
        minimum = self.node.minimum_protocol_version
        if version < minimum:
            raise Misbehaviour(PROTOCOL_VIOLATION, 'peer too old: version %d < %d' % (version, minimum))
        self.version, self.services = version, services
        # shown wherever a peer is listed (log, console, web): escaped and capped once, here
        self.sub_version = shown(sub_version, MAX_SUB_VERSION_SHOWN)
        self.nonce, self.announced_best_share_hash = nonce, best_share_hash
        if nonce == self.node.nonce:
            raise Misbehaviour(SELF_CONNECTION, 'was connected to self')
        self._handshake_timer.cancel()
        self._idle_timer = self.clock.callLater(self.settings.idle_timeout, self.disconnect,
                                                'idle timeout')
        self.handshake_done = True
        self._decoder.fixed_limits = self._fixed_limits
        if not self.node.peer_connected(self):
            self.disconnect('duplicate connection (nonce %#x)' % nonce)
            return
        self.registered = True
        self._ping()

    def _ping(self) -> None:
        # send_frames inlined: each connection pings every 100 s on average, about a fifth of all messages
        if not self.closing:
            traffic = self._traffic
            for raw in self._ping_frames:
                if traffic is not None:
                    traffic.happened('p2p/out', len(raw))
                self.transport.write(raw)
        self._ping_timer = self.clock.callLater(
            self.rng.expovariate(1 / self.settings.ping_interval_mean), self._ping)

    def _got_ping(self) -> None:
        pass  # receipt already reset the idle timer

    def _got_addrme(self, port) -> None:
        self.node.got_addrme(self, port)

    def _got_addrs(self, addrs) -> None:
        if self._addrs_bucket.take(len(addrs), self._received_at) or self._refused('addrs'):
            self.node.got_addrs(self, addrs)

    def _got_getaddrs(self, count) -> None:
        if self._allow('getaddrs'):
            self.send('addrs', addrs=list(self.node.get_good_peers(min(count, 100)))[:100])

    def _got_shares(self, shares) -> None:
        if self._shares_bucket.take(len(shares), self._received_at) or self._refused('shares'):
            self.node.handle_shares(self, shares)

    def _got_sharereq(self, id, hashes, parents, stops) -> None:
        if not self._allow('sharereq'):
            return
        # The original fails on an empty request; answering "good" with nothing is kinder.
        wanted = hashes and not self.peer_not_reading
        shares = self.node.handle_sharereq(self, hashes, parents, stops) if wanted else []
        shares = within_budget(shares, self._bucket('sharereply'), self)   # bytes
        try:
            self._write('sharereply', messages.encode_payload(
                'sharereply', {'id': id, 'result': 'good', 'shares': shares}))
        except messages.MessageTooLong:
            self.send('sharereply', id=id, result='too long', shares=[])

    def _got_sharereply(self, id, result, shares) -> None:
        entry = self._pending_requests.pop(id, None)
        if entry is None:
            return  # unknown or already timed out: ignored, as the spec says
        d, timer = entry
        timer.cancel()
        if result == 'good':
            d.callback(shares)
        else:
            d.errback(ShareRequestError('peer answered %r' % result))

    def _got_bestblock(self, header):
        if self.settings.pow_func(header_type.pack(header)) > bits_to_target(header['bits']):
            raise Misbehaviour(BAD_POW, 'received block header fails PoW test')
        self.node.handle_bestblock(self, header)

    def _got_have_tx(self, tx_hashes) -> None:
        view, cap = self.remote_tx_hashes, self.settings.max_remote_tx_hashes
        for key in tx_hashes[-cap:]:  # earlier keys would be discarded anyway
            view.pop(key, None)  # re-insert so that the freshest keys are kept
            view[key] = None
        excess = len(view) - cap
        if excess > 0:
            for key in list(itertools.islice(view, excess)):
                del view[key]

    def _got_losing_tx(self, tx_hashes) -> None:
        for key in tx_hashes:
            self.remote_tx_hashes.pop(key, None)

    def _got_remember_tx(self, tx_hashes, txs):
        for key in tx_hashes:
            if key in self.remembered_txs:
                raise ProtocolError('referenced transaction %064x twice' % key)
            tx = self.lookup_tx(key)
            if tx is None:
                raise ProtocolError('referenced unknown transaction %064x' % key)
            self._remember(key, tx, len(tx_type.pack(tx)))
        added = {}
        for tx in txs:
            raw = tx_type.pack(tx)
            key = hash256(raw)
            if key in self.remembered_txs:
                raise ProtocolError('sent transaction %064x twice' % key)
            self._remember(key, tx, len(raw))
            added[key] = tx
        if added:
            self.node.add_known_txs(self, added)
        if self.remembered_txs_size >= self.settings.max_remembered_txs_size:
            raise Misbehaviour(FLOODING, 'too much transaction data stored (%d bytes)'
                               % self.remembered_txs_size)

    def _remember(self, key, tx, size) -> None:
        self.remembered_txs[key] = tx
        self._remembered_sizes[key] = 100 + size  # the spec's per-transaction overhead
        self.remembered_txs_size += 100 + size

    def _got_forget_tx(self, tx_hashes):
        for key in tx_hashes:
            if key not in self.remembered_txs:
                raise ProtocolError('asked to forget unknown transaction %064x' % key)
            del self.remembered_txs[key]
            self.remembered_txs_size -= self._remembered_sizes.pop(key)

    # --- transactions ---------------------------------------------------------------------

    def lookup_tx(self, key) -> Any:
        """A transaction the peer may reference: the known pool, then our latency cache."""
        tx = self.node.known_txs.get(key)
        if tx is not None:
            return tx
        self._expire_latency_cache()
        entry = self._latency_cache.get(key)
        return entry[0] if entry is not None else None

    def _expire_latency_cache(self) -> None:
        now = self.clock.seconds()
        cache = self._latency_cache
        while cache and next(iter(cache.values()))[1] <= now:
            cache.popitem(last=False)

    def send_losing_tx(self, txs_by_key) -> None:
        """Tell the peer we dropped these transactions; keep them referencable briefly (§5)."""
        self._expire_latency_cache()
        expiry = self.clock.seconds() + self.settings.latency_cache_seconds
        for key, tx in txs_by_key.items():
            self._latency_cache.pop(key, None)
            self._latency_cache[key] = (tx, expiry)
        self.send('losing_tx', tx_hashes=list(txs_by_key))

    # --- sending --------------------------------------------------------------------------

    def send(self, command, **fields) -> None:
        """Send a message, split into several if it is a list message that is too long.

        Raises EncodeError (MessageTooLong) for fields that cannot be sent; sending on
        a closing connection does nothing.
        """
        if self.closing:
            return
        for payload in messages.split_fields(command, fields, self.settings.max_payload_size):
            self._write(command, payload)

    def encode_frames(self, command, **fields) -> list[bytes]:
        """The frames `send(command, **fields)` writes, for send_frames on any peer with our settings."""
        return messages.encode_messages(self.settings.prefix, command, fields, self.settings.max_payload_size,
                                        self._decoder.checksum)

    def send_frames(self, frames) -> None:
        """Write frames from encode_frames (a message relayed to many peers is encoded once)."""
        traffic = self._traffic
        for raw in frames:
            if self.closing:
                return
            if traffic is not None:
                traffic.happened('p2p/out', len(raw))
            self.transport.write(raw)

    def _write(self, command, payload) -> None:
        if self.closing:
            return
        # the settings' checksum: the simulator's is shared with the receivers, who check the same payload
        raw = messages.frame(self.settings.prefix, command, payload, self.settings.max_payload_size,
                             self._decoder.checksum)
        if self._traffic is not None:
            self._traffic.happened('p2p/out', len(raw))
        self.transport.write(raw)

    def request_shares(self, hashes, parents, stops) -> defer.Deferred[Any]:
        """Send a sharereq; the Deferred fires with the reply's share wrappers.

        It fails with ShareRequestError on a reply other than "good" or when the
        connection is lost, and with ShareRequestTimeout after the request timeout
        (which also disconnects the peer, §4.8). Fields that cannot be encoded raise
        EncodeError at once.
        """
        if self.closing or not self.handshake_done:
            return defer.fail(ShareRequestError('peer is not connected'))
        request_id = self.rng.getrandbits(256)
        while request_id in self._pending_requests:
            request_id = self.rng.getrandbits(256)
        # Encode first: a request that cannot be sent must leave nothing pending.
        payload = messages.encode_payload('sharereq', {'id': request_id, 'hashes': list(hashes),
                                                       'parents': parents, 'stops': list(stops)})
        if len(payload) > self.settings.max_payload_size:
            raise messages.MessageTooLong('sharereq of %d bytes does not fit' % len(payload))

        def cancel(d) -> None:
            entry = self._pending_requests.pop(request_id, None)
            if entry is not None and entry[1].active():
                entry[1].cancel()

        def timed_out() -> None:
            entry = self._pending_requests.pop(request_id, None)
            if entry is not None:
                self.disconnect('share request timed out')
                entry[0].errback(ShareRequestTimeout('no sharereply within %s s'
                                                     % self.settings.request_timeout))

        d: defer.Deferred[Any] = defer.Deferred(cancel)
        timer = self.clock.callLater(self.settings.request_timeout, timed_out)
        self._pending_requests[request_id] = (d, timer)
        self._replies_expected_until = self.clock.seconds() + self.settings.request_timeout
        self._write('sharereq', payload)
        return d


#: command -> its handler, for every message type (a subclass overriding one gets its own table)
PeerConnection._handlers = {command: getattr(PeerConnection, '_got_' + command) for command in MESSAGE_TYPES}


class PeerFactory(protocol.ClientFactory):
    """Builds PeerConnections for listenTCP/connectTCP; the node may subclass it."""

    def __init__(self, node: PeerNode, settings: Any, incoming: bool, clock: Any = None) -> None:
        self.node, self.settings, self.incoming, self.clock = node, settings, incoming, clock

    def buildProtocol(self, addr) -> PeerConnection:
        peer = PeerConnection(self.node, self.settings, incoming=self.incoming, clock=self.clock)
        peer.factory = self
        return peer
