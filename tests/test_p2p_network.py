"""Whole P2P nodes over real loopback sockets (p2p.md §3, §6-§9).

Each node is a P2PNode with its own ShareChain (p2pool/sharechain/chain.py), listening on
127.0.0.1; they run in the reactor thread of tests/twisted_helpers.py. Peers
that misbehave are raw sockets bound to other 127.0.0.x addresses, so each one
is a distinct host to the node's bans.
"""
import socket

import pytest

from p2pool.p2p import messages
from p2pool.p2p.addrstore import LOOPBACK_HOSTS
from p2pool.store.sharestore import ShareStore
from p2pool.sharechain.tracker import Tracker
from p2p_helpers import (NET, RawClient, best, copies, endpoint, frame, mine, stop_node,
                         tweaked_share, version_frame)
from p2p_helpers import nodes  # noqa: F401 (fixture)
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)

TIMEOUT = 30


@pytest.fixture(scope='module')
def chain():
    """A miner's tracker and a complete chain of CHAIN_LENGTH + 30 shares."""
    tracker = Tracker()
    return tracker, mine(NET.CHAIN_LENGTH + 30, tracker=tracker)


def converged(nodes, share_hash):
    return lambda: all(best(node) == share_hash for node in nodes)


def connected(node, count):
    return lambda: len(node.peers) >= count


# --- convergence and relay ----------------------------------------------------------------

def test_line_of_five_converges_and_relays_new_shares_end_to_end(chain, nodes):
    tracker, shares = chain
    line = [nodes(shares)]
    for _ in range(4):
        line.append(nodes(fixed_peers=[endpoint(line[-1])]))
    wait_for(converged(line, shares[-1].hash), TIMEOUT, message='the line did not converge')

    found_at_start = mine(1, previous=shares[-1], tracker=_tracker_with(shares))
    run_in_reactor(line[0].chain.add_shares, copies(found_at_start))
    wait_for(converged(line, found_at_start[-1].hash), TIMEOUT, message='share not relayed to the end')

    found_at_end = mine(1, previous=found_at_start[-1], tracker=_tracker_with(shares + found_at_start))
    run_in_reactor(line[-1].chain.add_shares, copies(found_at_end))
    wait_for(converged(line, found_at_end[-1].hash), TIMEOUT, message='share not relayed back')
    # relayed shares keep the address of the peer each node got them from
    relayed = run_in_reactor(lambda: line[2].chain.tracker.items[found_at_end[-1].hash].peer_addr)
    assert relayed is not None and relayed[0] == '127.0.0.1'


def _tracker_with(shares):
    tracker = Tracker()
    for share in copies(shares):
        tracker.add(share)
    return tracker


def test_star_of_five_converges_on_the_chain_with_most_work(chain, nodes):
    tracker, shares = chain
    fork_point = shares[NET.CHAIN_LENGTH + 9]
    fork_tracker = _tracker_with(shares[:NET.CHAIN_LENGTH + 10])
    fork = mine(30, previous=fork_point, tracker=fork_tracker, seed=b'fork')  # 10 shares longer
    leaves = [nodes(shares), nodes(shares[:NET.CHAIN_LENGTH + 10] + fork), nodes(), nodes()]
    center = nodes(fixed_peers=[endpoint(leaf) for leaf in leaves])
    star = [center] + leaves
    wait_for(converged(star, fork[-1].hash), TIMEOUT, message='the star did not converge')
    # the leaf that held the shorter chain downloaded the fork's missing parents
    assert run_in_reactor(lambda: fork[0].hash in leaves[0].chain.tracker.verified.items)


def test_a_late_node_downloads_and_verifies_the_full_chain(chain, nodes):
    tracker, shares = chain
    holders = [nodes(shares) for _ in range(3)]
    late = nodes(fixed_peers=[endpoint(node) for node in holders])
    wait_for(connected(late, 3), TIMEOUT)

    def synced():
        items = late.chain.tracker.items
        return (best(late) == shares[-1].hash and all(share.hash in items for share in shares)
                and late.chain.tracker.verified.get_height(shares[-1].hash) >= NET.CHAIN_LENGTH)
    wait_for(synced, TIMEOUT, message='the late node did not sync')
    assert run_in_reactor(late.chain.sync_progress) == (NET.CHAIN_LENGTH, NET.CHAIN_LENGTH)
    assert run_in_reactor(lambda: late.chain.tracker.get_height_and_last(shares[-1].hash)) == (len(shares), None)


