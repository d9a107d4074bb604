"""The P2P node's own logic without sockets (p2p.md §5-§9).

P2PNode runs on a MemoryReactorClock with the real ShareChain (p2pool/sharechain/chain.py)
and FakePeers in place of connections: each records what it was sent and what it
was asked. The address store and bans alone are in test_p2p_addrstore.py, real
sockets in test_p2p_network.py.
"""
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet import defer, error as tw_error
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from p2pool.bitcoin.data import bits_to_target, tx_key
from p2pool.app.cli import parse_args
from p2pool.sharechain.chain import ShareChain
from p2pool.p2p import messages
from p2pool.p2p.addrstore import host_group
from p2pool.p2p.nodeconfig import NodeConfig, config_from_args
from p2pool.p2p.peerset import P2PNode
from p2pool.p2p.protocol import (FLOODING, MALFORMED, SELF_CONNECTION, Misbehaviour, ProtocolError,
                                 ShareRequestError, ShareRequestTimeout)
from p2pool.sharechain.tracker import Tracker
from p2p_helpers import NET, copies, mine, tweaked_share


def tx(number):
    return {'version': 1, 'tx_ins': [{'previous_output': None, 'script': b'\x01\x02', 'sequence': None}],
            'tx_outs': [{'value': 5000 + number, 'script': b'\x51'}], 'lock_time': number}


@pytest.fixture(scope='module')
def shares():
    return mine(NET.CHAIN_LENGTH + 30, tracker=Tracker())


def test_forwarded_address_records_take_their_frames_from_the_settings_memo():
    """PeerSettings.addrs_frames (the simulator's memo shared by its nodes): a record forwarded again
    goes out in the frames encoded the first time; the same draws pick the same peers."""
    node, encoded, memo = make_node(), [], {}

    def addrs_frames(key, encode):
        if key not in memo:
            encoded.append(key)
            memo[key] = encode()
        return memo[key]

    node.settings.addrs_frames = addrs_frames
    peers = [connect(node, host='10.0.0.%d' % index) for index in range(2, 5)]
    record = {'timestamp': 1_700_000_000, 'address': {'services': 3, 'address': '10.9.9.9', 'port': 1}}
    for _ in range(30):
        node.got_addrs(peers[0], [record])
    forwarded = [fields for peer in peers for command, fields in peer.gossip if command == 'addrs']
    assert 10 <= len(forwarded) <= 30 and all(fields == {'addrs': [record]} for fields in forwarded)
    assert encoded == [(1_700_000_000, 3, '10.9.9.9', 1)]


@pytest.fixture(scope='module')
def v17():
    """A v17 chain whose share i introduces transaction tx(i)."""
    return mine(30, tracker=Tracker(), version=17, transactions=lambda index: [tx(index)])


GOSSIP = {'addrme', 'addrs', 'getaddrs'}


class FakePeer:
    """What the node sees of a connection; address gossip is recorded apart from the rest."""

    def __init__(self, node, host='10.0.0.2', port=9333, nonce=None, incoming=False, announced=None):
        self.node, self.addr, self.incoming = node, (host, port), incoming
        self.nonce = nonce if nonce is not None else random.getrandbits(64)
        self.services, self.version, self.sub_version = 0, 3501, 'fake'
        self.announced_best_share_hash = announced
        self.factory = type('Factory', (), {'addr': self.addr, 'retry_delay': 8.0, 'fixed': False})()
        self.sent, self.gossip, self.requests, self.misbehaviours = [], [], [], []
        self.remote_tx_hashes, self.remembered_txs, self.latency_cache = {}, {}, {}
        self.closing, self.close_reason, self.advertise_timer = False, None, None
        self.handshake_done = True

    def send(self, command, **fields):
        (self.gossip if command in GOSSIP else self.sent).append((command, fields))

    @property
    def settings(self):
        return self.node.settings

    def encode_frames(self, command, **fields):
        return [(command, fields)]   # a relay's frames, opaque to the node: recorded as sent

    def send_frames(self, frames):
        for command, fields in frames:
            self.send(command, **fields)

    def send_losing_tx(self, txs):
        self.latency_cache.update(txs)
        self.send('losing_tx', tx_hashes=list(txs))

    def lookup_tx(self, key):
        return self.node.known_txs.get(key) or self.latency_cache.get(key)

    def request_shares(self, hashes, parents, stops):
        d = defer.Deferred()
        self.requests.append((hashes, parents, stops, d))
        return d

    def disconnect(self, reason):
        self.closing, self.close_reason = True, reason

    def misbehaved(self, kind, reason):
        self.misbehaviours.append(kind)
        self.disconnect(reason)

    def commands(self):
        found, self.sent = [command for command, _ in self.sent], []
        return found


