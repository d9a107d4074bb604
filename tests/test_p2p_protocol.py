"""One peer connection: handshake, timeouts, limits, misbehaviour (p2p.md §3, §4, §9).

Unit tests drive PeerConnection over StringTransport with a task.Clock; the
loopback tests at the end run two connections over real TCP sockets in the
reactor thread of tests/twisted_helpers.py. StubNode is the smallest node the
protocol's interface needs.
"""
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet import protocol as tw_protocol, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from p2pool.bitcoin.data import header_type, tx_type
from p2pool.bitcoin.hashes import hash256, sha256d_pow
from p2pool.p2p import messages as m
from p2pool.p2p.protocol import (BAD_CHECKSUM, BAD_POW, FLOODING, MALFORMED, PROTOCOL_VIOLATION,
                                 SELF_CONNECTION, Misbehaviour, PeerConnection, PeerFactory,
                                 ShareRequestError, ShareRequestTimeout)
from p2pool.p2p.peersettings import PeerSettings
from test_p2p_messages import any_message
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)

PREFIX = bytes.fromhex('2472ef181efcd37b')
SHARE = {'type': 35, 'contents': b'share-bytes'}
TX = {'version': 1, 'tx_ins': [{'previous_output': None, 'script': b'\x01\x02', 'sequence': None}],
      'tx_outs': [{'value': 5000, 'script': b'\x51'}], 'lock_time': 0}


class StubNode:
    """Records every call of the node interface; serves shares from a dict."""

    def __init__(self, nonce, minimum_protocol_version=3500, best=None):
        self.nonce, self.minimum_protocol_version, self.best = nonce, minimum_protocol_version, best
        self.known_txs, self.chain = {}, {}
        self.peers, self.disconnected, self.reports = [], [], []
        self.shares, self.bestblocks, self.addrs, self.addrmes, self.added_txs = [], [], [], [], []
        self.good_peer_queries = 0
        self.good_peers = [{'timestamp': 1600000000,
                            'address': {'services': 0, 'address': '1.2.3.4', 'port': 9333}}]

    def best_share_hash(self):
        return self.best

    def peer_connected(self, peer):
        if any(other.nonce == peer.nonce for other in self.peers):
            return False
        self.peers.append(peer)
        return True

    def peer_disconnected(self, peer):
        self.peers.remove(peer)
        self.disconnected.append(peer)

    def report_misbehaviour(self, peer, kind, reason):
        self.reports.append((kind, reason))

    def handle_shares(self, peer, wrappers):
        if any(w['type'] == 99 for w in wrappers):
            raise Misbehaviour('invalid_share', 'type 99 is poison')
        self.shares.extend(wrappers)

    def handle_sharereq(self, peer, hashes, parents, stops):
        return [share for h in hashes for share in self.chain.get(h, [])][:parents + 1]

    def handle_bestblock(self, peer, header):
        self.bestblocks.append(header)

    def got_addrme(self, peer, port):
        self.addrmes.append(port)

    def got_addrs(self, peer, records):
        self.addrs.extend(records)

    def get_good_peers(self, count):
        self.good_peer_queries += 1
        return self.good_peers[:count]

    def add_known_txs(self, peer, txs):
        self.added_txs.append(txs)
        self.known_txs.update(txs)


def version_fields(nonce=2, version=3501, best_share_hash=None):
    return {'version': version, 'services': 0, 'nonce': nonce, 'sub_version': b'test', 'mode': 1,
            'addr_to': {'services': 0, 'address': '10.0.0.1', 'port': 9333},
            'addr_from': {'services': 0, 'address': '10.1.2.3', 'port': 9333},
            'best_share_hash': best_share_hash}


def frame(command, **fields):
    return m.encode_message(PREFIX, command, fields)


class Harness:
    """A PeerConnection on a StringTransport, with helpers to talk to it."""

    def __init__(self, node=None, **settings):
        self.clock = task.Clock()
        self.node = node or StubNode(nonce=1)
        self.settings = PeerSettings(prefix=PREFIX, **settings)
        self.peer = PeerConnection(self.node, self.settings, clock=self.clock, rng=random.Random(7))
        self.transport = StringTransport(hostAddress=IPv4Address('TCP', '10.0.0.1', 9333),
                                         peerAddress=IPv4Address('TCP', '10.1.2.3', 40000))
        self.peer.makeConnection(self.transport)
        self.decoder = m.FrameDecoder(PREFIX)

    def sent(self):
        """Messages written since the last call, as (command, fields)."""
        data, _ = self.transport.value(), self.transport.clear()
        return [(e.command, m.decode_payload(e.command, e.payload)) for e in self.decoder.events(data)]

    def receive(self, command, **fields):
        self.peer.dataReceived(frame(command, **fields))

    def handshake(self, **fields):
        self.receive('version', **version_fields(**fields))
        return self.sent()

    @property
    def closed(self):
        return self.transport.disconnecting


