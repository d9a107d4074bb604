"""Round-trip times to peers for /pings (web.md §2.1).

A round trip is a `sharereq(hashes=[0], parents=0, stops=[])` and its reply; a
peer's ping is the minimum of three sequential round trips in milliseconds, or
None if any of them failed. Measured in the background every PING_INTERVAL
seconds so that a web request never waits on the network.
"""
from collections.abc import Generator
import logging
from typing import Any

from twisted.internet import defer

log = logging.getLogger(__name__)

PING_INTERVAL = 60.0
ROUND_TRIPS = 3


@defer.inlineCallbacks
def measure_ping(peer, clock) -> Generator[defer.Deferred[Any], Any, float | None]:
    """Fires with the minimum of three round trips to `peer` in ms, or None."""
    times = []
    for _ in range(ROUND_TRIPS):
        started = clock.seconds()
        try:
            yield peer.request_shares([0], 0, [])
        except Exception as e:  # lost connection, timeout, refusal: the spec's null
            log.debug('ping to %s:%s failed: %s', peer.host, peer.port, e)
            return None
        times.append((clock.seconds() - started) * 1000)
    return min(times)


@defer.inlineCallbacks
def measure_all(peers, clock) -> Generator[defer.Deferred[Any], Any, None]:
    """Measure every peer and store the result as `peer.ping_ms`."""
    for peer in list(peers):
        peer.ping_ms = yield measure_ping(peer, clock)
