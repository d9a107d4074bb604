"""Transaction forwarding for shares of VERSION < 34 (p2p.md §5).

Shares before version 34 name their new transactions by key only, so a peer must
hold every such transaction before it receives the share. TxRelay keeps the
per-peer views that make this work, for the node (p2pool/p2p/peerset.py):

* peers whose connection decided to synchronise (our best share VERSION < 34 at
  handshake time, or no best share yet since a new chain starts at 17) get
  `have_tx` with our whole known-transaction pool, then every change of it
  (`have_tx` / `losing_tx`) as the pool's `changed` event reports it;
* the mining transaction set (set_mining_txs, from the work bridge) is kept
  remembered by those peers with `remember_tx` / `forget_tx`, within the
  peer's size cap;
* before a v<34 share goes out, the transactions the peer lacks are sent with
  `remember_tx`, then the shares, then `forget_tx` for the same keys;
* received v<34 shares are resolved against what the peer may reference, and the
  transactions join the known pool.

The pool itself is the ShareChain's `known_txs` (p2pool.bitcoin.txpool.KnownTxPool),
filled from bitcoind's templates. Transactions that arrive from peers are added to
it too, in a bounded FIFO (`max_peer_txs`) so a stream of peer transactions cannot
grow it forever. Nothing here runs for VERSION >= 34 shares.

Per-peer state lives on the peer: `sync_txs` (bool), `remembered_for_us`
({key: charged bytes}) and `remembered_for_us_size`.
"""
import logging
from collections import OrderedDict
from typing import Any

from p2pool.bitcoin.data import tx_type
from p2pool.p2p.contracts import PeerChain
from p2pool.p2p.protocol import ProtocolError
from p2pool.sharechain.share import FIRST_ADDRESS_VERSION

log = logging.getLogger(__name__)

#: p2p.md §4.12: every remembered transaction is charged its size plus this
TX_OVERHEAD = 100
#: transactions learnt from peers kept in the known pool at most (oldest dropped first)
MAX_PEER_TXS = 50000
_SIZE_CACHE_LIMIT = 200000


def share_wrapper(share) -> dict[str, Any]:
    """The wire record {'type', 'contents'} of a share (shares.md §2)."""
    return {'type': share.VERSION, 'contents': share.contents_bytes}