# --- handshake ------------------------------------------------------------------------------

def test_version_is_sent_on_connect_with_the_socket_addresses():
    h = Harness(StubNode(nonce=0x1234, best=77))
    [(command, fields)] = h.sent()
    assert command == 'version'
    assert fields['version'] == 3501 and fields['nonce'] == 0x1234 and fields['best_share_hash'] == 77
    assert fields['addr_to'] == {'services': 0, 'address': '10.1.2.3', 'port': 40000}
    assert fields['addr_from'] == {'services': 0, 'address': '10.0.0.1', 'port': 9333}
    assert fields['mode'] == 1 and fields['services'] == 0


def test_accepted_version_registers_the_peer_and_pings():
    h = Harness()
    h.sent()
    assert h.handshake(nonce=5, best_share_hash=99) == [('ping', {})]
    assert h.node.peers == [h.peer] and not h.closed
    assert (h.peer.version, h.peer.sub_version, h.peer.nonce) == (3501, 'test', 5)
    assert h.peer.announced_best_share_hash == 99
    h.peer.connectionLost()
    assert h.node.disconnected == [h.peer] and h.node.peers == []


def test_first_message_must_be_version():
    h = Harness()
    h.receive('ping')
    assert h.closed and h.node.reports == [(PROTOCOL_VIOLATION, 'first message was not version message')]
    h.peer.connectionLost()
    assert h.node.disconnected == []  # never registered


def test_second_version_is_misbehaviour():
    h = Harness()
    h.handshake()
    h.receive('version', **version_fields())
    assert h.closed and h.node.reports == [(PROTOCOL_VIOLATION, 'more than one version message')]


def test_too_old_version_is_refused_and_the_minimum_can_be_raised_at_run_time():
    h = Harness(StubNode(nonce=1, minimum_protocol_version=3301))
    h.handshake(version=3301)
    assert not h.closed
    h.node.minimum_protocol_version = 3500  # existing peers stay, new handshakes are refused
    late = Harness(h.node)
    late.handshake(nonce=3, version=3301)
    assert late.closed and not h.closed
    assert h.node.reports == [(PROTOCOL_VIOLATION, 'peer too old: version 3301 < 3500')]


def test_self_connection_is_detected_by_nonce():
    h = Harness(StubNode(nonce=42))
    h.handshake(nonce=42)
    assert h.closed and h.node.reports == [(SELF_CONNECTION, 'was connected to self')]
    assert h.node.peers == []


def test_duplicate_nonce_is_dropped_silently():
    node = StubNode(nonce=1)
    first, second = Harness(node), Harness(node)
    first.handshake(nonce=8)
    second.handshake(nonce=8)
    assert second.closed and not first.closed and node.reports == [] and node.peers == [first.peer]
    second.peer.connectionLost()
    assert node.disconnected == []


def test_handshake_timeout():
    h = Harness(handshake_timeout=10)
    h.clock.advance(9.9)
    assert not h.closed
    h.clock.advance(0.2)
    assert h.closed and h.peer.close_reason == 'handshake timeout' and h.node.reports == []


def test_idle_timeout_is_reset_by_received_data_and_pings_continue():
    h = Harness(idle_timeout=100, ping_interval_mean=30)
    h.handshake()
    for _ in range(5):
        h.clock.advance(60)
        h.receive('ping')
    assert not h.closed
    assert [c for c, _ in h.sent()].count('ping') >= 2  # the exponential ping loop ran
    h.clock.advance(101)
    assert h.closed and h.peer.close_reason == 'idle timeout'
    h.peer.connectionLost()
    assert not h.clock.getDelayedCalls()  # every timer stopped


# --- frames that earn a disconnect ------------------------------------------------------------

def test_bad_checksum_is_reported():
    h = Harness()
    h.handshake()
    bad = bytearray(frame('getaddrs', count=8))
    bad[-1] ^= 0xff
    h.peer.dataReceived(bytes(bad))
    assert h.closed and h.node.reports[0][0] == BAD_CHECKSUM