def make_node(chain_shares=(), store=None, **config):
    reactor = MemoryReactorClock()
    reactor.advance(1_700_000_000)
    chain = ShareChain(NET, store, clock=time.time)
    if chain_shares:
        chain.add_shares(copies(chain_shares))
    settings = dict(port=9333, outgoing_target=0, use_bootstrap=False)
    settings.update(config)
    node = P2PNode(chain, store, NodeConfig(**settings), reactor=reactor, rng=random.Random(5))
    node.start()
    return node


def connect(node, **kwargs):
    peer = FakePeer(node, **kwargs)
    node.connections.add(peer)
    assert node.peer_connected(peer)
    return peer


# --- peers and the node interface ---------------------------------------------------------

def test_peers_register_once_per_nonce_and_outgoing_addresses_are_stored():
    node = make_node()
    peer = connect(node, host='10.0.0.2', nonce=7)
    assert node.peers == {7: peer} and ('10.0.0.2', 9333) in node.addresses
    assert not node.peer_connected(FakePeer(node, host='10.0.0.3', nonce=7))
    connect(node, host='10.0.0.4', incoming=True)
    assert ('10.0.0.4', 9333) not in node.addresses   # an incoming port is not a listening port
    node.peer_disconnected(peer)
    assert 7 not in node.peers


def test_an_unknown_announced_best_share_is_fetched(shares):
    node = make_node()
    peer = connect(node, announced=shares[-1].hash)
    [(hashes, parents, stops, d)] = peer.requests
    assert (hashes, parents, stops) == ([shares[-1].hash], 0, [])
    d.callback([{'type': 35, 'contents': shares[-1].contents_bytes}, {'type': 16, 'contents': b'old'}])
    assert shares[-1].hash in node.chain.tracker.items
    assert node.chain.tracker.items[shares[-1].hash].peer_addr == peer.addr
    known = connect(node, announced=shares[-1].hash)
    assert known.requests == []


def test_a_failed_announced_fetch_gets_a_short_ban(shares):
    node = make_node()
    peer = connect(node, host='10.0.0.9', announced=shares[-1].hash)
    peer.closing = True
    peer.requests[0][3].errback(ShareRequestTimeout('no reply'))
    ban = node.bans.is_banned('10.0.0.9', node.now())
    assert ban.reason.startswith('download_failure') and ban.until == node.now() + 30


def test_best_share_changes_relay_up_to_five_shares_except_to_their_sender(shares):
    node = make_node(shares[:-10])
    # the shares are mined near the wall clock, so one of them is now and then also a block, which
    # §6.2 sends alone first when its parent block is recent: bury every block to test the best-share relay
    node.chain.rel_height = lambda block_hash: -5
    sender, other = connect(node, host='10.0.0.2'), connect(node, host='10.0.0.3')
    sender.commands(), other.commands()
    node.handle_shares(sender, [{'type': 35, 'contents': s.contents_bytes} for s in shares[-10:]])
    assert node.chain.best_share_hash.value == shares[-1].hash
    [(command, fields)] = other.sent
    assert command == 'shares'
    assert [w['contents'] for w in fields['shares']] == [s.contents_bytes for s in reversed(shares[-5:])]
    assert sender.sent == []
    mined = mine(1, previous=shares[-1], tracker=_tracker_with(shares))
    node.chain.add_shares(copies(mined))   # found locally: goes to everybody, alone
    assert [len(p.sent[-1][1]['shares']) for p in (sender, other)] == [1, 1]


