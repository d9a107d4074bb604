"""Recording graph history and the stat log while the node runs, and persisting both.

p2pool.app.main creates one WebService per node, connects the node's events to its
`on_*` methods and calls `start(reactor)`:

    service = WebService(node)
    bridge.pseudoshare_received.watch(service.on_pseudoshare)   # (work, dead, user)
    bridge.share_found.watch(service.on_local_share)            # (share, dead, user)
    p2p_node.traffic.watch(service.on_traffic)                  # ('p2p/in' | 'p2p/out', nbytes)
    service.start(reactor)
    root = build_web_root(node, static_dir, service=service)

A facade with a `template_latency` Event (p2pool.app.views.WebNodeView has one: the seconds of
the getblocktemplate call behind each template) is watched by the service itself.

Every 5 s it samples the gauges of web.md §2.4 (`sample`), every 100 s it saves the
history into node.history_store (one row per source and view, older rows pruned),
every 5 minutes it appends a stat entry (web.md §3) to the stat log, which keeps
24 hours and is stored in the same database. `load()` (called by start) restores both.
"""
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from p2pool.sharechain import stats, voting
from p2pool.store.sharestore import StoreError
from p2pool.web.api import WebContext
from p2pool.web.contracts import WebNode
from p2pool.web.history import GraphHistory
from p2pool.web.localstats import stat_entry

__all__ = ['WebService', 'StatLog', 'SAMPLE_INTERVAL', 'SAVE_INTERVAL', 'STAT_INTERVAL', 'LOCAL_SHARE_CHECK_DELAY']

log = logging.getLogger(__name__)

SAMPLE_INTERVAL = 5
SAVE_INTERVAL = 100
STAT_INTERVAL = 300
STAT_LOG_SPAN = 24 * 3600
#: a local share is re-classified (dead -> good, good -> orphan) this long after it was found
LOCAL_SHARE_CHECK_DELAY = 200
#: history_store source names of the two persisted kinds
STAT_LOG_SOURCE = 'stat_log'
GRAPH_SOURCE_PREFIX = 'graph:'


def address_of_user(user) -> str:
    """The payout address of a statistics key `ADDRESS.WORKER` (addresses never contain '.')."""
    return user.split('.', 1)[0]


def resident_memory() -> int | None:
    """Resident set size of this process in bytes, or None where /proc is not available."""
    try:
        with open('/proc/self/statm') as statm:
            return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return None


class StatLog:
    """The 5-minute stat entries of the last 24 hours (`/web/log`)."""

    def __init__(self, span=STAT_LOG_SPAN) -> None:
        self.span = span
        self._entries: list[Any] = []

    def add(self, entry) -> None:
        self._entries.append(entry)
        self.trim(entry['time'])

    def trim(self, now) -> None:
        self._entries = [entry for entry in self._entries if entry['time'] > now - self.span]

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)