def test_garbage_is_skipped_without_a_report():
    h = Harness()
    h.handshake()
    h.peer.dataReceived(b'GET / HTTP/1.1\r\n\r\n' + frame('addrme', port=9444))
    assert not h.closed and h.node.reports == [] and h.node.addrmes == [9444]  # §1 resynchronisation


def test_oversized_frame_is_abandoned_before_its_payload_arrives():
    h = Harness(max_payload_size=1000)
    h.handshake()
    h.peer.dataReceived(PREFIX + b'shares'.ljust(12, b'\x00') + (10**6).to_bytes(4, 'little'))
    assert not h.closed and h.node.reports == [] and h.peer._decoder.buffered == 0
    h.receive('addrme', port=9445)  # scanning resumed
    assert h.node.addrmes == [9445]


def test_unknown_commands_are_ignored_and_malformed_payloads_reported():
    h = Harness()
    h.handshake()
    h.peer.dataReceived(m.frame(PREFIX, 'mystery', b'whatever'))
    assert not h.closed and h.node.reports == []
    h.peer.dataReceived(m.frame(PREFIX, 'getaddrs', b'\x01\x02') + frame('addrme', port=1))
    [(kind, reason)] = h.node.reports
    assert h.closed and kind == MALFORMED and reason.startswith('getaddrs message: ')
    assert h.node.addrmes == []  # nothing after the bad frame was processed


def test_node_misbehaviour_and_node_bugs_disconnect_without_escaping():
    h = Harness()
    h.handshake()
    h.receive('shares', shares=[{'type': 99, 'contents': b''}])
    assert h.closed and h.node.reports == [('invalid_share', 'type 99 is poison')]
    buggy = Harness()
    buggy.handshake()
    buggy.node.got_addrme = lambda peer, port: 1 / 0
    buggy.receive('addrme', port=1)
    assert buggy.closed and buggy.peer.close_reason == 'internal error' and buggy.node.reports == []


# --- rate limits ------------------------------------------------------------------------------

def test_sharereq_flood_is_rate_limited_then_reported():
    h = Harness(sharereq_limit=(3, 1.0), flood_tolerance=4)
    h.handshake()
    h.node.chain[5] = [SHARE]
    for i in range(6):
        h.receive('sharereq', id=i, hashes=[5], parents=0, stops=[])
    replies = [f['id'] for c, f in h.sent() if c == 'sharereply']
    assert replies == [0, 1, 2] and not h.closed  # three refused so far, under the tolerance
    h.clock.advance(1.0)  # the bucket refills: one more is served
    h.receive('sharereq', id=6, hashes=[5], parents=0, stops=[])
    h.receive('sharereq', id=7, hashes=[5], parents=0, stops=[])
    assert [f['id'] for c, f in h.sent() if c == 'sharereply'] == [6]
    assert h.closed and h.node.reports[0][0] == FLOODING


def test_share_and_addr_floods_are_counted_per_item():
    h = Harness(shares_limit=(10, 0.0), addrs_limit=(2, 0.0), flood_tolerance=2)
    h.handshake()
    h.receive('shares', shares=[SHARE] * 10)
    h.receive('shares', shares=[SHARE])
    assert len(h.node.shares) == 10 and not h.closed
    h.receive('addrs', addrs=h.node.good_peers * 3)
    assert h.node.addrs == [] and h.closed and h.node.reports[0][0] == FLOODING


# --- message handling -------------------------------------------------------------------------

def test_sharereq_is_served_and_too_long_replies_are_replaced():
    h = Harness(max_payload_size=200)
    h.handshake()
    h.node.chain[5] = [SHARE, SHARE]
    h.node.chain[6] = [{'type': 35, 'contents': b'x' * 300}]
    h.receive('sharereq', id=1, hashes=[5], parents=10, stops=[])
    h.receive('sharereq', id=2, hashes=[6], parents=10, stops=[])
    h.receive('sharereq', id=3, hashes=[], parents=10, stops=[])
    assert h.sent() == [('sharereply', {'id': 1, 'result': 'good', 'shares': [SHARE, SHARE]}),
                        ('sharereply', {'id': 2, 'result': 'too long', 'shares': []}),
                        ('sharereply', {'id': 3, 'result': 'good', 'shares': []})]


