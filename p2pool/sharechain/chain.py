"""The running node's sharechain: tracker, verification, best share, store and events.

The sharechain package is pure consensus logic; this module is the one place
that keeps its state for a running node and tells the other rooms when it
changes. It reads no clock of its own (`clock` is injected) and opens no
sockets, so tests drive it directly.

    chain = ShareChain(net, store, clock=time.time)
    chain.load()                                  # shares back from SQLite
    chain.best_share_hash.changed.watch(relay)    # p2p relays, work refreshes
    chain.add_shares(shares, peer_addr)           # from peers (chain.parse_shares) or local miners
    chain.think()                                 # after new work, and every 5 s via prune()

Other rooms talk to it only through the attributes and events documented in
ShareChain; see p2pool/p2p/peerset.py, p2pool/work/bridge.py and p2pool/web/.
"""
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.data import bits_to_target
from p2pool.bitcoin.hashes import THREADED_POW_FUNCS
from p2pool.bitcoin.txpool import KnownTxPool
from p2pool.events import Event, Variable
from p2pool.sharechain import share as share_module
from p2pool.sharechain import stats, verify, voting
from p2pool.sharechain.chooser import Chooser, ThinkResult
from p2pool.sharechain.share import Net, Share, ShareTracker
from p2pool.sharechain.tracker import Tracker

log = logging.getLogger(__name__)

#: parents get_shares_for_request walks for one requested hash at most: the whole reply
#: budget of p2p.md §4.7 (p = min(parents, 1000 // len(hashes)) is applied by the caller)
MAX_PARENTS_PER_REQUEST = 1000
#: measured transaction sizes kept for the block-weight punishment before the cache is trimmed
MAX_REMEMBERED_TX_SIZES = 100000


class KnownTxSizes(Mapping[int, tuple[int, int]]):
    """{tx key: (full size, stripped size)} of the node's known transactions, for the [jt]
    block-size punishment of VERSION < 34 shares (sharechain.md §5.1 rule 3).

    A key is the hash of the transaction's full serialization, so a size once measured
    never goes stale; sizes are measured on first use only.
    """

    def __init__(self, get_txs: Callable[[], Mapping[int, bitcoin_data.Tx]]) -> None:
        self._get_txs = get_txs
        self._sizes: dict[int, tuple[int, int]] = {}

    def _measure(self, key: int) -> tuple[int, int] | None:
        """(full size, stripped size), or None for a transaction we do not have (or cannot encode)."""
        sizes = self._sizes.get(key)
        if sizes is None:
            tx = self._get_txs().get(key)
            if tx is None:
                return None
            try:
                sizes = (len(bitcoin_data.tx_type.pack(tx)), len(bitcoin_data.tx_id_type.pack(tx)))
            except Exception:  # not a transaction we can size: as good as unknown
                log.debug('cannot size known transaction %064x', key, exc_info=True)
                return None
            if len(self._sizes) >= MAX_REMEMBERED_TX_SIZES:
                txs = self._get_txs()
                self._sizes = {k: v for k, v in self._sizes.items() if k in txs}
            self._sizes[key] = sizes
        return sizes

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and key in self._get_txs() and self._measure(key) is not None

    def __getitem__(self, key: int) -> tuple[int, int]:
        sizes = self._measure(key) if key in self._get_txs() else None
        if sizes is None:
            raise KeyError(key)
        return sizes

    def __iter__(self) -> Iterator[int]:
        return iter(self._get_txs())

    def __len__(self) -> int:
        return len(self._get_txs())


