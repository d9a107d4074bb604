"""Adversarial nodes: `withhold`, `selfish` and `flood` (`--adversary KIND:FRACTION`).

An adversary is an ordinary SimNode (real chain, real peer code) whose miner has
FRACTION of the hash rate and whose publishing is changed:

* withhold: every share it finds is kept private for `hold` seconds (default
  one SHARE_PERIOD) while it mines on top of it, then published;
* selfish: selfish mining on the sharechain (Eyal and Sirer's strategy): keep a
  private branch; when the public chain catches up to within one share, publish
  it all; with a longer lead publish just enough to match the public height;
  abandon the branch when the public chain is longer;
* flood: mines honestly, and sends each peer `rate` share requests a second for
  random hashes; the peers' rate limits and bans (p2p/protocol.py, peerset.py)
  decide what that costs it.

Private shares live in the adversary's own tracker (so it can mine on them) and
are kept out of relay, of its `sharereq` answers and of the best share it
announces in handshakes.
"""
from __future__ import annotations

from typing import Any

from p2pool.sharechain.share import Share


KINDS = ('withhold', 'selfish', 'flood')


def parse_adversary(text: str) -> tuple[str, float]:
    """'withhold:0.1' -> ('withhold', 0.1); ValueError with a one-line reason otherwise."""
    kind, _, fraction = text.partition(':')
    if kind not in KINDS:
        raise ValueError('unknown adversary %r (one of %s)' % (kind, ', '.join(KINDS)))
    try:
        value = float(fraction)
    except ValueError:
        raise ValueError('adversary %r needs a hash-rate fraction, e.g. %s:0.1' % (text, kind)) from None
    if not 0 < value < 1:
        raise ValueError('adversary hash-rate fraction must lie between 0 and 1, got %s' % fraction)
    return kind, value


class Adversary:
    """Publishing policy of one adversarial node (module docstring)."""

    def __init__(self, kind: str, fraction: float, share_period: float, hold: float | None = None,
                 flood_rate: float = 50.0) -> None:
        self.kind, self.fraction = kind, fraction
        self.hold = share_period if hold is None else hold
        self.flood_rate = flood_rate
        self.node: Any | None = None
        self.held: dict[int, Share] = {}      # private shares, oldest first
        self.public_height = 0                # highest absheight seen from peers
        self.racing = False                   # selfish: a tie between our branch and the public one
        self._relay: Any = None

    # --- wiring into the node's real objects ---------------------------------------------

    def attach(self, node: Any) -> None:
        """Called at every (re)start: hook relay, sharereq serving and the announced best."""
        self.node = node
        self.held.clear()
        assert node.p2p is not None and node.chain is not None
        sync, chain = node.p2p.sync, node.chain
        relay = self._relay = sync.relay
        sync.relay = lambda shares: relay([s for s in shares if s.hash not in self.held])
        serve = chain.get_shares_for_request
        chain.get_shares_for_request = lambda hashes, parents, stops: [
            s for s in serve(hashes, parents, stops) if s.hash not in self.held]
        node.p2p.best_share_hash = self._public_best
        chain.shares_added.watch(self._shares_added)
        if self.kind == 'flood':
            node.world.clock.callLater(1.0, self._flood)

    def mining_parent(self) -> int | None:
        assert self.node is not None and self.node.chain is not None
        return self.node.chain.best_share_hash.value

    def _public_best(self) -> int | None:
        assert self.node is not None and self.node.chain is not None
        best = self.node.chain.best_share_hash.value
        items = self.node.chain.tracker.items
        while best is not None and best in self.held:
            best = items[best].previous_hash
        return best

    # --- own shares ------------------------------------------------------------------------

    def own_share(self, share: Any, doa: bool) -> None:
        node = self.node
        assert node is not None
        if self.kind == 'flood':
            node.publish_local(share, doa)
            return
        self.held[share.hash] = share
        node.publish_local(share, doa)
        if self.kind == 'withhold':
            node.world.clock.callLater(self.hold, self._release, [share])
        elif self.kind == 'selfish' and self.racing:
            self.racing = False
            self._release(list(self.held.values()))   # a tie was running: our new share decides it

    def _release(self, shares: list[Any]) -> None:
        node = self.node
        if node is None or not node.online:
            return
        fresh = [share for share in shares if self.held.pop(share.hash, None) is not None]
        if fresh:
            node.world.shares_released(fresh)
            self._relay(fresh)

    def _shares_added(self, shares: list[Any]) -> None:
        peer_heights = [share.absheight for share in shares if share.peer_addr is not None]
        if peer_heights and max(peer_heights) > self.public_height:
            self.public_height = max(peer_heights)
            if self.kind == 'selfish':
                self._public_moved()

    def _public_moved(self) -> None:
        """Eyal and Sirer: the public chain grew; act on the private lead left."""
        self.racing = False
        if not self.held:
            return
        private = list(self.held.values())
        lead = max(share.absheight for share in private) - self.public_height
        if lead < 0:
            self.held.clear()      # the public chain won: the private branch is abandoned
        elif lead == 0:
            self._release(private)  # a tie: publish and race
            self.racing = True
        elif lead == 1:
            self._release(private)  # one ahead: publishing it all wins
        else:
            self._release([share for share in private if share.absheight <= self.public_height])

    # --- flooding ------------------------------------------------------------------------

    def _flood(self) -> None:
        node = self.node
        if node is None or not node.online or node.p2p is None:
            return
        count = int(self.flood_rate)
        for peer in list(node.p2p.peers.values()):
            for _ in range(count):
                peer.send('sharereq', id=node.rng.getrandbits(256), hashes=[node.rng.getrandbits(256)],
                          parents=0, stops=[])
        node.world.clock.callLater(1.0, self._flood)
