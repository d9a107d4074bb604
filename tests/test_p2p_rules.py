"""The peer protocol against p2p.md: interoperability with protocol-3501 peers and
the receiver rules of §1, §4.3/§4.4, §6.2 and §9 that the older tests did not pin down."""
import json
import os
import random

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from p2pool.p2p.peersettings import PeerSettings
from p2pool.p2p.protocol import MALFORMED, PeerConnection
from test_p2p_node import connect, make_node, shares  # noqa: F401 (fixture)
from test_p2p_protocol import PREFIX, StubNode, frame, version_fields

with open(os.path.join(os.path.dirname(__file__), 'vectors', 'p2p_messages.json')) as f:
    VECTORS = {v['section']: v for v in json.load(f)['vectors']}


def connection(node, host, peer, **settings):
    """A PeerConnection whose socket is host (ip, port) -> peer (ip, port); returns (conn, transport)."""
    clock = task.Clock()
    conn = PeerConnection(node, PeerSettings(prefix=PREFIX, **settings), clock=clock, rng=random.Random(1))
    transport = StringTransport(hostAddress=IPv4Address('TCP', *host), peerAddress=IPv4Address('TCP', *peer))
    conn.makeConnection(transport)
    return conn, transport


# --- our version message is byte-compatible (§4.1, §12.11, §12.12) -----------------------------

def test_our_version_message_is_the_12_12_bytes():
    vector = VECTORS['12.12']
    conn, transport = connection(StubNode(nonce=1, best=None), ('127.0.0.1', 45678), ('127.0.0.1', 9333),
                                 sub_version=b'')
    assert transport.value().hex() == vector['framed']


def test_our_version_message_with_best_share_is_the_12_11_bytes():
    vector = VECTORS['12.11']
    fields = vector['fields']
    node = StubNode(nonce=fields['nonce'], best=fields['best_share_hash'])
    conn, transport = connection(node, ('10.0.0.1', 9333), ('192.168.1.2', 9333), protocol_version=1700,
                                 sub_version=fields['sub_version'].encode())
    assert transport.value().hex() == vector['framed']


def test_a_3501_version_frame_is_accepted():
    node = StubNode(nonce=99, minimum_protocol_version=3500)
    conn, transport = connection(node, ('127.0.0.1', 9333), ('127.0.0.1', 45678))
    conn.dataReceived(bytes.fromhex(VECTORS['12.12']['framed']))
    assert node.peers == [conn] and conn.version == 3501 and conn.announced_best_share_hash is None
    assert not transport.disconnecting and node.reports == []


# --- §1 receiver rules: resynchronisation is not misbehaviour ---------------------------------

def test_garbage_between_frames_is_skipped():
    node = StubNode(nonce=1)
    conn, transport = connection(node, ('10.0.0.1', 9333), ('10.1.2.3', 40000))
    conn.dataReceived(b'\x17noise' + frame('version', **version_fields()) + b'more noise'
                      + frame('addrme', port=9444))
    assert node.addrmes == [9444] and node.reports == [] and not transport.disconnecting


def test_an_oversized_frame_is_abandoned_and_scanning_resumes():
    node = StubNode(nonce=1)
    conn, transport = connection(node, ('10.0.0.1', 9333), ('10.1.2.3', 40000), max_payload_size=1000)
    conn.dataReceived(frame('version', **version_fields()))
    oversized = PREFIX + b'shares'.ljust(12, b'\x00') + (1001).to_bytes(4, 'little') + b'\xee' * 30
    conn.dataReceived(oversized + frame('addrme', port=9555))
    assert node.addrmes == [9555] and node.reports == [] and not transport.disconnecting


# --- §1 / §9: undecodable payloads drop the peer but never ban it --------------------------------

def test_malformed_payloads_never_ban():
    node = make_node()
    for _ in range(10):
        peer = connect(node, host='10.0.0.5')
        node.report_misbehaviour(peer, MALFORMED, 'unknown share type 36')
    assert node.bans.is_banned('10.0.0.5', node.now()) is None


# --- §4.3 / §4.4: gossip is forwarded even when our store is full --------------------------------

def test_addresses_are_forwarded_even_when_the_store_is_full():
    node = make_node()
    node.addresses.max_entries = 0
    sender, other = connect(node, host='10.0.0.2', incoming=True), connect(node, host='10.0.0.3')
    for _ in range(20):
        node.got_addrme(sender, 7777)
        node.got_addrs(sender, [{'timestamp': 5, 'address': {'services': 0, 'address': '10.9.9.9', 'port': 1}}])
    forwarded = [c for p in (sender, other) for c, _ in p.gossip]
    assert 20 <= forwarded.count('addrs') <= 40   # 40 records, each forwarded with probability 0.8


# --- §6.2: block solutions -----------------------------------------------------------------------

def test_a_block_solution_on_bitcoinds_tip_is_relayed_even_if_its_height_is_unknown(shares):
    node = make_node(shares)
    sender, other = connect(node, host='10.0.0.2'), connect(node, host='10.0.0.3')
    other.sent = []
    solution = node.chain.tracker.items[shares[-20].hash]
    solution.peer_addr = sender.addr
    node.chain.rel_height = lambda block_hash: -10 ** 6         # height lookup not done yet
    node.parent_tip = lambda: solution.header['previous_block']
    node.chain.block_found_by_peer.happened(solution)
    assert other.commands() == ['shares']
    node.parent_tip = lambda: solution.hash                     # bitcoind already has it as tip
    node.chain.block_found_by_peer.happened(solution)
    assert other.commands() == ['shares']


def test_a_block_solution_is_checked_again_after_five_seconds(shares):
    node = make_node(shares)
    sender, other = connect(node, host='10.0.0.2'), connect(node, host='10.0.0.3')
    other.sent = []
    solution = node.chain.tracker.items[shares[-20].hash]
    solution.peer_addr = sender.addr
    node.chain.rel_height = lambda block_hash: -10 ** 6         # not known at first
    node.chain.block_found_by_peer.happened(solution)
    assert other.commands() == []
    node.chain.rel_height = lambda block_hash: 0                # the lookup finished meanwhile
    node.reactor.advance(5)
    assert other.commands() == ['shares']