class WebService:
    """History, stat log and their persistence for one node (see the module docstring)."""

    def __init__(self, node: WebNode, clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.clock = clock
        self.history = GraphHistory()
        self.stat_log = StatLog()
        self.context = WebContext(node, self, clock)
        self._pending_local_shares: list[Any] = []   # (time found, share hash, work, dead)
        self.traffic_bytes = {'p2p/in': 0, 'p2p/out': 0}   # since start, for the /metrics counters
        self._loops: list[Any] = []
        self._save_stamp = 0.0
        self._loaded = False
        self.last_save_error: Any = None
        store = getattr(node, 'history_store', None)
        if store is not None and hasattr(store, 'on_reset'):
            store.on_reset.append(self.write_all_to_store)    # a damaged database was replaced
        latency_event = getattr(node, 'template_latency', None)
        if latency_event is not None:
            latency_event.watch(lambda seconds: self.on_getwork_latency(seconds))

    # --- events from the node ----------------------------------------------------------

    def on_pseudoshare(self, work, dead, user, now=None) -> None:
        """An accepted pseudoshare of `work` attempts by `user` (dead: DOA)."""
        now = self.clock() if now is None else now
        self.history.add('local_hash_rate', now, work)
        self.history.add('miner_hash_rates', now, {user: work})
        if dead:
            self.history.add('local_dead_hash_rate', now, work)
            self.history.add('miner_dead_hash_rates', now, {user: work})

    def on_local_share(self, share, dead, user=None, now=None) -> None:
        """A share found by our miners (the bridge's share_found event); re-classified
        LOCAL_SHARE_CHECK_DELAY seconds later."""
        now = self.clock() if now is None else now
        self.history.add('local_share_hash_rates', now, {'dead' if dead else 'good': share.work})
        self._pending_local_shares.append((now, share.hash, share.work, dead))

    def on_traffic(self, direction, nbytes, now=None) -> None:
        self.traffic_bytes[direction] = self.traffic_bytes.get(direction, 0) + nbytes
        self.history.add('traffic_rate', self.clock() if now is None else now, {direction: nbytes})

    def on_getwork_latency(self, seconds, now=None) -> None:
        self.history.add('getwork_latency', self.clock() if now is None else now, seconds)

    # --- periodic work ------------------------------------------------------------------

    def settle_local_shares(self, now) -> None:
        """Move local shares found LOCAL_SHARE_CHECK_DELAY ago: a DOA share that made it into
        the best chain counts as good, a good one that did not as orphan (at its own time). A
        share not connected to the best chain (or no longer known) did not make it."""
        best = self.node.best_share_hash()
        tracker = self.node.tracker
        waiting = []
        for found_at, share_hash, work, dead in self._pending_local_shares:
            if now < found_at + LOCAL_SHARE_CHECK_DELAY:
                waiting.append((found_at, share_hash, work, dead))
                continue
            in_best_chain = (best is not None and share_hash in tracker.items
                             and tracker.is_child_of(share_hash, best) is True)
            if in_best_chain and dead:
                self.history.add('local_share_hash_rates', found_at, {'dead': -work, 'good': work})
            elif not in_best_chain and not dead:
                self.history.add('local_share_hash_rates', found_at, {'good': -work, 'orphan': work})
        self._pending_local_shares = waiting

    def sample(self, now=None) -> None:
        """The 5-second gauges of web.md §2.4, recorded only once the best chain is 10 shares high."""
        now = self.clock() if now is None else now
        node, history = self.node, self.history
        self.settle_local_shares(now)
        best, height = self.context.best()
        if best is None or height < 10:
            return
        peers = list(node.peers())
        incoming = sum(1 for peer in peers if peer.incoming)
        history.add('peers', now, {'incoming': incoming, 'outgoing': len(peers) - incoming})
        memory = resident_memory()
        if memory is not None:
            history.add('memory_usage', now, memory)
        tracker, net = node.tracker, node.net
        lookbehind = min(net.CHAIN_LENGTH, 3600 // net.SHARE_PERIOD, height)
        if lookbehind >= 2:
            history.add('pool_rates', now, stats.stale_counts(tracker, best, lookbehind, rates=True))
            pool_rate = stats.pool_attempts_per_second(tracker, best, lookbehind)
            votes = voting.desired_version_counts(tracker, best, lookbehind)
            total_votes = sum(votes.values())
            if total_votes:
                history.add('desired_version_rates', now,
                            {str(version): work / total_votes * pool_rate for version, work in votes.items()})
        if node.current_work() is not None:
            payouts = self.context.expected_payouts()
            mine = set(node.payout_addresses) | ({node.payout_address} if node.payout_address else set())
            history.add('current_payout', now, sum(payouts.get(address, 0) for address in mine) * 1e-8)
            # miners are keyed `address.worker` (the rate monitors' key); each shows its address's payout
            users = node.local_stats().miner_hash_rates
            history.add('current_payouts', now,
                        {user: payouts[address_of_user(user)] * 1e-8 for user in users
                         if address_of_user(user) in payouts})

    def add_stat_entry(self) -> dict[str, Any] | None:
        """Append a stat entry (if the chain is long enough) and store it; returns it or None."""
        entry = stat_entry(self.context)
        if entry is None:
            return None
        self.stat_log.add(entry)
        self._store_call(lambda store: (store.history_put(STAT_LOG_SOURCE, entry['time'], entry),
                                        store.history_prune(entry['time'] - STAT_LOG_SPAN, STAT_LOG_SOURCE)))
        return entry

    # --- persistence --------------------------------------------------------------------

    def _store_call(self, work) -> bool:
        store = self.node.history_store
        if store is None:
            return False
        try:
            work(store)
        except StoreError as error:
            # the node keeps running without persistence; say so once per kind of failure
            if str(error) != self.last_save_error:
                log.warning('could not persist web history: %s', error)
            self.last_save_error = str(error)
            return False
        return True

    def save(self, now=None) -> bool:
        """Store one snapshot row per source and view, then drop the older rows."""
        now = self.clock() if now is None else now
        # rows are stamped increasingly even if the wall clock steps back, so the newest
        # row is always the latest snapshot and pruning never drops it
        now = self._save_stamp = max(now, self._save_stamp + 0.001)
        snapshot = self.history.snapshot()

        def work(store) -> None:
            for source, views in snapshot.items():
                for view, state in views.items():
                    store.history_put(GRAPH_SOURCE_PREFIX + source, now, state, view=view)
                store.history_prune(now, GRAPH_SOURCE_PREFIX + source)
        return self._store_call(work)

    def write_all_to_store(self) -> None:
        """The graph history and the whole stat log into the store (a fresh, empty one)."""
        entries = self.stat_log.entries()
        self.save()
        self._store_call(lambda store: store.history_put_many(
            STAT_LOG_SOURCE, [(entry['time'], entry) for entry in entries]))

    def load(self, now=None) -> int:
        """Restore history and the stat log from node.history_store; returns views restored."""
        now = self.clock() if now is None else now
        store = self.node.history_store
        self._loaded = True
        if store is None:
            return 0
        snapshot: dict[Any, Any] = {}
        try:
            for source in self.history.sources:
                for view in self.history.views:
                    latest = store.history_latest(GRAPH_SOURCE_PREFIX + source, view=view)
                    if latest is not None:
                        snapshot.setdefault(source, {})[view] = latest[1]
                        self._save_stamp = max(self._save_stamp, latest[0])
            entries = store.history_get(STAT_LOG_SOURCE, now - STAT_LOG_SPAN)
        except StoreError as error:
            log.warning('could not load web history: %s', error)
            return 0
        for _ts, entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get('time'), (int, float)):
                self.stat_log.add(entry)
        return self.history.restore(snapshot)

    # --- running --------------------------------------------------------------------------

    def _guarded(self, what, fn):
        def run() -> None:
            try:
                fn()
            except Exception:   # one failing sample must not stop the loop for good
                log.exception('web %s failed', what)
        return run

    def start(self, reactor) -> None:
        """Load saved state (unless load() was called already: loading twice would repeat the
        stat log) and start the sampling, saving and stat-log loops."""
        from twisted.internet import task
        if not self._loaded:
            self.load()
        for interval, what, fn in ((SAMPLE_INTERVAL, 'sample', self.sample),
                                   (SAVE_INTERVAL, 'history save', self.save),
                                   (STAT_INTERVAL, 'stat log', self.add_stat_entry)):
            loop = task.LoopingCall(self._guarded(what, fn))
            loop.clock = reactor
            loop.start(interval, now=False)
            self._loops.append(loop)

    def stop(self) -> None:
        """Stop the loops and save once more."""
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        self.save()