def test_ipv6_loopback_peers(chain, nodes):
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(('::1', 0))
        probe.close()
    except OSError:
        pytest.skip('no IPv6 loopback here')
    tracker, shares = chain
    server = nodes(shares, listen_interface='::1')
    client = nodes(fixed_peers=[('::1', server.listening_port)])
    wait_for(converged([client], shares[-1].hash), TIMEOUT)
    assert run_in_reactor(lambda: [peer.addr[0] for peer in server.peers.values()]) == ['::1']


# --- misbehaving peers ----------------------------------------------------------------------

def _garbage():
    return b'\x17not a frame at all\x00' * 50


def _oversized():
    return NET.PREFIX + b'shares'.ljust(12, b'\x00') + (messages.MAX_PAYLOAD_SIZE + 1).to_bytes(4, 'little') + b'\0' * 8


def _bad_checksum():
    good = frame('ping')
    return good[:-4] + bytes(4 * [0xff])


@pytest.mark.parametrize('source, attack, kind', [
    ('127.0.0.2', lambda shares: [frame('ping')], 'protocol_violation'),   # not a version first
    ('127.0.0.3', lambda shares: [version_frame(), version_frame()], 'protocol_violation'),
    ('127.0.0.4', lambda shares: [version_frame(), _bad_checksum()], 'bad_checksum'),
    ('127.0.0.5', lambda shares: [version_frame(), frame('shares', shares=[tweaked_share(shares[-1], False)])],
     'invalid_share'),
    ('127.0.0.6', lambda shares: [version_frame(), b''.join(frame('getaddrs', count=8) for _ in range(60))],
     'flooding'),
    ('127.0.0.7', lambda shares: [version_frame(), frame('shares', shares=[tweaked_share(shares[-1], True)])],
     'invalid_share'),  # parses, then fails verification in think()
])
def test_misbehaving_peer_is_banned_and_the_node_keeps_serving(chain, nodes, source, attack, kind):
    tracker, shares = chain
    server = nodes(shares, max_per_group=10)
    good = nodes(fixed_peers=[endpoint(server)])
    wait_for(converged([good], shares[-1].hash), TIMEOUT)

    attacker = RawClient(server.listening_port, source=source)
    for data in attack(shares):
        attacker.send(data)
    ban = wait_for(lambda: server.bans.is_banned(source, server.now()), TIMEOUT)
    assert ban.reason.startswith(kind) and ban.score == 1
    assert attacker.closed_by_peer()
    attacker.close()

    again = RawClient(server.listening_port, source=source)
    assert again.closed_by_peer()  # refused at once while banned
    again.close()

    assert run_in_reactor(lambda: len(server.peers)) == 1
    new = mine(1, previous=shares[-1], tracker=_tracker_with(shares))
    run_in_reactor(server.chain.add_shares, copies(new))
    wait_for(converged([good], new[-1].hash), TIMEOUT, message='the good peer was not served')


def test_garbage_and_oversized_frames_are_skipped_not_banned(nodes):
    server = nodes()
    client = RawClient(server.listening_port, source='127.0.0.10')
    client.send(_garbage() + _oversized() + _garbage())
    assert client.handshake()['nonce'] == server.nonce   # §1: scanning resumed, the version was read
    wait_for(lambda: len(server.peers) == 1, TIMEOUT)
    assert not run_in_reactor(lambda: server.bans.active(server.now()))
    client.close()


def test_an_exempt_loopback_is_dropped_but_never_banned(nodes):
    server = nodes(ban_exempt=LOOPBACK_HOSTS)
    attacker = RawClient(server.listening_port, source='127.0.0.1')
    attacker.send(_bad_checksum())
    assert attacker.closed_by_peer()
    attacker.close()
    assert not run_in_reactor(lambda: server.bans.active(server.now()))
    again = RawClient(server.listening_port, source='127.0.0.1')
    assert again.handshake()['nonce'] == server.nonce
    again.close()


def test_bans_persist_across_restart(chain, nodes, tmp_path):
    path = tmp_path / 'p2pool.sqlite3'
    store = ShareStore(path)
    first = nodes(store=store)
    attacker = RawClient(first.listening_port, source='127.0.0.8')
    attacker.send(_bad_checksum())
    wait_for(lambda: first.bans.is_banned('127.0.0.8', first.now()), TIMEOUT)
    attacker.close()
    stop_node(first)
    store.close()

    store = ShareStore(path)
    try:
        second = nodes(store=store)
        [ban] = run_in_reactor(lambda: second.bans.active(second.now()))
        assert ban.host == '127.0.0.8' and ban.reason.startswith('bad_checksum: ')
        refused = RawClient(second.listening_port, source='127.0.0.8')
        assert refused.closed_by_peer()
        refused.close()
        welcome = RawClient(second.listening_port, source='127.0.0.9')
        assert welcome.handshake()['nonce'] == second.nonce
        welcome.close()
        stop_node(second)
    finally:
        store.close()