def test_share_requests_complete_fail_and_time_out():
    h = Harness(request_timeout=15)
    h.handshake()
    results = []
    good = h.peer.request_shares([5], 3, [1, 2])
    good.addCallback(results.append)
    bad = h.peer.request_shares([6], 0, [])
    bad.addErrback(lambda f: results.append(f.trap(ShareRequestError)))
    sent = [f for c, f in h.sent() if c == 'sharereq']
    assert [(f['hashes'], f['parents'], f['stops']) for f in sent] == [([5], 3, [1, 2]), ([6], 0, [])]
    h.receive('sharereply', id=sent[0]['id'], result='good', shares=[SHARE])
    h.receive('sharereply', id=sent[1]['id'], result='unk3', shares=[])
    h.receive('sharereply', id=12345, result='good', shares=[])  # unknown ids are ignored
    assert results == [[SHARE], ShareRequestError] and not h.closed
    late = h.peer.request_shares([7], 0, [])
    late.addErrback(lambda f: results.append(f.trap(ShareRequestTimeout)))
    h.clock.advance(15.1)
    assert results[-1] is ShareRequestTimeout and h.closed


def test_pending_requests_fail_when_the_connection_is_lost():
    h = Harness()
    h.handshake()
    failures = []
    h.peer.request_shares([5], 0, []).addErrback(lambda f: failures.append(f.trap(ShareRequestError)))
    h.peer.connectionLost()
    assert failures == [ShareRequestError] and not h.clock.getDelayedCalls()


def test_address_messages_reach_the_node():
    h = Harness()
    h.handshake()
    h.receive('addrme', port=9444)
    h.receive('addrs', addrs=h.node.good_peers)
    h.receive('getaddrs', count=8)
    assert h.node.addrmes == [9444] and h.node.addrs == h.node.good_peers
    assert h.sent() == [('addrs', {'addrs': h.node.good_peers})]


def mined_header(bits):
    header = {'version': 1, 'previous_block': None, 'merkle_root': 1, 'timestamp': 0, 'bits': bits, 'nonce': 0}
    while sha256d_pow(header_type.pack(header)) > 2**255:
        header['nonce'] += 1
    return header


def test_bestblock_pow_is_checked():
    h = Harness()
    h.handshake()
    good = mined_header(0x207fffff)  # regtest-easy target: the loop above meets it
    h.receive('bestblock', header=good)
    assert h.node.bestblocks == [good]
    h.receive('bestblock', header=dict(good, bits=0x03000001))  # target 1
    assert h.closed and h.node.reports == [(BAD_POW, 'received block header fails PoW test')]


def test_have_tx_view_is_capped_keeping_the_newest_keys():
    h = Harness(max_remote_tx_hashes=5)
    h.handshake()
    h.receive('have_tx', tx_hashes=[1, 2, 3, 4])
    h.receive('have_tx', tx_hashes=[5, 6, 1])
    assert sorted(h.peer.remote_tx_hashes) == [1, 3, 4, 5, 6]
    h.receive('losing_tx', tx_hashes=[3, 999])
    assert sorted(h.peer.remote_tx_hashes) == [1, 4, 5, 6]
    h.receive('have_tx', tx_hashes=list(range(100, 200)))
    assert sorted(h.peer.remote_tx_hashes) == list(range(195, 200))


def test_remember_and_forget_transactions():
    h = Harness()
    h.handshake()
    key = hash256(tx_type.pack(TX))
    h.receive('remember_tx', tx_hashes=[], txs=[TX])
    assert h.node.known_txs == {key: TX} and h.peer.remembered_txs == {key: TX}
    size = h.peer.remembered_txs_size
    assert size == 100 + len(tx_type.pack(TX))
    h.receive('forget_tx', tx_hashes=[key])
    assert h.peer.remembered_txs == {} and h.peer.remembered_txs_size == 0
    h.receive('remember_tx', tx_hashes=[key], txs=[])  # by key: found in the known pool
    assert h.peer.remembered_txs == {key: TX} and not h.closed
    h.receive('remember_tx', tx_hashes=[key], txs=[])  # the same key twice: dropped, no report
    assert h.closed and h.node.reports == []
    forgetful = Harness()
    forgetful.handshake()
    forgetful.receive('forget_tx', tx_hashes=[1])  # never remembered: dropped, no report
    assert forgetful.closed and forgetful.node.reports == []