class ShareChain:
    """The sharechain of a running node.

    Attributes other rooms use:
      net, tracker (tracker.verified is the verified subset)
      best_share_hash       Variable(int|None); .changed fires with the new best hash
      punish_aggressively   Variable(bool)
      desired               [(peer_addr, share_hash)] parents to fetch; desired_changed Event(list)
      shares_added          Event(list of new shares)
      bad_peer              Event(peer_addr, reason): a peer sent a share that failed verification
      block_found_by_peer   Event(share): a verified share from a peer whose PoW meets its block target
      local_block_solution  Event(share): a share of our miners whose PoW meets its block target
                            (added to the chain already; the P2P room relays it at once, p2p.md §6.2)
      minimum_protocol_version Variable(int): raised by version voting (shares.md §13.3)
      known_txs             bitcoin.txpool.KnownTxPool: transactions we can reference and the fees
                            bitcoind reported (filled from its templates and by the P2P room)
      stale                 stats.StaleAccounting of our own shares (the work bridge records them)
    """

    def __init__(self, net: Net, store: Any = None, clock: Callable[[], float] = time.time,
                 rel_height: Callable[[int | None], int] | None = None,
                 block_height: Callable[[int | None], int | None] | None = None) -> None:
        self.net = net
        # a p2pool.store ShareStore (the sharechain imports nothing outside bitcoin/ and events)
        self.store = store
        self.clock = clock
        self.tracker: ShareTracker = Tracker()
        self.best_share_hash = Variable(None, 'best share')
        self.punish_aggressively = Variable(False, 'punish aggressively')
        self.minimum_protocol_version = Variable(net.MINIMUM_PROTOCOL_VERSION, 'minimum protocol version')
        self.desired: list[tuple[Any, int]] = []
        self.desired_changed = Event('desired shares')
        self.shares_added = Event('shares added')
        self.bad_peer = Event('bad peer')
        self.block_found_by_peer = Event('block found by peer')
        self.local_block_solution = Event('block solution by our miners')
        self.known_txs = KnownTxPool()
        # parent-chain heights for the best-chain score; the bitcoind bridge replaces these
        self.rel_height: Callable[[int | None], int] = rel_height or (lambda block_hash: 0)
        self.block_height = block_height
        self.verification_failures: dict[int, str] = {}
        # share hash -> (stripped gentx size, gentx weight) of verified VERSION < 34 shares
        self.gentx_sizes: dict[int, tuple[int, int]] = {}
        self.tracker.on_removed.append(lambda share: self.gentx_sizes.pop(share.hash, None))
        self.stale = stats.StaleAccounting(self.tracker, lambda: self.best_share_hash.value)
        self.chooser = Chooser(self.tracker, net, self.verify_share, lambda block_hash: self.rel_height(block_hash),
                               known_tx_sizes=KnownTxSizes(lambda: self.known_txs), gentx_sizes=self.gentx_sizes)
        self.last_load_report: Any = None
        self._handled_result: ThinkResult | None = None   # the last result _after_think applied
        if store is not None:
            store.on_reset.append(self.write_all_to_store)

    def write_all_to_store(self) -> None:
        """Queue every share the tracker holds and its verified mark (after the store replaced a
        damaged database by an empty one: the chain in memory is all that is left)."""
        shares = list(self.tracker.items.values())
        self.store.pending.add_shares(shares, added_at=self.clock())
        self.store.pending.mark_verified(list(self.tracker.verified.items))
        log.warning('writing the %d shares (%d verified) in memory into the fresh share database',
                    len(shares), len(self.tracker.verified.items))

    # --- parsing ------------------------------------------------------------------

    def parse_share(self, wrapper: bytes | dict[str, Any], peer_addr: Any = None) -> Share:
        """A Share from wire bytes or a {type, contents} record; ShareDecodeError/ShareMisbehaviour on bad input."""
        return self._decode(wrapper, self.clock(), peer_addr, None)

    def parse_shares(self, wrappers: Sequence[bytes | dict[str, Any]], peer_addr: Any = None) -> list[Share]:
        """parse_share of each record, in order; raises what the first bad record raises, as that loop would.

        On a parent with a slow proof of work (scrypt) the records are decoded first and their headers
        hashed together afterwards, on one thread per CPU (p2pool.bitcoin.hashes.pow_hashes): a download
        reply of hundreds of shares costs the hashing of one share per core at a time.
        """
        parent = self.net.PARENT
        if getattr(parent, 'POW_FUNC', 'sha256d') not in THREADED_POW_FUNCS:
            return [self.parse_share(wrapper, peer_addr) for wrapper in wrappers]
        now = self.clock()
        shares: list[Share] = []
        failure: share_module.ShareDecodeError | None = None
        for wrapper in wrappers:
            try:
                shares.append(self._decode(wrapper, now, peer_addr, share_module.POW_HASHED_LATER))
            except share_module.ShareDecodeError as e:
                failure = e  # raised after the PoW of the shares before it: a bad PoW there comes first
                break
        for share, pow_hash in zip(shares, parent.pow_hashes([share.header_bytes for share in shares])):
            share.accept_pow_hash(pow_hash)
        if failure is not None:
            raise failure
        return shares

    def _decode(self, wrapper: bytes | dict[str, Any], now: float, peer_addr: Any,
                known_pow_hash: int | None) -> Share:
        if isinstance(wrapper, dict):
            return share_module.share_from_type_and_contents(
                self.net, wrapper['type'], bytes(wrapper['contents']), now, peer_addr, known_pow_hash)
        return share_module.Share.from_wire(self.net, bytes(wrapper), now, peer_addr, known_pow_hash)

    # --- loading ------------------------------------------------------------------

    def load(self) -> int:
        """Put the stored chain back into the tracker (shares keep time_seen 0, as from disk)."""
        if self.store is None:
            return 0
        started = self.clock()
        loaded: list[Share] = []
        verified: list[Share] = []
        # scrypt costs ~0.5-1.5 ms a share: a restart reuses the PoW hash stored when each share
        # arrived (this node's own record); SHA-256d is cheaper than trusting the record
        reuse_pow = getattr(self.net.PARENT, 'POW_FUNC', 'sha256d') != 'sha256d'
        for share, is_verified in self.store.load_shares(
                self.net, lambda raw, stored_pow: share_module.Share.from_wire(
                    self.net, raw, known_pow_hash=stored_pow if reuse_pow else None), with_pow=True):
            if share.hash in self.tracker.items:
                continue
            self.tracker.add(share)
            loaded.append(share)
            if is_verified:
                verified.append(share)
        for share in verified:
            if share.hash not in self.tracker.verified.items:
                self.tracker.verified.add(share)
        self.last_load_report = self.store.last_load_report
        log.info('Loaded %d shares (%d verified) from the store in %.2f s', len(loaded), len(verified),
                 self.clock() - started)
        if loaded:
            self.think()
            self.minimum_protocol_version.set(voting.startup_minimum_protocol_version(
                self.tracker, self.best_share_hash.value, len(loaded), self.minimum_protocol_version.value,
                self.net))
        return len(loaded)

    # --- adding -------------------------------------------------------------------

    def add_shares(self, shares: Iterable[Share], peer_addr: Any = None, think: bool = True) -> list[Share]:
        """Add the shares we don't know yet, store them, re-evaluate; returns the new ones."""
        new: list[Share] = []
        items = self.tracker.items
        for share in shares:
            if share.hash in items:
                continue
            if peer_addr is not None and share.peer_addr is None:
                share.peer_addr = peer_addr
            self.tracker.add(share)
            new.append(share)
        if not new:
            return new
        if self.store is not None:
            self.store.pending.add_shares(new, added_at=self.clock())
        self.shares_added.happened(new)
        if think:
            self.think()   # flushes the shares together with the verified marks: one transaction
        else:
            self._flush()
        return new

    def add_local_share(self, share: Share, doa: bool = False) -> list[Share]:
        """A share our miners found: into the chain and the store at once; the best chain is
        re-evaluated unless it is dead on arrival. A block solution is announced with
        local_block_solution (other shares go out with the next best-share change)."""
        new = self.add_shares([share], think=not doa)
        if share.pow_hash <= bits_to_target(share.header['bits']):
            self.local_block_solution.happened(share)
        return new

    # --- verification -------------------------------------------------------------

    #: full validation: None runs verify.check_share, looked up at each call; the simulator sets a cross-node
    #: cache of it here
    check_share: Callable[..., Any] | None = None

    def verify_share(self, share: Share) -> bool:
        try:
            check = self.check_share or verify.check_share
            regenerated = check(self.tracker, share, self.clock(), fee_cache=self.known_txs.fees,
                                block_height=self.block_height)
        except share_module.ShareDecodeError as e:  # ShareInvalid and ShareMisbehaviour derive from it
            log.warning('Share %064x from %s failed verification: %s', share.hash,
                        share.peer_addr or 'this node', e)
            self.verification_failures[share.hash] = str(e)
            return False
        except Exception as e:  # a checker bug must not stop the node: the share counts as invalid
            log.exception('Share %064x from %s could not be verified', share.hash, share.peer_addr or 'this node')
            self.verification_failures[share.hash] = '%s: %s' % (type(e).__name__, e)
            return False
        if share.VERSION < share_module.FIRST_ADDRESS_VERSION:
            stripped_size = len(regenerated.stripped)
            self.gentx_sizes[share.hash] = (
                stripped_size, len(bitcoin_data.tx_type.pack(regenerated.tx())) + 3 * stripped_size)
        if self.store is not None:
            self.store.pending.mark_verified([share.hash])
        new_minimum = voting.updated_minimum_protocol_version(
            self.tracker, share, self.minimum_protocol_version.value, self.net)
        self.minimum_protocol_version.set(new_minimum)
        if share.peer_addr is not None and share.pow_hash <= bits_to_target(share.header['bits']):
            log.info('GOT BLOCK FROM PEER! %064x (share by %s)', share.hash, share.payout_address)
            self.block_found_by_peer.happened(share)
        return True

    # --- choosing -------------------------------------------------------------------

    def think(self) -> ThinkResult:
        """Verify what can be verified, pick the best share, update desired; fire events."""
        result = self.chooser.think(self.clock())
        self._after_think(result, result.removed)
        return result

    def prune(self) -> ThinkResult:
        """The 5-second job: think, prune old heads and tails, think again."""
        now = self.clock()
        idle = self.chooser.idle_result(now)
        if idle is not None and idle is self._handled_result and self.desired is idle.desired:
            self._flush()   # the job would change nothing (as _after_think's shortcut would find)
            return idle
        result, removed = self.chooser.think_and_prune(now)
        self._after_think(result, removed)
        return result

    def _after_think(self, result: ThinkResult, removed: Sequence[int]) -> None:
        if result is self._handled_result and not removed and self.desired is result.desired:
            # the chooser answered the very result handled last (a remembered pass: no bad peers,
            # nothing removed) and it was applied in full: only the store's batch may be new
            self._flush()
            return
        for peer_addr in result.bad_peer_addresses:
            if peer_addr is not None:
                self.bad_peer.happened(peer_addr, 'sent a share that failed verification')
        if removed and self.store is not None:
            self.store.pending.forget_shares(removed)
        self._flush()
        changed = result.desired != self.desired
        # kept even when equal: the shortcuts above and in prune() recognise an applied result by identity
        self.desired = result.desired
        if changed:
            self.desired_changed.happened(list(result.desired))
        self.punish_aggressively.set(result.punish_aggressively)
        self.best_share_hash.set(result.best_hash)
        # set last: a watcher of the events above that thinks again (re-entrant) gets the full treatment
        self._handled_result = result

    def _flush(self) -> None:
        if self.store is None:
            return
        try:
            self.store.flush()
        except Exception as e:  # a full disk must not stop the node; the batch stays pending
            log.error('Could not write shares to the store (will retry): %s', e)

    # --- serving peers ----------------------------------------------------------------

    def get_shares_for_request(self, hashes: Iterable[int], parents: int, stops: Iterable[int]) -> list[Share]:
        """sharereq (p2p.md §4.7): each known hash and up to `parents` of its ancestors,
        stopping at any hash in `stops`."""
        parents = min(parents, MAX_PARENTS_PER_REQUEST)
        stop_set = set(stops)
        items = self.tracker.items
        found: list[Share] = []
        for share_hash in hashes:
            share = items.get(share_hash)
            for _ in range(parents + 1):
                if share is None or share.hash in stop_set:
                    break
                found.append(share)
                share = items.get(share.previous_hash) if share.previous_hash is not None else None
        return found

    # --- convenience for the other rooms ---------------------------------------------------

    @property
    def best_share(self) -> Share | None:
        best = self.best_share_hash.value
        return None if best is None else self.tracker.items.get(best)

    def sync_progress(self) -> tuple[int, int]:
        """(verified shares behind the best head, shares needed) for the dashboard and console."""
        best = self.best_share_hash.value
        have = self.tracker.verified.get_height(best) if best is not None else 0
        needed: int = self.net.CHAIN_LENGTH
        return min(have, needed), needed

    def close(self) -> None:
        if self.store is not None:
            self._flush()
            self.store.close()
