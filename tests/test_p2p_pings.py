"""/pings round trips (web.md §2.1): min of three sharereq round trips, None when a peer fails."""
import pytest
from twisted.internet import defer

from p2pool.p2p import pings
from p2p_helpers import endpoint, start_node, stop_node
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)


@pytest.fixture
def two_nodes(reactor):
    first = start_node()
    second = start_node(fixed_peers=[endpoint(first)])
    wait_for(lambda: len(first.peers) >= 1 and len(second.peers) >= 1, 30, message='nodes did not connect')
    yield first, second
    for node in (first, second):
        if node.running:
            stop_node(node)


def test_ping_of_a_connected_peer(two_nodes):
    first, second = two_nodes
    from twisted.internet import reactor as global_reactor
    peer = run_in_reactor(lambda: list(second.peers.values())[0])
    result = []
    run_in_reactor(lambda: pings.measure_all([peer], global_reactor).addCallback(result.append))
    wait_for(lambda: result, 10, message='no ping result')
    assert peer.ping_ms is not None and 0 <= peer.ping_ms < 5000


class _FailingPeer:
    host, port = '127.0.0.9', 1

    def request_shares(self, hashes, parents, stops):
        return defer.fail(RuntimeError('connection lost'))


def test_a_failed_round_trip_gives_none(reactor):  # noqa: F811
    from twisted.internet import task
    peer = _FailingPeer()
    result = []
    run_in_reactor(lambda: pings.measure_all([peer], task.Clock()).addCallback(result.append))
    assert peer.ping_ms is None


def test_traffic_is_counted_both_ways(two_nodes):
    """The P2P node reports the bytes of every connection (the traffic_rate graph)."""
    first, second = two_nodes
    seen = []
    run_in_reactor(lambda: second.traffic.watch(lambda direction, nbytes: seen.append((direction, nbytes))))
    peer = run_in_reactor(lambda: list(second.peers.values())[0])
    run_in_reactor(lambda: peer.request_shares([0], 0, []))
    directions = {direction for direction, _ in seen}
    assert directions == {'p2p/in', 'p2p/out'} and all(nbytes > 0 for _, nbytes in seen)