def test_too_much_remembered_data_is_flooding():
    h = Harness(max_remembered_txs_size=2 * (100 + len(tx_type.pack(TX))))
    h.handshake()
    h.receive('remember_tx', tx_hashes=[], txs=[TX])
    assert not h.closed
    h.receive('remember_tx', tx_hashes=[], txs=[dict(TX, lock_time=1)])
    assert h.closed and h.node.reports[0][0] == FLOODING


def test_lost_transactions_stay_referencable_for_the_latency_window():
    h = Harness(latency_cache_seconds=20)
    h.handshake()
    h.sent()
    h.peer.send_losing_tx({77: TX})
    assert h.sent() == [('losing_tx', {'tx_hashes': [77]})]
    h.clock.advance(19)
    assert h.peer.lookup_tx(77) == TX
    h.clock.advance(2)
    assert h.peer.lookup_tx(77) is None


def test_long_share_pushes_are_split():
    h = Harness(max_payload_size=130)  # the version message still fits
    h.handshake()
    h.peer.send('shares', shares=[{'type': 35, 'contents': bytes([i]) * 40} for i in range(5)])
    sent = h.sent()
    assert len(sent) > 1 and [s for _, f in sent for s in f['shares']] == [
        {'type': 35, 'contents': bytes([i]) * 40} for i in range(5)]


# --- hypothesis: whatever arrives, dataReceived never raises and never hits a bug -------------

hostile_chunk = (st.binary(max_size=60)
                 | any_message.map(lambda message: frame(message[0], **message[1]))
                 | st.builds(lambda c, p: m.frame(PREFIX, c, p),
                             st.sampled_from(sorted(m.MESSAGE_TYPES)), st.binary(max_size=120))
                 | st.builds(lambda c, n, rest: PREFIX + c.encode().ljust(12, b'\x00')
                             + n.to_bytes(4, 'little') + rest,
                             st.sampled_from(sorted(m.MESSAGE_TYPES)), st.integers(0, 2**32 - 1),
                             st.binary(max_size=40)))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(hostile_chunk, max_size=8))
def test_hostile_frames_never_raise(handshake_first, chunks):
    h = Harness(max_payload_size=10_000)
    if handshake_first:
        h.handshake()
    for chunk in chunks:
        h.peer.dataReceived(chunk)  # must not raise
    assert h.peer.close_reason != 'internal error'
    h.peer.connectionLost()
    assert not h.clock.getDelayedCalls()


# --- real loopback sockets -------------------------------------------------------------------

class Loopback:
    """Listening and connecting PeerConnections on 127.0.0.1, created in the reactor thread."""

    def __init__(self, reactor):
        self.reactor, self.ports, self.connectors = reactor, [], []

    def listen(self, node, settings):
        port = run_in_reactor(self.reactor.listenTCP, 0, PeerFactory(node, settings, incoming=True),
                              interface='127.0.0.1')
        self.ports.append(port)
        return port.getHost().port

    def connect(self, port, factory):
        connector = run_in_reactor(self.reactor.connectTCP, '127.0.0.1', port, factory)
        self.connectors.append(connector)

    def close(self):
        for connector in self.connectors:
            run_in_reactor(connector.disconnect)
        for port in self.ports:
            run_in_reactor(port.stopListening)


@pytest.fixture
def loopback(reactor):
    net = Loopback(reactor)
    yield net
    net.close()


def fast_settings(**overrides):
    return PeerSettings(prefix=PREFIX, **overrides)


def test_loopback_handshake_and_share_request(loopback):
    server_node, client_node = StubNode(nonce=1, best=5), StubNode(nonce=2)
    server_node.chain[5] = [SHARE]
    port = loopback.listen(server_node, fast_settings())
    loopback.connect(port, PeerFactory(client_node, fast_settings(), incoming=False))
    wait_for(lambda: server_node.peers and client_node.peers)
    client = client_node.peers[0]
    assert client.announced_best_share_hash == 5 and client.version == 3501
    assert run_in_reactor(client.request_shares, [5], 0, []) == [SHARE]
    run_in_reactor(client.send, 'addrme', port=9555)
    wait_for(lambda: server_node.addrmes == [9555])
    run_in_reactor(client.disconnect, 'test over')
    wait_for(lambda: server_node.disconnected and client_node.disconnected)
    assert server_node.reports == client_node.reports == []