def test_relayed_frames_come_from_a_shared_memo_when_the_node_has_one(shares):
    """The simulator's nodes share one memo of relay frames (ShareSync.relay_frames): a share goes
    out in the frames made for it the first time, to every peer but its sender."""
    memo = {}
    nodes = [make_node(shares[:-1]) for _ in range(2)]
    peers = []
    for node in nodes:
        node.sync.relay_frames = memo
        peers.append((connect(node, host='10.0.0.2'), connect(node, host='10.0.0.3')))
    relayed = copies(shares[-1:])
    relayed[0].peer_addr = ('10.0.0.2', 9333)
    for node in nodes:
        node.sync.relay(relayed)
    assert len(memo) == 1
    [[(command, fields)]] = memo.values()   # FakePeer's frames: what it records as sent
    for sender, other in peers:
        assert other.sent[-1] == (command, fields) and other.sent[-1][1]['shares'] is fields['shares']
        assert all(sent != 'shares' for sent, _ in sender.sent)


def _tracker_with(shares):
    tracker = Tracker()
    for share in copies(shares):
        tracker.add(share)
    return tracker


def test_sharereq_is_served_within_the_reply_limit(shares):
    node = make_node(shares)
    peer = connect(node)
    served = node.handle_sharereq(peer, [shares[-1].hash], 3, [shares[-3].hash])
    assert [w['contents'] for w in served] == [s.contents_bytes for s in (shares[-1], shares[-2])]
    asked = []
    node.chain.get_shares_for_request = lambda hashes, parents, stops: asked.append(parents) or []
    node.handle_sharereq(peer, [1, 2, 3], 10**6, [])
    assert asked == [333]


def test_received_shares_are_checked(shares):
    node = make_node()
    peer = connect(node)
    node.handle_shares(peer, [{'type': 16, 'contents': b'obsolete, skipped'}])
    with pytest.raises(messages.DecodeError):
        node.handle_shares(peer, [{'type': 35, 'contents': b'garbage'}])
    with pytest.raises(messages.DecodeError):
        node.handle_shares(peer, [{'type': 99, 'contents': b''}])
    with pytest.raises(Misbehaviour) as raised:
        node.handle_shares(peer, [tweaked_share(shares[-1], pow_ok=False)])
    assert raised.value.kind == 'invalid_share' and 'PoW' in raised.value.reason
    assert len(node.chain.tracker.items) == 0
    node.handle_shares(peer, [tweaked_share(shares[-1], pow_ok=True)])   # parses; think() judges it
    assert len(node.chain.tracker.items) == 1


# --- transactions for v<34 shares (§5) -----------------------------------------------------

def test_v17_shares_travel_with_their_transactions(v17):
    node = make_node(v17[:-3])
    node.chain.known_txs.add({tx_key(tx(i)): tx(i) for i in range(len(v17) - 3)})
    peer = connect(node)
    assert peer.sent[0] == ('have_tx', {'tx_hashes': list(node.chain.known_txs)})
    peer.commands()
    wrappers = [{'type': 17, 'contents': s.contents_bytes} for s in v17[-3:]]
    with pytest.raises(ProtocolError, match='unknown transaction'):
        node.handle_shares(peer, wrappers)
    assert v17[-1].hash not in node.chain.tracker.items
    peer.remembered_txs = {tx_key(tx(i)): tx(i) for i in range(len(v17) - 3, len(v17))}
    node.handle_shares(peer, wrappers)
    assert node.chain.best_share_hash.value == v17[-1].hash
    assert tx_key(tx(len(v17) - 1)) in node.chain.known_txs
    assert peer.commands() == ['have_tx']   # the pool grew; the shares are not sent back

    other = connect(node, host='10.0.0.7')
    other.remote_tx_hashes = {tx_key(tx(len(v17) - 1)): None}     # it has the newest one
    other.commands()
    node.relay_shares(copies(v17[-2:]))
    assert other.commands() == ['remember_tx', 'shares', 'forget_tx']


