"""Peer-network limits against floods, over real loopback sockets (issue 16, findings 3 and 9).

The attackers are raw sockets bound to addresses all over 127.0.0.0/8: the node groups
IPv4 hosts by /16 (p2p/addrstore.host_group), so 127.N.0.x is a different network for
every N.
"""
import socket

import pytest

from p2pool.p2p.protocol import PeerSettings
from p2p_helpers import NET, RawClient, best, endpoint, mine, start_node, stop_node
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)
from p2pool.sharechain.tracker import Tracker

TIMEOUT = 20


@pytest.fixture
def nodes(reactor):
    started = []

    def start(*args, **kwargs):
        node = start_node(*args, **kwargs)
        started.append(node)
        return node
    yield start
    for node in started:
        if node.running:
            stop_node(node)


def _ipv6_loopback():
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(('::1', 0))
        probe.close()
        return True
    except OSError:
        return False


def test_connections_that_never_handshake_do_not_take_peer_slots(nodes):
    # a long handshake timeout: the silent connections would hold their slots for the whole test
    settings = PeerSettings(prefix=NET.PREFIX, pow_func=NET.PARENT.pow_hash, handshake_timeout=120.0)
    ipv6 = _ipv6_loopback()
    server = nodes(settings=settings, max_incoming=40, listen_interface='::' if ipv6 else '127.0.0.1')
    silent = []
    for network in range(1, 16):
        for host in range(1, 4):
            try:
                silent.append(RawClient(server.listening_port, source='127.%d.0.%d' % (network, host)))
            except OSError:
                pass   # refused at once is fine too
    try:
        real = RawClient(server.listening_port, source='127.200.0.1')
        assert real.handshake()['nonce'] == server.nonce
        wait_for(lambda: len(server.peers) == 1, TIMEOUT,
                 message='a real peer from another /16 was not registered')
        if ipv6:
            other = nodes(fixed_peers=[('::1', server.listening_port)])
            wait_for(lambda: len(server.peers) == 2, TIMEOUT,
                     message='a real peer on ::1 was not registered')
            assert run_in_reactor(lambda: len(other.peers)) == 1
        waiting = run_in_reactor(lambda: [peer for peer in server.connections
                                          if peer.incoming and not peer.handshake_done and not peer.closing])
        assert len(waiting) <= server.config.max_unhandshaken
        real.close()
    finally:
        for client in silent:
            client.close()


def test_a_node_full_of_real_peers_refuses_more(nodes):
    tracker = Tracker()
    shares = mine(5, tracker=tracker)
    server = nodes(shares, max_incoming=1)
    first = nodes(fixed_peers=[endpoint(server)])
    wait_for(lambda: best(first) == shares[-1].hash, TIMEOUT)
    late = RawClient(server.listening_port, source='127.9.0.1')
    try:
        late.handshake()
    except ConnectionError:
        pass
    assert late.closed_by_peer()
    late.close()
    assert run_in_reactor(lambda: len(server.peers)) == 1