class TxRelay:
    """Mirrors the known-transaction pool and the mining set to peers (module docstring)."""

    def __init__(self, chain: PeerChain, max_remembered_size: int, max_peer_txs: int = MAX_PEER_TXS) -> None:
        self.chain = chain
        self.max_remembered_size = max_remembered_size
        self.max_peer_txs = max_peer_txs
        self.mining_txs: dict[Any, Any] = {}
        self._syncing: list[Any] = []          # peers with sync_txs, in connection order
        self._peer_txs: OrderedDict[Any, Any] = OrderedDict()  # keys added to the pool from peers, oldest first
        self._sizes: dict[Any, Any] = {}
        chain.known_txs.changed.watch(self._pool_changed)

    def tx_size(self, key, tx) -> int:
        size = self._sizes.get(key)
        if size is None:
            if len(self._sizes) >= _SIZE_CACHE_LIMIT:
                self._sizes.clear()
            size = self._sizes[key] = len(tx_type.pack(tx))
        return size

    def wants_sync(self) -> bool:
        """[jt]: synchronise transaction views while our best share is VERSION < 34."""
        best = self.chain.best_share_hash.value
        share = self.chain.tracker.items.get(best) if best is not None else None
        return share is None or share.VERSION < FIRST_ADDRESS_VERSION

    # --- connections ----------------------------------------------------------------

    def peer_connected(self, peer) -> None:
        peer.remembered_for_us, peer.remembered_for_us_size = {}, 0
        peer.sync_txs = self.wants_sync()
        if not peer.sync_txs:
            return
        self._syncing.append(peer)
        if self.chain.known_txs:
            peer.send('have_tx', tx_hashes=list(self.chain.known_txs))
        self._remember_mining(peer, self.mining_txs)

    def peer_disconnected(self, peer) -> None:
        if peer in self._syncing:
            self._syncing.remove(peer)

    # --- the known pool -----------------------------------------------------------------

    def _pool_changed(self, added, removed) -> None:
        """Mirror one change of the known pool to the syncing peers."""
        for peer in list(self._syncing):
            if added:
                peer.send('have_tx', tx_hashes=list(added))
            if removed:
                peer.send_losing_tx(removed)

    def add_known(self, txs) -> None:
        """Add transactions received from peers to the known pool (bounded, see module docstring)."""
        pool = self.chain.known_txs
        for key in pool.add(txs):
            self._peer_txs[key] = None
        evicted = []
        while len(self._peer_txs) > self.max_peer_txs:
            key, _ = self._peer_txs.popitem(last=False)
            if key not in self.mining_txs:
                evicted.append(key)
        pool.remove(evicted)

    def resolve(self, peer, shares) -> dict[int, Any]:
        """{key: tx} for the new transactions of the received v<34 `shares`.

        Raises ProtocolError when one is neither remembered for the peer, in the
        known pool nor in the peer's latency cache (§4.6: drop the connection).
        """
        found = {}
        for share in shares:
            if share.VERSION >= FIRST_ADDRESS_VERSION:
                continue
            for key in share.new_transaction_hashes:
                if key in found:
                    continue
                tx = peer.remembered_txs.get(key)
                if tx is None:
                    tx = peer.lookup_tx(key)
                if tx is None:
                    raise ProtocolError('peer referenced unknown transaction %064x' % key)
                found[key] = tx
        return found

    # --- the mining set -----------------------------------------------------------------

    def set_mining_txs(self, txs) -> None:
        """The transactions of our current block template ({key: tx})."""
        old, self.mining_txs = self.mining_txs, dict(txs)
        removed = [key for key in old if key not in self.mining_txs]
        added = {key: tx for key, tx in self.mining_txs.items() if key not in old}
        for peer in list(self._syncing):
            forget = [key for key in removed if key in peer.remembered_for_us]
            for key in forget:
                peer.remembered_for_us_size -= peer.remembered_for_us.pop(key)
            if forget:
                peer.send('forget_tx', tx_hashes=forget)
            self._remember_mining(peer, added)

    def _remember_mining(self, peer, txs) -> None:
        have: list[Any] = []
        full: list[Any] = []
        for key, tx in txs.items():
            cost = TX_OVERHEAD + self.tx_size(key, tx)
            if key in peer.remembered_for_us or peer.remembered_for_us_size + cost > self.max_remembered_size:
                continue
            peer.remembered_for_us[key] = cost
            peer.remembered_for_us_size += cost
            (have if key in peer.remote_tx_hashes else full).append((key, tx))
        if have or full:
            peer.send('remember_tx', tx_hashes=[key for key, _ in have], txs=[tx for _, tx in full])

    # --- sending shares -------------------------------------------------------------------

    def send_shares(self, peer, shares, encoded=None) -> bool:
        """Send `shares` to `peer` with the transactions it lacks; False if they cannot go.

        `encoded` (a dict the caller keeps for one relay) holds the `shares` frames already made
        for other peers with the same settings, so each distinct message is encoded once."""
        if not shares:
            return True
        pool = self.chain.known_txs
        keys, txs, cost, seen = [], [], 0, set()
        for share in shares:
            if share.VERSION >= FIRST_ADDRESS_VERSION:
                continue
            for key in share.new_transaction_hashes:
                if key in peer.remote_tx_hashes or key in peer.remembered_for_us or key in seen:
                    continue
                seen.add(key)
                tx = pool.get(key)
                if tx is None:
                    log.warning('Not sending share %064x to %r: transaction %064x is unknown',
                                share.hash, peer, key)
                    return False
                keys.append(key)
                txs.append(tx)
                cost += TX_OVERHEAD + self.tx_size(key, tx)
        if peer.remembered_for_us_size + cost > self.max_remembered_size:
            log.warning('Not sending %d shares to %r: their transactions exceed what it keeps for us',
                        len(shares), peer)
            return False
        if txs:
            peer.send('remember_tx', tx_hashes=[], txs=txs)
        if encoded is None:
            peer.send('shares', shares=[share_wrapper(share) for share in shares])
        else:
            key = (peer.settings.prefix, peer.settings.max_payload_size, tuple(share.hash for share in shares))
            frames = encoded.get(key)
            if frames is None:
                frames = encoded[key] = peer.encode_frames('shares', shares=[share_wrapper(s) for s in shares])
            peer.send_frames(frames)
        if keys:
            peer.send('forget_tx', tx_hashes=keys)
        return True