def test_v17_relay_order_and_size_cap(v17):
    node = make_node(v17)
    node.chain.known_txs.add({tx_key(tx(i)): tx(i) for i in range(len(v17))})
    peer = connect(node)
    peer.commands()
    node.relay_shares(v17[-2:])
    (c1, remember), (c2, sent), (c3, forget) = peer.sent
    keys = [tx_key(tx(len(v17) - 2)), tx_key(tx(len(v17) - 1))]
    assert (c1, c2, c3) == ('remember_tx', 'shares', 'forget_tx')
    assert remember == {'tx_hashes': [], 'txs': [tx(len(v17) - 2), tx(len(v17) - 1)]}
    assert len(sent['shares']) == 2 and forget == {'tx_hashes': keys}
    peer.sent = []
    peer.remembered_for_us_size = node.settings.max_remembered_txs_size - 50
    node.relay_shares(v17[-1:])
    assert peer.sent == []   # the peer could not keep the transactions: nothing is sent
    node.chain.known_txs.remove([keys[-1]])
    assert peer.commands() == ['losing_tx']
    peer.remembered_for_us_size = 0
    node.relay_shares(v17[-1:])
    assert peer.sent == []   # a transaction we lost: the share cannot go either


def test_transaction_views_are_mirrored(v17):
    node = make_node(v17[:5])
    peer = connect(node)
    assert peer.commands() == []   # nothing known yet, nothing to mine
    node.chain.known_txs.add({1: tx(1)})
    assert peer.sent == [('have_tx', {'tx_hashes': [1]})]      # at once: the pool's changed event
    peer.sent = []
    node.chain.known_txs.add({1: tx(1)})
    assert peer.sent == []                                      # nothing new
    node.chain.known_txs.remove([1])
    assert peer.sent == [('losing_tx', {'tx_hashes': [1]})] and peer.lookup_tx(1) == tx(1)
    peer.sent, peer.remote_tx_hashes = [], {tx_key(tx(2)): None}
    node.set_mining_txs({tx_key(tx(2)): tx(2), tx_key(tx(3)): tx(3)})
    assert peer.sent == [('remember_tx', {'tx_hashes': [tx_key(tx(2))], 'txs': [tx(3)]})]
    peer.sent = []
    node.set_mining_txs({tx_key(tx(3)): tx(3)})
    assert peer.sent == [('forget_tx', {'tx_hashes': [tx_key(tx(2))]})]


def test_v35_peers_do_not_sync_transactions(shares):
    node = make_node(shares)
    node.chain.known_txs.add({1: tx(1)})
    peer = connect(node)
    node.reactor.advance(2)
    assert 'have_tx' not in peer.commands() and not peer.sync_txs


# --- gossip and advertising (§4.3-§4.5, §7, §8) -----------------------------------------------

def test_addrme_and_addrs_gossip():
    node = make_node()
    local, remote, other = (connect(node, host='127.0.0.1'), connect(node, host='10.0.0.2', incoming=True),
                            connect(node, host='10.0.0.3'))
    for peer in (local, remote, other):
        peer.gossip = []
    for _ in range(20):
        node.got_addrme(local, 5555)
    assert ('127.0.0.1', 5555) not in node.addresses
    forwarded = [f for p in (local, remote, other) for c, f in p.gossip if c == 'addrme']
    assert 10 <= len(forwarded) <= 20 and all(f == {'port': 5555} for f in forwarded)
    node.got_addrme(remote, 7777)
    assert node.addresses.get(('10.0.0.2', 7777)).last_seen == node.now()
    future = node.now() + 10**6
    node.got_addrs(remote, [{'timestamp': future, 'address': {'services': 3, 'address': '10.9.9.9', 'port': 1}},
                            {'timestamp': 5, 'address': {'services': 0, 'address': '0.0.0.0', 'port': 1}}])
    assert node.addresses.get(('10.9.9.9', 1))[2:] == (3, node.now(), node.now())
    assert ('0.0.0.0', 1) not in node.addresses
    good = node.get_good_peers(100)
    assert {'timestamp': int(node.now()), 'address': {'services': 3, 'address': '10.9.9.9', 'port': 1}} in good