def test_loopback_too_old_peer_is_refused(loopback):
    server_node, client_node = StubNode(nonce=1, minimum_protocol_version=3500), StubNode(nonce=2)
    port = loopback.listen(server_node, fast_settings())
    loopback.connect(port, PeerFactory(client_node, fast_settings(protocol_version=3301), incoming=False))
    wait_for(lambda: server_node.reports)
    assert server_node.reports == [(PROTOCOL_VIOLATION, 'peer too old: version 3301 < 3500')]
    wait_for(lambda: not client_node.peers)  # the refused side sees the connection close
    assert server_node.peers == []


def test_loopback_self_connection_is_detected(loopback):
    node = StubNode(nonce=77)
    port = loopback.listen(node, fast_settings())
    loopback.connect(port, PeerFactory(node, fast_settings(), incoming=False))
    # Usually both ends report; the side that aborts first may keep the other from
    # ever reading its version, so only one report is certain.
    wait_for(lambda: node.reports)
    assert set(node.reports) == {(SELF_CONNECTION, 'was connected to self')} and node.peers == []


class RawClient(tw_protocol.Protocol):
    """Writes fixed bytes on connect and records when the server hangs up."""

    def __init__(self, data):
        self.data, self.lost = data, False

    def connectionMade(self):
        self.transport.write(self.data)

    def connectionLost(self, reason=None):
        self.lost = True


@pytest.mark.parametrize('data, kind', [
    (frame('ping'), PROTOCOL_VIOLATION),
    (frame('version', **version_fields()) + frame('ping')[:-4] + b'\0\0\0\0', BAD_CHECKSUM),
])
def test_loopback_bad_frames_disconnect_and_report(loopback, data, kind):
    node = StubNode(nonce=1)
    port = loopback.listen(node, fast_settings())
    client = RawClient(data)
    loopback.connect(port, tw_protocol.ClientFactory.forProtocol(lambda: client))
    wait_for(lambda: client.lost and node.reports)
    assert node.reports[0][0] == kind


@pytest.mark.parametrize('data', [
    b'\x16\x03\x01 not p2pool at all',
    frame('version', **version_fields()) + PREFIX + b'shares'.ljust(12, b'\0') + b'\xff' * 4,
])
def test_loopback_garbage_and_oversized_frames_are_skipped(loopback, data):
    node = StubNode(nonce=1)
    port = loopback.listen(node, fast_settings(handshake_timeout=0.5, idle_timeout=0.5))
    client = RawClient(data)
    loopback.connect(port, tw_protocol.ClientFactory.forProtocol(lambda: client))
    wait_for(lambda: client.lost)  # only a timeout ends the connection (§1, §3)
    assert node.reports == []


def test_loopback_flood_is_rate_limited_and_reported(loopback):
    server_node, client_node = StubNode(nonce=1), StubNode(nonce=2)
    port = loopback.listen(server_node, fast_settings(getaddrs_limit=(2, 0.0), flood_tolerance=3))
    loopback.connect(port, PeerFactory(client_node, fast_settings(), incoming=False))
    wait_for(lambda: client_node.peers and server_node.peers)
    client = client_node.peers[0]

    def flood():
        for _ in range(10):
            client.send('getaddrs', count=8)
    run_in_reactor(flood)
    wait_for(lambda: server_node.reports and client_node.disconnected)
    assert server_node.reports[0][0] == FLOODING
    assert server_node.good_peer_queries == 2  # the burst was answered, the rest refused


def test_loopback_idle_peers_time_out(loopback):
    idle = dict(idle_timeout=0.3, ping_interval_mean=10_000.0)
    server_node, client_node = StubNode(nonce=1), StubNode(nonce=2)
    port = loopback.listen(server_node, fast_settings(**idle))
    loopback.connect(port, PeerFactory(client_node, fast_settings(**idle), incoming=False))
    wait_for(lambda: server_node.disconnected and client_node.disconnected)
    closed = [p.close_reason for p in server_node.disconnected + client_node.disconnected]
    assert 'idle timeout' in closed and server_node.reports == client_node.reports == []


def test_frames_encoded_once_go_out_as_send_would_write_them():
    h = Harness()
    h.handshake()
    h.peer.send('addrme', port=9333)
    sent = h.transport.value()
    h.transport.clear()
    h.peer.send_frames(h.peer.encode_frames('addrme', port=9333))
    assert h.transport.value() == sent and h.sent() == [('addrme', {'port': 9333})]
