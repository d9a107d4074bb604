"""Share propagation between peers (p2p.md §4.6-§4.8, §6): relay, serving, downloading.

ShareSync is the part of the P2P node (p2pool/p2p/peerset.py) that moves shares:

* received shares (pushes and replies) are parsed by the ShareChain, their
  transactions resolved (txrelay.py) and handed to `chain.add_shares`;
* `sharereq` is served from `chain.get_shares_for_request` with the 1000-share
  reply limit;
* every best-share change relays up to 5 new shares of the best chain to every
  peer except the one each share came from; a peer's share that solves a block
  is relayed at once and again 5 s later when its block is recent, one of our
  miners' at once (§6.2);
* the download loop fetches the parents the chain wants (`chain.desired`), one
  request at a time, asking the peer that sent the child most of the time and a
  random peer otherwise (the spec always picks at random; preferring the sender
  saves empty replies and one-second waits on sparse topologies).

Failed downloads are scored with the [jt] 30-second ban base. A request that
fails because the connection was lost is not held against the peer.
"""
import logging
from collections.abc import MutableMapping
from typing import Any

from twisted.internet import defer, task

from p2pool.p2p import messages
from p2pool.p2p.contracts import PeerChain
from p2pool.p2p.protocol import INVALID_SHARE, MALFORMED, Misbehaviour, ShareRequestError, ShareRequestTimeout
from p2pool.p2p.txrelay import share_wrapper
from p2pool.sharechain.share import (FIRST_ADDRESS_VERSION, LOWEST_SUPPORTED_VERSION, ShareDecodeError,
                                     ShareMisbehaviour)

log = logging.getLogger(__name__)

RELAY_DEPTH = 5                 # §6.1: shares walked back on a best-share change
MAX_SHARES_PER_REQUEST = 1000   # §4.7: p = min(parents, 1000 // len(hashes))
DOWNLOAD_PARENTS = 500          # §6.5: parents drawn from [0, 500)
MAX_STOPS = 100                 # §6.5: at most this many stop hashes
BLOCK_RELAY_RETRY = 5.0         # §6.2: block solutions are relayed again after this
PREFER_SENDER = 0.75            # chance to ask the peer that sent the child share
DOWNLOAD_FAILURE = 'download_failure'