def test_advertising_sends_addrme_or_the_external_address():
    node = make_node()
    node.listening_port = 9333
    peer = connect(node)
    assert peer.gossip == [('addrme', {'port': 9333})]
    node.reactor.advance(10**4)
    assert peer.gossip.count(('addrme', {'port': 9333})) > 1 and peer.advertise_timer.active()
    node.peer_disconnected(peer)
    assert not peer.advertise_timer.active()
    external = make_node(external_address=('203.0.113.5', None))
    external.listening_port = 9444
    peer = connect(external)
    assert peer.gossip == [('addrs', {'addrs': [{'timestamp': int(external.now()), 'address': {
        'services': 0, 'address': '203.0.113.5', 'port': 9444}}]})]
    assert connect(make_node(advertise=False)).gossip == []


def test_external_host_names_are_resolved_once():
    reactor = MemoryReactorClock()
    reactor.resolve = lambda host: defer.succeed('198.51.100.7')
    chain = ShareChain(NET, None, clock=time.time)
    node = P2PNode(chain, None, NodeConfig(port=9333, outgoing_target=0, use_bootstrap=False,
                                           external_address=('pool.example', 9555)), reactor=reactor)
    node.start()
    assert node.external_address == ('198.51.100.7', 9555)
    assert connect(node).gossip[0][1]['addrs'][0]['address']['address'] == '198.51.100.7'


def test_bootstrap_addresses_seed_the_store():
    reactor = MemoryReactorClock()
    reactor.resolve = lambda host: defer.succeed('198.51.100.8')
    chain = ShareChain(NET, None, clock=time.time)
    node = P2PNode(chain, None, NodeConfig(port=None, outgoing_target=0), reactor=reactor)
    node.net = type('Net', (), {'bootstrap_endpoints': lambda self: (('192.0.2.1', 9333), ('seed.example', 9334))})()
    node.start()
    assert ('192.0.2.1', 9333) in node.addresses and ('198.51.100.8', 9334) in node.addresses
    assert node.listening_port is None


def test_getaddrs_when_the_store_runs_low():
    node = make_node()
    peer = connect(node)
    node.reactor.advance(200)
    assert ('getaddrs', {'count': 8}) in peer.gossip


# --- misbehaviour, limits, connections (§8, §9) --------------------------------------------------

def test_misbehaviour_bans_the_host_and_drops_all_its_connections():
    node = make_node()
    first, second = connect(node, host='10.0.0.2'), connect(node, host='10.0.0.2', port=1)
    bystander = connect(node, host='10.0.0.3')
    node.report_misbehaviour(first, FLOODING, 'too many getaddrs')
    assert node.bans.is_banned('10.0.0.2', node.now()).reason == 'flooding: too many getaddrs'
    assert first.closing and second.closing and not bystander.closing
    node.report_misbehaviour(bystander, MALFORMED, 'short payload')   # dropped, never banned (§1)
    assert not node.bans.is_banned('10.0.0.3', node.now())
    node.chain.bad_peer.happened(('10.0.0.3', 9333), 'sent a share that failed verification')
    assert bystander.closing and node.bans.is_banned('10.0.0.3', node.now()).reason.startswith('invalid_share')


def test_self_connection_marks_our_address_instead_of_banning():
    node = make_node()
    node.addresses.got_addr(('10.0.0.2', 9333), 0, node.now())
    peer = FakePeer(node, host='10.0.0.2')
    node.report_misbehaviour(peer, SELF_CONNECTION, 'was connected to self')
    assert not node.bans.is_banned('10.0.0.2', node.now())
    assert ('10.0.0.2', 9333) in node.own_addresses and ('10.0.0.2', 9333) not in node.addresses


