"""The P2Pool peer network of a running node (p2p.md §3-§10).

P2PNode is the node side of every PeerConnection (see protocol.py for the
interface): it owns the peer set, listening and dialling, address gossip and
advertising, with the address store and bans in addrstore.py. Moving shares
(relay of the best chain, serving `sharereq`, the download loop for the shares
the ShareChain of p2pool/sharechain/chain.py wants) is sharesync.py; transaction forwarding
for v<34 shares is txrelay.py.

    node = P2PNode(chain, store, NodeConfig(port=9333, fixed_peers=[('1.2.3.4', 9333)]))
    node.start()                  # listen, connect, start the loops
    ...
    yield node.stop()             # fires when the listener and every connection are closed

Everything runs in the reactor thread. `reactor` (default: the global one) is
used for sockets and timers, so unit tests pass a task.Clock and drive the
interface methods directly.

Bans: every misbehaviour report scores the peer's host (addrstore.BanList). The
spec never bans 127.0.0.1; here that is `NodeConfig.ban_exempt`, empty by
default so that any host, the loopback included, can be banned when a library
user or a test builds a node, and set to the loopback by `config_from_args`, the
running node's configuration. Self-connections are not misbehaviour: the
address is remembered as our own and never dialled again instead of banned.
Payloads that do not decode (MALFORMED) only cost the connection (spec §1).

Incoming slots: a connection takes one of the `max_incoming` peer slots only once
its handshake is done. Before that it sits in a separate pool of
`max_unhandshaken` connections with its own per-/16 limit; when that pool is
full the oldest waiting connection is dropped for the newcomer, so connections
that never send a version cannot keep real peers out until the handshake timeout.
"""
import functools
import ipaddress
import itertools
import logging
import random
from collections.abc import Callable
from typing import Any, cast

from twisted.internet import defer, error as tw_error, protocol as tw_protocol

from p2pool.events import Event
from p2pool.p2p import pings
from p2pool.p2p.addrstore import AddressStore, BanList, host_group, is_dialable, normal_host
from p2pool.p2p.contracts import PeerChain
from p2pool.p2p.nodeconfig import NodeConfig
from p2pool.p2p.peersettings import PeerSettings
from p2pool.p2p.protocol import INVALID_SHARE, MALFORMED, SELF_CONNECTION, PeerConnection
from p2pool.p2p.sharesync import ShareSync
from p2pool.p2p.txrelay import TxRelay

log = logging.getLogger(__name__)

LOW_ADDRESS_COUNT = 1000        # §7: below this many addresses, ask peers for more
MAX_PENDING_ATTEMPTS = 30       # §8


@functools.lru_cache(maxsize=1024, typed=True)
def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _group_of(peer) -> Any:
    """host_group of a peer's host: the one _build_peer noted (any other peer object: computed)."""
    return getattr(peer, 'group', None) or host_group(peer.addr[0])


class NodePeer(PeerConnection):
    """A PeerConnection that knows its normalised address and tells its factory when it closes."""

    addr: Any = None            # (normal host, port)
    accept_order = 0            # rises with every connection the node makes or accepts
    advertise_timer: Any = None

    def connectionLost(self, reason=tw_protocol.connectionDone) -> None:
        try:
            super().connectionLost(reason)
        finally:
            self.factory.peer_lost(self)


class _PeerFactory(tw_protocol.ClientFactory):
    """Builds NodePeers for the listener (incoming) or for one outgoing address."""

    connector: Any
    retry_call: Any

    def __init__(self, node, incoming, addr=None, fixed=False):
        self.node, self.incoming, self.addr, self.fixed = node, incoming, addr, fixed
        self.connector = self.retry_call = None
        self.retry_delay = 1.0

    def buildProtocol(self, address):
        return self.node._build_peer(self, address)

    def peer_lost(self, peer):
        self.node._connection_lost(self, peer)

    def clientConnectionFailed(self, connector, reason):
        log.debug('Connecting to %s:%s failed: %s', self.addr[0], self.addr[1], reason.getErrorMessage())
        self.node._outgoing_ended(self)