class ShareSync:
    """Relay, serving and the download loop of one P2PNode."""

    def __init__(self, node: Any) -> None:
        self.node = node                    # the P2PNode
        self.chain: PeerChain = node.chain
        self.shared_share_hashes: set[Any] = set()
        self.running = False
        self._waiting: Any = None            # what the download loop waits for (cancelled by stop)
        self._desired_waiter: Any = None
        self._block_relays: set[Any] = set()
        #: frames of `shares` messages by (prefix, maximum payload size, share hashes), as
        #: TxRelay.send_shares keys them: None for one relay's own; the simulator shares a bounded
        #: one among its nodes, which all relay each share in the same bytes
        self.relay_frames: MutableMapping[Any, list[bytes]] | None = None

    def start(self) -> None:
        tracker = self.chain.tracker
        self.running = True
        self.shared_share_hashes = set(tracker.items)
        tracker.on_removed.append(self._share_removed)
        self.chain.best_share_hash.changed.watch(self._best_share_changed)
        self.chain.desired_changed.watch(self._desired_changed)
        self.chain.block_found_by_peer.watch(self._block_found)
        self.chain.local_block_solution.watch(self._local_block_solution)
        self._download_loop()

    def stop(self) -> None:
        self.running = False
        for waiting in (self._waiting, self._desired_waiter):
            if waiting is not None and not waiting.called:
                waiting.cancel()
        tracker = self.chain.tracker
        if self._share_removed in tracker.on_removed:
            tracker.on_removed.remove(self._share_removed)
        self.chain.best_share_hash.changed.unwatch(self._best_share_changed)
        self.chain.desired_changed.unwatch(self._desired_changed)
        self.chain.block_found_by_peer.unwatch(self._block_found)
        self.chain.local_block_solution.unwatch(self._local_block_solution)
        for call in self._block_relays:
            if call.active():
                call.cancel()
        self._block_relays.clear()

    # --- receiving and serving ----------------------------------------------------------

    def parse_shares(self, peer, wrappers) -> list[Any]:
        """Share objects from wire records (types below 17 skipped, §4.6).

        Raises Misbehaviour(INVALID_SHARE) for shares no honest peer sends (bad
        target or PoW, obsolete type) and DecodeError for undecodable ones.
        """
        records = wrappers
        for wrapper in wrappers:
            if wrapper['type'] < LOWEST_SUPPORTED_VERSION:   # rare: no copy of the list otherwise
                records = [wrapper for wrapper in wrappers if wrapper['type'] >= LOWEST_SUPPORTED_VERSION]
                break
        try:
            return self.chain.parse_shares(records, peer_addr=peer.addr)   # a batch: its PoW on all cores
        except ShareMisbehaviour as e:
            raise Misbehaviour(INVALID_SHARE, str(e)) from None
        except ShareDecodeError as e:
            raise messages.DecodeError('share: %s' % e) from None

    def handle_shares(self, peer, wrappers) -> None:
        shares = self.parse_shares(peer, wrappers)
        # The common case: shares we hold already (a relay reaches a node from each of its peers).
        # Without transactions to resolve (VERSION >= 34) there is nothing to do for them.
        items = self.chain.tracker.items
        for share in shares:
            if share.VERSION < FIRST_ADDRESS_VERSION or share.hash not in items:
                break
        else:
            return
        txs = self.node.txs.resolve(peer, shares)
        if txs:
            self.node.txs.add_known(txs)
        if shares:
            self.chain.add_shares(shares, peer.addr)

    def handle_sharereq(self, hashes, parents, stops) -> list[dict[str, Any]]:
        if not hashes:
            return []
        parents = min(parents, MAX_SHARES_PER_REQUEST // len(hashes))
        return [share_wrapper(share) for share in self.chain.get_shares_for_request(hashes, parents, stops)]

    # --- relay --------------------------------------------------------------------------

    def relay(self, shares) -> None:
        """Send shares to every peer except the one each came from."""
        for share in shares:
            self.shared_share_hashes.add(share.hash)
        # the same message to most peers: encoded once
        encoded = self.relay_frames if self.relay_frames is not None else {}
        senders = {share.peer_addr for share in shares}
        send_shares = self.node.txs.send_shares
        # Shares of VERSION >= 34 announce no transactions (p2p.md §5): the peers that sent none of
        # them all get the same frames, written as they are (a relay goes to every peer of every node)
        plain = all(share.VERSION >= FIRST_ADDRESS_VERSION for share in shares)
        settings = getattr(self.node, 'settings', None)
        frames = None
        for peer in list(self.node.peers.values()):
            if peer.addr in senders:
                send_shares(peer, [share for share in shares if share.peer_addr != peer.addr], encoded)
            elif plain and peer.settings is settings:   # none of them came from this peer
                if frames is None:
                    key = (settings.prefix, settings.max_payload_size, tuple(share.hash for share in shares))
                    frames = encoded.get(key)
                    if frames is None:
                        wrappers = [share_wrapper(share) for share in shares]
                        frames = encoded[key] = peer.encode_frames('shares', shares=wrappers)
                peer.send_frames(frames)
            else:
                send_shares(peer, shares, encoded)

    def _share_removed(self, share) -> None:
        self.shared_share_hashes.discard(share.hash)

    def _best_share_changed(self, best_hash) -> None:
        """§6.1: relay up to 5 not yet relayed shares of the new best chain."""
        if best_hash is None or not self.running:
            return
        # the best share and its known parents (walked through the items: no height measured first)
        items, shared = self.chain.tracker.items, self.shared_share_hashes
        fresh: list[Any] = []
        share = items.get(best_hash)
        while share is not None and len(fresh) < RELAY_DEPTH and share.hash not in shared:
            fresh.append(share)
            previous = share.previous_hash
            share = items.get(previous) if previous is not None else None
        if fresh:
            self.relay(fresh)

    def _block_found(self, share, retry=True) -> None:
        """§6.2: a verified peer share that solves a block goes out at once if its parent
        block is less than 5 blocks behind or bitcoind works on its parent or on it; the
        same test is made again 5 s later (the parent's height may be known by then)."""
        if not self.running:
            return
        if self._worth_spreading(share):
            self.relay([share])
        if retry:
            call = self.node.reactor.callLater(BLOCK_RELAY_RETRY, self._retry_block, share)
            self._block_relays.add(call)

    def _local_block_solution(self, share) -> None:
        """§6.2: a block solution of our own miners goes to every peer at once."""
        self.relay([share])

    def _worth_spreading(self, share) -> bool:
        previous_block = share.header['previous_block']
        if self.chain.rel_height(previous_block) > -5:
            return True
        tip = self.node.parent_tip()
        return tip is not None and tip in (previous_block, share.hash)

    def _retry_block(self, share) -> None:
        self._block_relays = {call for call in self._block_relays if call.active()}
        if share.hash in self.chain.tracker.items:
            self._block_found(share, retry=False)

    # --- fetching -----------------------------------------------------------------------

    def fetch(self, peer, hashes, parents, stops, punish_timeouts=False) -> defer.Deferred[Any] | None:
        """sharereq to `peer`, the reply going to the chain. The Deferred fires with the
        number of new shares received, or None if the request failed."""
        d = peer.request_shares(hashes, parents, stops)
        d.addCallback(self._received_reply, peer)

        def failed(failure):
            failure.trap(ShareRequestError)
            if isinstance(failure.value, ShareRequestTimeout):
                log.info('Share request to %r timed out', peer)
                if not punish_timeouts:
                    return None
            elif peer.closing:
                return None  # the connection went away; nothing to hold against the peer
            self.node.punish(peer.addr[0], DOWNLOAD_FAILURE, str(failure.value),
                             ban_time=self.node.config.download_ban_time)
            return None
        d.addErrback(failed)
        return d

    def _received_reply(self, wrappers, peer):
        try:
            shares = self.parse_shares(peer, wrappers)
        except Misbehaviour as e:
            peer.misbehaved(e.kind, e.reason)
            return None
        except messages.DecodeError as e:
            peer.misbehaved(MALFORMED, str(e))
            return None
        return len(self.chain.add_shares(shares, peer.addr)) if shares else 0

    # --- the download loop (§6.5) ---------------------------------------------------------

    def _desired_changed(self, desired) -> None:
        waiter, self._desired_waiter = self._desired_waiter, None
        if waiter is not None and not waiter.called:
            waiter.callback(None)

    def _wait(self, d):
        self._waiting = d
        return d

    def _sleep(self, seconds):
        return self._wait(task.deferLater(self.node.reactor, seconds, lambda: None))

    @defer.inlineCallbacks
    def _download_loop(self):
        while self.running:
            try:
                yield self._download_once()
            except defer.CancelledError:
                return
            except Exception:
                log.exception('Error in the share download loop')
                try:
                    yield self._sleep(1.0)
                except defer.CancelledError:
                    return

    @defer.inlineCallbacks
    def _download_once(self):
        items = self.chain.tracker.items
        wanted = [entry for entry in self.chain.desired if entry[1] not in items]
        if not wanted:
            self._desired_waiter = defer.Deferred()
            yield self._wait(self._desired_waiter)
            return
        rng = self.node.rng
        sender, share_hash = rng.choice(wanted)
        peer = self._download_peer(sender)
        if peer is None:
            yield self._sleep(1.0)
            return
        received = yield self._wait(self.fetch(peer, [share_hash], rng.randrange(DOWNLOAD_PARENTS),
                                               self.stops()))
        if not received:  # nothing new (empty reply or failure): do not hammer the peers
            yield self._sleep(1.0)

    def _download_peer(self, sender):
        peers = [peer for peer in self.node.peers.values() if not peer.closing]
        if not peers:
            return None
        rng = self.node.rng
        if sender is not None and rng.random() < PREFER_SENDER:
            for peer in peers:
                if peer.addr == sender:
                    return peer
        return rng.choice(peers)

    def stops(self) -> list[int | None]:
        """§6.5: every head and its ancestor min(max(0, height - 1), 10) up; at most 100."""
        tracker = self.chain.tracker
        stops: list[int | None] = []
        for head in list(tracker.heads)[:MAX_STOPS]:
            stops.append(head)
            stops.append(tracker.get_nth_parent_hash(head, min(max(0, tracker.get_height(head) - 1), 10)))
        return list(dict.fromkeys(stops))[:MAX_STOPS]