def test_incoming_connections_are_limited():
    node = make_node(max_incoming=4, max_per_group=3, max_unhandshaken=3, max_unhandshaken_per_group=2)
    factory = node.reactor.tcpServers[0][1]

    def accept(host):
        address = (IPv6Address if ':' in host else IPv4Address)('TCP', host, 40000)
        peer = factory.buildProtocol(address)
        if peer is not None:
            peer.makeConnection(StringTransport(peerAddress=address))
        return peer
    waiting = [accept('10.1.0.%d' % i) for i in range(2)]
    assert all(waiting)
    assert accept('10.1.9.9') is None                       # a third unhandshaken one from the same /16
    assert accept('::ffff:10.1.9.9') is None
    assert accept('2001:db8::1') is not None
    newcomer = accept('10.4.0.1')                           # the pool of 3 is full: the oldest goes
    assert newcomer is not None and waiting[0].closing and not waiting[1].closing
    node.connections.clear()
    for index in range(3):                                  # handshaken peers take the slots
        connect(node, host='10.1.0.%d' % index, incoming=True)
    assert accept('10.1.9.9') is None                       # a fourth peer from the same /16
    connect(node, host='10.2.0.1', incoming=True)
    assert accept('10.3.0.1') is None                       # max_incoming peers reached
    node.peers.clear()
    node.connections.clear()
    node.bans.punish('10.3.0.1', 'flooding', 'x', node.now())
    assert accept('10.3.0.1') is None and accept('10.3.0.2') is not None


def test_a_handshake_beyond_the_peer_slots_is_refused():
    node = make_node(max_incoming=1)
    connect(node, host='10.1.0.1', incoming=True)
    late = FakePeer(node, host='10.2.0.1', incoming=True)
    assert not node.peer_connected(late) and late.closing and 'slots' in late.close_reason


def test_outgoing_connections_go_to_good_unbanned_addresses():
    node = make_node(outgoing_target=2)
    for host in ('10.0.0.1', '10.0.0.2', '10.5.0.1'):
        node.addresses.got_addr((host, 9333), 0, node.now())
    node.bans.punish('10.5.0.1', 'flooding', 'x', node.now())
    node.reactor.advance(60)
    dialled = [(host, port) for host, port, *_ in node.reactor.tcpClients]
    assert dialled and ('10.5.0.1', 9333) not in dialled
    assert len({host_group(host) for host, _ in dialled}) == len(dialled)  # one pending per /16
    assert len(node._pending) == len(dialled)


def test_the_dialler_sleeps_at_its_outgoing_target_and_wakes_when_an_outgoing_peer_leaves():
    node = make_node(outgoing_target=1)
    assert 'connect' in node._timers                      # below the target: ticking
    node.addresses.got_addr(('10.0.0.9', 9333), 0, node.now())
    outgoing = connect(node, host='10.0.0.2')
    node.reactor.advance(60)
    assert 'connect' not in node._timers                  # at the target: no timer a second
    incoming = connect(node, host='10.0.0.3', incoming=True)
    node.peer_disconnected(incoming)
    assert 'connect' not in node._timers                  # an incoming peer does not count
    dialled = len(node.reactor.tcpClients)
    node.peer_disconnected(outgoing)
    for _ in range(60):
        node.reactor.advance(1)
    assert len(node.reactor.tcpClients) > dialled        # woke and dialled


def test_fixed_peers_are_redialled_with_backoff():
    node = make_node(fixed_peers=[('10.0.0.8', 9333)])
    assert [c[:2] for c in node.reactor.tcpClients] == [('10.0.0.8', 9333)]
    factory = node.reactor.tcpClients[0][2]
    refused = Failure(tw_error.ConnectionRefusedError())
    factory.clientConnectionFailed(None, refused)
    node.reactor.advance(1)
    factory.clientConnectionFailed(None, refused)
    node.reactor.advance(1.5)
    assert len(node.reactor.tcpClients) == 2
    node.reactor.advance(1)
    assert len(node.reactor.tcpClients) == 3


# --- the download loop (§6.5) ----------------------------------------------------------------