class P2PNode:
    """The node interface of PeerConnection plus the loops of p2p.md §6-§8."""

    def __init__(self, chain: PeerChain, store: Any = None, config: NodeConfig | None = None,
                 settings: PeerSettings | None = None, reactor: Any = None, rng: random.Random | None = None,
                 parent_tip: Callable[[], int | None] | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.chain, self.net = chain, chain.net
        self.config = config or NodeConfig()
        self.settings = settings or PeerSettings(prefix=self.net.PREFIX, pow_func=self.net.PARENT.pow_hash)
        self.reactor: Any = cast(Any, reactor)
        self.rng = rng or random.Random()
        self.nonce = self.rng.getrandbits(64)
        # each connection's own rng (ping times, request ids); None: one seeded by the OS
        self.peer_rng: Callable[[], random.Random] | None = None
        self.addresses = AddressStore(store)
        self.bans = BanList(store, exempt=self.config.ban_exempt, ban_time=self.config.ban_time)
        self.txs = TxRelay(chain, self.settings.max_remembered_txs_size)
        self.sync = ShareSync(self)
        self.peers: dict[Any, Any] = {}                 # nonce -> registered NodePeer
        # list(self.peers.values()) and how many of them are outgoing (_peer_snapshot)
        self._peer_list: list[Any] | None = None
        self._outgoing = 0
        self.connections: Any = set()  # every open NodePeer, registered or not (sim: an ordered set)
        self.own_addresses: set[Any] = set()      # (host, port) found to be ourselves
        self.listening_port: Any = None
        self.running = False
        self.peers_changed = Event('p2p peers')
        self.bestblock_received = Event('bestblock from a peer')  # (header, peer addr)
        self.traffic: Any = Event('p2p traffic')  # ('p2p/in' | 'p2p/out', bytes) from every connection
        self.upnp: Any = None
        self.external_address: Any = None    # (IP, port or None) once --external-ip is resolved
        # () -> the previous_block of bitcoind's current work, or None: peer block solutions
        # on bitcoind's tip are relayed at once (§6.2)
        self.parent_tip = parent_tip or (lambda: None)
        self._listener: Any = None
        self._pending: dict[Any, Any] = {}              # (host, port) -> factory of a dial not yet handshaken
        self._fixed: list[Any] = []
        self._timers: dict[Any, Any] = {}
        self._closed_waiters: list[Any] = []
        self._accept_order = itertools.count(1)
        self._addrme_cache: tuple[Any, list[bytes]] | None = None   # (listening port, addrme frames)

    # --- the node interface (protocol.py) -----------------------------------------------

    @property
    def minimum_protocol_version(self) -> int:
        return self.chain.minimum_protocol_version.value

    @property
    def known_txs(self) -> Any:
        return self.chain.known_txs

    def now(self) -> float:
        return self.reactor.seconds()

    def best_share_hash(self) -> int | None:
        return self.chain.best_share_hash.value

    def peer_connected(self, peer) -> bool:
        if peer.nonce in self.peers or not self.running:
            return False
        if self.bans.is_banned(peer.addr[0], self.now()):
            return False
        if peer.incoming:
            refusal = self._no_peer_slot(peer.addr[0])
            if refusal is not None:
                peer.disconnect(refusal)
                return False
        self.peers[peer.nonce] = peer
        self._peer_list = None
        factory = peer.factory
        if not peer.incoming:
            dialled = factory.addr
            if self._pending.get(dialled) is factory:
                del self._pending[dialled]
            factory.retry_delay = 1.0
            self.addresses.got_addr(peer.addr, peer.services, self.now())
        log.info('Peer %s:%s connected (%s, version %s, %s)', peer.addr[0], peer.addr[1],
                 'incoming' if peer.incoming else 'outgoing', peer.version, peer.sub_version)
        self.txs.peer_connected(peer)
        if self.config.advertise and self.listening_port is not None:
            self._advertise(peer)
        announced = peer.announced_best_share_hash
        if announced is not None and announced not in self.chain.tracker.items:
            self.sync.fetch(peer, [announced], 0, [], punish_timeouts=True)
        self.peers_changed.happened()
        return True

    def peer_disconnected(self, peer) -> None:
        nonce, outgoing = peer.nonce, not peer.incoming
        if self.peers.get(nonce) is peer:
            del self.peers[nonce]
            self._peer_list = None
            if outgoing:
                self._wake_dialler()
        if peer.advertise_timer is not None and peer.advertise_timer.active():
            peer.advertise_timer.cancel()
        self.txs.peer_disconnected(peer)
        log.info('Peer %s:%s disconnected: %s', peer.addr[0], peer.addr[1], peer.close_reason or 'closed')
        self.peers_changed.happened()

    def report_misbehaviour(self, peer, kind, reason) -> None:
        if kind == SELF_CONNECTION:
            if not peer.incoming:
                for addr in (peer.addr, peer.factory.addr):
                    self.own_addresses.add(addr)
                    self.addresses.forget(addr)
            return
        if kind == MALFORMED:
            return  # p2p.md §1, §9: a payload that does not decode costs the connection, not a ban
        self.punish(peer.addr[0], kind, reason)

    def handle_shares(self, peer, wrappers) -> None:
        self.sync.handle_shares(peer, wrappers)

    def handle_sharereq(self, peer, hashes, parents, stops) -> list[dict[str, Any]]:
        return self.sync.handle_sharereq(hashes, parents, stops)

    def handle_bestblock(self, peer, header) -> None:
        self.bestblock_received.happened(header, peer.addr)

    def got_addrme(self, peer, port) -> None:
        host = peer.addr[0]
        if _is_loopback(host):
            if self.rng.random() < 0.8:
                self._send_to_random_peer('addrme', port=port)
            return
        now = self.now()
        self.addresses.got_addr((host, port), peer.services, now)
        # §4.3: forwarded whether or not the store had room; only junk addresses stay here
        if is_dialable(host, port) and self.rng.random() < 0.8:
            self._forward_addr({'timestamp': int(now), 'address': {
                'services': peer.services, 'address': host, 'port': port}})

    def got_addrs(self, peer, records) -> None:
        now = self.now()
        for record in records:
            address = record['address']
            host, port = address['address'], address['port']
            self.addresses.got_addr((host, port), address['services'], min(now, record['timestamp']))
            if is_dialable(host, port) and self.rng.random() < 0.8:  # §4.4, as for addrme
                self._forward_addr(record)

    def get_good_peers(self, count) -> list[dict[str, Any]]:
        return [{'timestamp': int(entry.last_seen), 'address': {
                    'services': entry.services, 'address': entry.host, 'port': entry.port}}
                for entry in self.addresses.get_good_peers(count, self.now(), self.rng)]

    def add_known_txs(self, peer, txs) -> None:
        self.txs.add_known(txs)

    # --- services for the other rooms ---------------------------------------------------

    def set_mining_txs(self, txs) -> None:
        """The current block template's transactions {key: tx} (kept remembered by v<34 peers)."""
        self.txs.set_mining_txs(txs)

    def template_changed(self, template) -> None:
        """bitcoind's new block template: its transactions become the mining set."""
        if template is not None:
            self.set_mining_txs(dict(zip(template.transaction_keys, template.transactions)))

    def send_bestblock(self, header) -> None:
        """Tell every peer about our new best parent-chain header (§4.9)."""
        for peer in list(self.peers.values()):
            peer.send('bestblock', header=header)

    def relay_shares(self, shares) -> None:
        """Send shares to every peer except the one each came from (block solutions, §6.2)."""
        self.sync.relay(shares)

    def unban(self, host) -> None:
        self.bans.unban(host)

    # --- start and stop ---------------------------------------------------------------

    def start(self) -> None:
        """Load addresses and bans, listen, dial and start the loops (raises CannotListenError)."""
        now = self.now()
        self.running = True
        self.bans.load(now)
        self.addresses.load()
        if self.config.use_bootstrap:
            self._seed_bootstrap(now)
        if self.config.external_address is not None:
            self._resolve_external_address()
        self.chain.bad_peer.watch(self._bad_peer)
        if self.config.port is not None:
            self._listen()
        self._wake_dialler()
        self._every('getaddrs', 20.0, self._ask_for_addresses)
        self._every('save', 60.0, self.addresses.save, exponential=False)
        self._every('bans', 3600.0, lambda: self.bans.forget_old(self.now()), exponential=False)
        self._every('pings', pings.PING_INTERVAL,
                    lambda: pings.measure_all(list(self.peers.values()), self.reactor), exponential=False)
        for host, port in self.config.fixed_peers:
            factory = _PeerFactory(self, incoming=False, addr=(host, port), fixed=True)
            self._fixed.append(factory)
            self._dial(factory)
        if self.config.upnp and self.listening_port is not None:
            from p2pool.p2p.upnp import PortMapper
            self.upnp = PortMapper(self.listening_port, reactor=self.reactor)
            self.upnp.start()
        self.sync.start()

    def stop(self) -> defer.Deferred[Any]:
        """Close everything; the Deferred fires when the listener and all connections are gone."""
        self.running = False
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()
        self.sync.stop()
        self.chain.bad_peer.unwatch(self._bad_peer)
        if self.upnp is not None:
            self.upnp.stop()
        for factory in self._fixed + list(self._pending.values()):
            if factory.retry_call is not None and factory.retry_call.active():
                factory.retry_call.cancel()
            if factory.connector is not None and getattr(factory.connector, 'state', None) == 'connecting':
                factory.connector.stopConnecting()
        self.addresses.save()
        closing = [defer.maybeDeferred(self._listener.stopListening)] if self._listener else []
        for peer in list(self.connections):
            if peer.advertise_timer is not None and peer.advertise_timer.active():
                peer.advertise_timer.cancel()
            peer.disconnect('node stopping')
        if self.connections:
            closed: defer.Deferred[None] = defer.Deferred()
            self._closed_waiters.append(closed)
            closing.append(closed)
        return defer.DeferredList(closing)

    @property
    def listener(self) -> Any:
        """The IListeningPort for incoming peers, or None."""
        return self._listener

    def adopt_listener(self, fd: int, family: int) -> None:
        """Serve peers on a socket that already listens (handed over by a takeover); call before start()."""
        listener = self._listener = self.reactor.adoptStreamPort(fd, family, _PeerFactory(self, incoming=True))
        self.listening_port = listener.getHost().port
        log.info('Serving P2Pool peers on the handed-over port %d', self.listening_port)

    def _listen(self):
        if self._listener is not None:      # adopted
            return
        interfaces = [self.config.listen_interface] if self.config.listen_interface is not None else ['::', '']
        factory = _PeerFactory(self, incoming=True)
        for index, interface in enumerate(interfaces):
            try:
                self._listener = self.reactor.listenTCP(self.config.port, factory, interface=interface)
                break
            except tw_error.CannotListenError:
                if index == len(interfaces) - 1:
                    raise
        self.listening_port = self._listener.getHost().port
        log.info('Listening for P2Pool peers on port %d', self.listening_port)

    def _seed_bootstrap(self, now):
        for host, port in self.net.bootstrap_endpoints():
            try:
                ipaddress.ip_address(host)
                self.addresses.add_new((host, port), now)
            except ValueError:
                self.reactor.resolve(host).addCallbacks(
                    lambda ip, port=port: self.addresses.add_new((ip, port), self.now()),
                    lambda failure, host=host: log.info('Cannot resolve bootstrap host %s: %s',
                                                        host, failure.getErrorMessage()))

    def _resolve_external_address(self):
        host, port = self.config.external_address
        try:
            self.external_address = (normal_host(ipaddress.ip_address(host)), port)
        except ValueError:
            def resolved(ip):
                self.external_address = (ip, port)

            def failed(failure):
                log.warning('Cannot resolve the external address %s (advertising with addrme instead): %s',
                            host, failure.getErrorMessage())
            self.reactor.resolve(host).addCallbacks(resolved, failed)

    def _every(self, name, mean, job, exponential=True):
        """Run job() after each delay (Exp(mean) or exactly mean) while running."""
        def run():
            if not self.running:
                return
            try:
                job()
            except Exception:
                log.exception('Error in the %s loop of the P2P node', name)
            self._every(name, mean, job, exponential)
        delay = self.rng.expovariate(1 / mean) if exponential else mean
        self._timers[name] = self.reactor.callLater(delay, run)

    # --- connections ----------------------------------------------------------------------

    def _build_peer(self, factory, address):
        addr = (normal_host(address.host), address.port)
        if factory.incoming and not self._accept_incoming(addr[0]):
            return None
        rng = self.peer_rng() if self.peer_rng is not None else None
        peer = NodePeer(self, self.settings, incoming=factory.incoming, clock=self.reactor, rng=rng)
        peer.factory, peer.addr, peer.accept_order = factory, addr, next(self._accept_order)
        self.connections.add(peer)
        return peer

    def _accept_incoming(self, host):
        if not self.running:
            return False
        ban = self.bans.is_banned(host, self.now())
        if ban is not None:
            log.debug('Refused %s: banned (%s)', host, ban.reason)
            return False
        refusal = self._no_peer_slot(host)
        if refusal is not None:
            log.debug('Refused %s: %s', host, refusal)
            return False
        group = host_group(host)
        waiting = [peer for peer in self.connections if peer.incoming and not peer.handshake_done
                   and not peer.closing]
        if sum(1 for peer in waiting if _group_of(peer) == group) >= self.config.max_unhandshaken_per_group:
            log.debug('Refused %s: too many connections from its network still in their handshake', host)
            return False
        if len(waiting) >= self.config.max_unhandshaken:
            oldest = min(waiting, key=lambda peer: peer.accept_order)
            oldest.disconnect('evicted: %d incoming connections still in their handshake' % len(waiting))
        return True

    def _no_peer_slot(self, host):
        """Why an incoming peer from `host` cannot have a peer slot now, or None if it can."""
        group = host_group(host)
        incoming = same_group = 0     # one pass: asked at every accept and every incoming handshake
        for peer in self.peers.values():
            if peer.incoming and not peer.closing:
                incoming += 1
                if _group_of(peer) == group:
                    same_group += 1
        if incoming >= self.config.max_incoming:
            return 'all %d incoming peer slots are taken' % incoming
        if same_group >= self.config.max_per_group:
            return 'too many peers from its network'
        return None

    def _connection_lost(self, factory, peer):
        self.connections.discard(peer)
        if not factory.incoming:
            self._outgoing_ended(factory)
        if not self.connections:
            waiters, self._closed_waiters = self._closed_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _dial(self, factory):
        host, port = factory.addr
        factory.retry_call = None
        if not factory.fixed:
            self._pending[factory.addr] = factory
        factory.connector = self.reactor.connectTCP(host, port, factory, timeout=self.config.connect_timeout)

    def _outgoing_ended(self, factory):
        if not factory.fixed:
            if self._pending.get(factory.addr) is factory:
                del self._pending[factory.addr]
            return
        if not self.running or factory.addr in self.own_addresses or (
                factory.retry_call is not None and factory.retry_call.active()):
            return
        delay, factory.retry_delay = factory.retry_delay, min(60.0, factory.retry_delay * 2)
        ban = self.bans.is_banned(factory.addr[0], self.now())
        if ban is not None:
            delay = max(delay, ban.until - self.now())
        factory.retry_call = self.reactor.callLater(delay, self._dial, factory)

    def _peer_snapshot(self) -> list[Any]:
        """list(self.peers.values()), made again after a change of the peer set (a few times an hour):
        gossip draws a random peer from it for every address it forwards, the dialler counts the
        outgoing ones at every tick."""
        peers = self._peer_list
        if peers is None or len(peers) != len(self.peers):
            peers = self._peer_list = list(self.peers.values())
            self._outgoing = sum(1 for peer in peers if not peer.incoming)
        return peers

    def _outgoing_count(self) -> int:
        self._peer_snapshot()
        return self._outgoing

    def _wake_dialler(self) -> None:
        """§8: the dialler ticks every Exp(1 s) while there are fewer outgoing peers than the target
        and sleeps at the target (a tick would do nothing) until an outgoing peer goes away. The
        ticks are memoryless, so a fresh Exp(1 s) wait on waking is what ticking all along gives;
        a node with its outgoing peers no longer pays a timer a second."""
        if self.running and 'connect' not in self._timers:
            self._timers['connect'] = self.reactor.callLater(self.rng.expovariate(1.0), self._dialler_tick)

    def _dialler_tick(self) -> None:
        self._timers.pop('connect', None)
        if not self.running:
            return
        try:
            self._connect_some()
        except Exception:
            log.exception('Error in the connect loop of the P2P node')
        if self._outgoing_count() < self.config.outgoing_target:
            self._wake_dialler()

    def _connect_some(self):
        """§8 outbound: dial one good address when below the outgoing target."""
        if (self._outgoing_count() >= self.config.outgoing_target or len(self._pending) >= MAX_PENDING_ATTEMPTS
                or not len(self.addresses)):
            return
        now = self.now()
        connected = {peer.addr for peer in self.connections}
        pending_groups = {host_group(host) for host, _ in self._pending}
        for entry in self.addresses.get_good_peers(1, now, self.rng):
            addr = (entry.host, entry.port)
            if (addr in connected or addr in self.own_addresses or self.bans.is_banned(entry.host, now)
                    or host_group(entry.host) in pending_groups):
                continue
            self._dial(_PeerFactory(self, incoming=False, addr=addr))

    def _ask_for_addresses(self):
        if len(self.addresses) < LOW_ADDRESS_COUNT:
            self._send_to_random_peer('getaddrs', count=8)

    def _send_to_random_peer(self, command, **fields):
        peers = self._peer_snapshot()
        if peers:
            self.rng.choice(peers).send(command, **fields)

    def _forward_addr(self, record):
        """§4.3, §4.4: one address record to a random peer, in an `addrs` message of its own."""
        peers = self._peer_snapshot()
        if not peers:
            return
        peer = self.rng.choice(peers)
        memo = self.settings.addrs_frames
        if memo is None:
            peer.send('addrs', addrs=[record])
            return
        # the encoding is a function of these four values (and of our settings, the memo's owner's)
        address = record['address']
        key = (record['timestamp'], address['services'], address['address'], address['port'])
        peer.send_frames(memo(key, lambda: peer.encode_frames('addrs', addrs=[record])))

    def _advertise(self, peer):
        """§8: at once and then after Exp(100 × peers + 1 s), tell the peer where we listen."""
        if peer.closing or not self.running:
            return
        if self.external_address is not None:
            host, port = self.external_address
            peer.send('addrs', addrs=[{'timestamp': int(self.now()), 'address': {
                'services': peer.services, 'address': host, 'port': port or self.listening_port}}])
        else:
            peer.send_frames(self._addrme_frames(peer))
        delay = self.rng.expovariate(1 / (100.0 * len(self.peers) + 1))
        peer.advertise_timer = self.reactor.callLater(delay, self._advertise, peer)

    def _addrme_frames(self, peer) -> list[bytes]:
        """The frames of our `addrme`: the same for every peer (all have our settings) while the
        listening port stays, so encoded once instead of at every advertisement."""
        port = self.listening_port
        cached = self._addrme_cache
        if cached is None or cached[0] != port:
            cached = self._addrme_cache = (port, peer.encode_frames('addrme', port=port))
        return cached[1]

    # --- bans ---------------------------------------------------------------------------

    def punish(self, host, kind, reason, ban_time=None, tolerated=False) -> Any:
        ban = self.bans.punish(host, kind, reason, self.now(), ban_time=ban_time, tolerated=tolerated)
        if ban is not None:
            for peer in [peer for peer in self.connections if peer.addr[0] == ban.host]:
                peer.disconnect('banned: %s' % ban.reason)
        return ban

    def _bad_peer(self, peer_addr, reason):
        self.punish(peer_addr[0], INVALID_SHARE, reason)
