"""Peer-network limits against floods, over real loopback sockets (issue 16, findings 3 and 9).

The attackers are raw sockets bound to addresses all over 127.0.0.0/8: the node groups
IPv4 hosts by /16 (p2p/addrstore.host_group), so 127.N.0.x is a different network for
every N.
"""
import socket
import time

import pytest

from p2pool.p2p import messages
from p2pool.p2p.peersettings import PeerSettings
from p2pool.sharechain.tracker import Tracker
from p2p_helpers import NET, RawClient, best, endpoint, frame, mine
from p2p_helpers import nodes  # noqa: F401 (fixture)
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)

TIMEOUT = 20


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


# --- finding 9: amplification and buffering -----------------------------------------------

@pytest.fixture(scope='module')
def chain():
    return mine(NET.CHAIN_LENGTH + 30, tracker=Tracker())


def _sharereq(request_id, share_hash):
    return frame('sharereq', id=request_id, hashes=[share_hash], parents=999, stops=[])


def _reply_bytes(client, count):
    """Bytes of the first `count` sharereply frames the node sends (other frames are skipped)."""
    total = replies = 0
    while replies < count:
        for event in client.decoder.events():
            if isinstance(event, messages.Frame) and event.command == 'sharereply':
                replies += 1
                total += messages.HEADER_LENGTH + len(event.payload)
        if replies >= count:
            break
        data = client.sock.recv(1 << 16)
        if not data:
            raise ConnectionError('closed after %d replies' % replies)
        client.decoder.feed(data)
    return total


def test_sharereq_answers_come_out_of_a_byte_budget(chain, nodes):
    budget = 300_000
    settings = PeerSettings(prefix=NET.PREFIX, pow_func=NET.PARENT.pow_hash, sharereply_budget=(budget, 10_000.0))
    server = nodes(chain, settings=settings)
    client = RawClient(server.listening_port, source='127.0.0.20')
    client.handshake()
    requests = [_sharereq(number, chain[-1].hash) for number in range(200)]
    assert len(requests[0]) == 97
    client.send(requests[0])
    whole_chain = _reply_bytes(client, 1)
    assert whole_chain > 20_000                        # one answer is the whole chain
    started = time.monotonic()
    client.send(b''.join(requests[1:]))
    received = _reply_bytes(client, 199)               # every request is answered...
    elapsed = time.monotonic() - started
    unbudgeted = 199 * whole_chain
    assert received <= budget + 10_000 * (elapsed + 1) + 199 * 100   # ...within the budget
    assert received < unbudgeted / 4
    assert not run_in_reactor(lambda: server.bans.active(server.now()))   # asking is no offence
    client.close()


def _header(command, length):
    return NET.PREFIX + command.encode().ljust(12, b'\x00') + length.to_bytes(4, 'little') + b'\0' * 4


@pytest.mark.parametrize('command, length', [
    ('shares', 30_000_000),        # a push far above any real one
    ('remember_tx', 30_000_000),   # beyond the remembered-transaction allowance
    ('sharereply', 1_000_000),     # an answer to nothing we asked
    ('ping', 2_000),
])
def test_a_frame_over_its_type_limit_is_refused_from_its_header(nodes, command, length):
    server = nodes()
    source = '127.0.0.%d' % (30 + len(command))
    client = RawClient(server.listening_port, source=source)
    client.handshake()
    wait_for(lambda: len(server.peers) == 1, TIMEOUT)
    client.send(_header(command, length) + b'\0' * 1000)   # the rest never comes
    ban = wait_for(lambda: server.bans.is_banned(source, server.now()), TIMEOUT,
                   message='the node waited for the rest of the frame')
    assert ban.reason.startswith('flooding') and command in ban.reason
    assert client.closed_by_peer()
    client.close()


def test_before_the_handshake_only_a_small_version_frame_is_read(nodes):
    server = nodes()
    client = RawClient(server.listening_port, source='127.0.0.40')
    client.send(_header('shares', 20_000_000) + b'\0' * 1000)
    ban = wait_for(lambda: server.bans.is_banned('127.0.0.40', server.now()), TIMEOUT)
    assert ban.reason.startswith('protocol_violation')
    client.close()