def test_block_solutions_from_peers_are_relayed_at_once_and_again(shares):
    node = make_node(shares)
    sender, other = connect(node, host='10.0.0.2'), connect(node, host='10.0.0.3')
    sender.sent, other.sent = [], []
    solution = node.chain.tracker.items[shares[-20].hash]   # not the best share
    solution.peer_addr = sender.addr
    node.chain.block_found_by_peer.happened(solution)
    assert other.commands() == ['shares'] and sender.commands() == []
    node.reactor.advance(5)
    assert other.commands() == ['shares']
    node.chain.rel_height = lambda block_hash: -5               # its block is long buried
    node.chain.block_found_by_peer.happened(solution)
    assert other.commands() == []


def test_block_solutions_of_our_miners_are_relayed_at_once(shares):
    node = make_node(shares[:-2])
    peer = connect(node, host='10.0.0.2')
    peer.sent = []
    plain, solution = copies(shares[-2:])
    assert plain.pow_hash > bits_to_target(plain.header['bits'])
    node.chain.add_local_share(plain, doa=True)       # dead on arrival: the best share stays
    assert peer.commands() == []
    solution.pow_hash = 0                             # as if it met its block target
    node.chain.add_local_share(solution, doa=True)
    assert peer.commands() == ['shares']


def test_download_loop_asks_for_desired_parents(shares):
    node = make_node()
    peer = connect(node, host='10.0.0.2')
    node.chain.desired = [(peer.addr, shares[-1].hash)]
    node.chain.desired_changed.happened(node.chain.desired)
    [(hashes, parents, stops, d)] = peer.requests
    assert hashes == [shares[-1].hash] and 0 <= parents < 500 and stops == []
    d.callback([])                                   # empty reply: wait a second
    assert len(peer.requests) == 1
    node.reactor.advance(1)
    assert len(peer.requests) == 2
    peer.requests[-1][3].errback(ShareRequestError("peer answered 'too long'"))
    assert node.bans.is_banned('10.0.0.2', node.now()).until == node.now() + 30


def test_download_timeouts_are_not_punished(shares):
    node = make_node()
    peer = connect(node, host='10.0.0.2')
    node.chain.desired = [(None, shares[-1].hash)]
    node.chain.desired_changed.happened(node.chain.desired)
    peer.closing = True
    peer.requests[-1][3].errback(ShareRequestTimeout('no reply'))
    assert not node.bans.is_banned('10.0.0.2', node.now())


def test_stop_cancels_everything():
    node = make_node(fixed_peers=[('10.0.0.8', 9333)])
    connect(node)
    node.stop()
    assert not node.running and not [c for c in node.reactor.getDelayedCalls() if c.active()]


def test_config_from_the_command_line():
    args = parse_args(['-n', '10.0.0.1', '-n', '[2001:db8::1]:1234', '--max-conns', '7', '--outgoing-conns', '3',
                       '--external-ip', '203.0.113.1:9999', '--disable-upnp', '--net', 'bsv_regtest'])
    config = config_from_args(args, NET)
    assert config.fixed_peers == (('10.0.0.1', NET.P2P_PORT), ('2001:db8::1', 1234))
    assert (config.port, config.max_incoming, config.outgoing_target) == (NET.P2P_PORT, 7, 3)
    assert config.external_address == ('203.0.113.1', 9999) and not config.upnp
    assert '127.0.0.1' in config.ban_exempt and '::1' in config.ban_exempt


# --- nothing a peer sends crashes the node ----------------------------------------------------

wrappers = st.lists(st.fixed_dictionaries({'type': st.integers(0, 2**64 - 1), 'contents': st.binary(max_size=300)}),
                    max_size=4)
records = st.lists(st.fixed_dictionaries({
    'timestamp': st.integers(0, 2**64 - 1),
    'address': st.fixed_dictionaries({'services': st.integers(0, 2**64 - 1),
                                      'address': st.ip_addresses().map(str), 'port': st.integers(0, 65535)})}),
    max_size=5)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wrappers=wrappers, records=records)
def test_arbitrary_payloads_only_raise_the_documented_errors(wrappers, records):
    node = make_node()
    peer = connect(node)
    try:
        node.handle_shares(peer, wrappers)
    except (Misbehaviour, ProtocolError, messages.DecodeError):
        pass
    node.got_addrs(peer, records)
    node.get_good_peers(8)
