"""The node facade the web package talks to, and the root-level JSON endpoints (web.md §2.1).

THE NODE FACADE
===============
p2pool.web (and p2pool.app.status) never import p2p/ or work/. Everything they know
about the running node comes through one object, built by p2pool.app.main, with
these members (read in the reactor thread; methods must not block), typed as
p2pool.web.contracts.WebNode:

Attributes
  net                  the Network (p2pool.config.load_network): NAME, SHARE_PERIOD,
                       CHAIN_LENGTH, REAL_CHAIN_LENGTH, P2P_PORT, PARENT (SYMBOL,
                       BLOCK_PERIOD, *_EXPLORER_URL_PREFIX, ADDRESS_VERSION)
  tracker              the share Tracker (p2pool.sharechain.tracker); tracker.verified
                       is the verified subset
  start_time           unix time the node started (float)
  fee                  worker fee in percent (float)
  donation             donation percentage, --give-author (float)
  payout_address       the node's payout address (str), or None
  payout_addresses     the dynamic payout pool (list of str; [payout_address] when static)
  stale_accounting     the node's p2pool.sharechain.stats.StaleAccounting (sharechain.md §7):
                       .my_shares / .my_doa_shares (hashes of the shares our miners found
                       this run / the dead ones) and .counts(best_hash)
  history_store        the node's ShareStore (p2pool.store.sharestore): graph history
                       and the stat log are persisted there; None keeps them in memory

Methods
  best_share_hash()    the current best share's hash (int) or None
  current_work()       None before the first block template, else a mapping with
                       'bits' (compact block target), 'coinbasevalue' (satoshis), 'height'
  peers()              iterable of PeerInfo (below), one per connected peer
  local_stats()        a LocalStats (below): the worker-side numbers of this run

Optional
  template_latency     an Event fired with the seconds of the getblocktemplate call behind
                       each new template (WebService records it as getwork_latency)
  payout_history()     blocks of the pool paying this node's payees, newest first: dicts with
                       height, hash, time, share, payouts {address: coins}, total, confirmations,
                       state ('immature' | 'mature' | 'orphaned'); /web/payouts
  payout_totals()      {state: coins} over payout_history (/metrics)
  block_state(hash)    bitcoind's view of a block of the pool (a state above) or None if unknown
                       (recent_blocks marks orphaned blocks)

Everything else (pool rates, stale proportions, payouts, warnings, sync progress)
is computed here from the tracker with p2pool.sharechain (pplns, stats, verify).

Endpoint functions take a `WebContext` (node + the clock + caches) and return a
JSON-able value or raise HttpError(code, one-line reason).
"""
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from p2pool.bitcoin.data import bits_to_target, target_to_average_attempts, target_to_difficulty
from p2pool.bitcoin.script import read_bip34_height
from p2pool.sharechain import pplns, stats
from p2pool.web.contracts import WebNode

__all__ = ['PeerInfo', 'LocalStats', 'HttpError', 'WebContext', 'ROOT_ENDPOINTS', 'decent_height',
           'hour_lookbehind', 'to_coins']


@dataclass
class PeerInfo:
    """One connected P2Pool peer as the web pages show it."""
    host: str
    port: int
    incoming: bool
    sub_version: str = ''
    ping: float | None = None               # ms: min of 3 sharereq round trips (web.md /pings), None if unknown/failed
    remembered_tx_bytes: int = 0     # bytes of transactions the peer asked us to remember


@dataclass
class LocalStats:
    """Worker-side numbers of this run: the bridge's 10-minute rate monitors and bitcoind contact."""
    rate_window: float = 0.0         # seconds the 10-minute rate monitors currently cover
    hash_rate: float = 0.0           # H/s of accepted pseudoshares in the window (dead included)
    dead_hash_rate: float = 0.0      # H/s of dead-on-arrival pseudoshares
    pseudoshares: int = 0            # accepted pseudoshares in the window
    dead_pseudoshares: int = 0
    miner_hash_rates: dict = field(default_factory=dict)        # {user: H/s}
    miner_dead_hash_rates: dict = field(default_factory=dict)   # {user: H/s}
    miner_last_difficulties: dict = field(default_factory=dict)  # {user: difficulty of last share target}
    share_rate: float | None = None         # expected shares/s: Σ work / window / attempts(share target) of the
                                     # pseudoshares in the window (the console's time to share); None: unknown
    bitcoind_latency: float | None = None   # seconds of the last getblocktemplate round trip
    work_latency: float | None = None       # seconds from a new template to work handed to miners
    last_template_time: float | None = None  # unix time of the last successful getblocktemplate
    networkinfo: dict | None = None         # bitcoind's getnetworkinfo() result (warnings, version)
    new_work_per_minute: int | None = None  # new-work events (Stratum re-notifies) in the last 60 s


class HttpError(Exception):
    """An endpoint refuses the request: HTTP `code` with a one-line `reason`."""

    def __init__(self, code, reason) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def to_coins(satoshis) -> float:
    """Satoshis as a float of whole coins: satoshi / 1e8 (web.md §1; not * 1e-8, which can differ
    in the last bit)."""
    return satoshis / 1e8


def decent_height(height) -> int:
    return min(height, 720)


def hour_lookbehind(net, height) -> int:
    """L of /global_stats and /local_stats: min(height, 3600 // SHARE_PERIOD)."""
    return min(height, 3600 // net.SHARE_PERIOD)


class WebContext:
    """What every endpoint needs: the facade, the clock, the graph service and small caches."""

    def __init__(self, node: WebNode, service: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.service = service
        self.clock = clock
        self._memo: dict[Any, Any] = {}

    @property
    def net(self) -> Any:
        return self.node.net

    @property
    def tracker(self) -> Any:
        return self.node.tracker

    def best(self) -> tuple[int | None, int]:
        """(best hash, its height); (None, 0) before there is a best share."""
        best = self.node.best_share_hash()
        if best is None or best not in self.node.tracker.items:
            return None, 0
        return best, self.node.tracker.get_height(best)

    def need_best(self) -> tuple[int, int]:
        best, height = self.best()
        if best is None:
            raise HttpError(503, 'no best share yet (the sharechain is still downloading)')
        return best, height

    def need_work(self) -> Any:
        work = self.node.current_work()
        if work is None:
            raise HttpError(503, 'no block template from bitcoind yet')
        return work

    def memo(self, name, key, compute) -> Any:
        """compute() cached per `name` while `key` stays the same (key: best hash + tracker changes)."""
        held = self._memo.get(name)
        if held is not None and held[0] == key:
            return held[1]
        value = compute()
        self._memo[name] = (key, value)
        return value

    def share_counts(self) -> stats.StaleCounts:
        """sharechain.md §7 counts of this run's shares (stats.StaleCounts)."""
        return self.node.stale_accounting.counts(self.node.best_share_hash())

    def chain_key(self) -> tuple[int | None, int]:
        return self.node.best_share_hash(), self.node.tracker.change_count

    def expected_payouts(self) -> dict[str, int]:
        """{address: satoshis} if a block were found now (shares.md §15)."""
        best, _height = self.need_best()
        work = self.need_work()
        block_target = bits_to_target(work['bits'])
        key = (best, self.tracker.change_count, work['bits'], work['coinbasevalue'])
        return self.memo('payouts', key, lambda: pplns.current_payouts(
            self.tracker, best, block_target, work['coinbasevalue'], self.net))


# --- root-level endpoints (web.md §2.1) ------------------------------------------------

def pool_rate(ctx) -> float:
    best, height = ctx.need_best()
    lookbehind = decent_height(height)
    if lookbehind < 2:
        raise HttpError(503, 'not enough shares for a pool rate yet')
    nonstale = stats.pool_attempts_per_second(ctx.tracker, best, lookbehind)
    return nonstale / (1 - stats.average_stale_prop(ctx.tracker, best, lookbehind))


def difficulty(ctx) -> float:
    best, _height = ctx.need_best()
    return target_to_difficulty(ctx.tracker.items[best].max_target)


def users(ctx) -> dict[str, float]:
    best, _height = ctx.need_best()
    return ctx.memo('users', ctx.chain_key(), lambda: pplns.users_weights(ctx.tracker, best))


def user_stales(ctx) -> dict[str, float]:
    best, height = ctx.need_best()
    return ctx.memo('user_stales', ctx.chain_key(), lambda: stats.user_stale_props(ctx.tracker, best, height))


def fee(ctx) -> float:
    return ctx.node.fee


def current_payouts(ctx) -> dict[str, float]:
    return {address: to_coins(amount) for address, amount in ctx.expected_payouts().items()}


def peer_addresses(ctx) -> str:
    default_port = ctx.net.P2P_PORT
    return ' '.join(peer.host if peer.port == default_port else '%s:%d' % (peer.host, peer.port)
                    for peer in ctx.node.peers())


def _peer_key(peer) -> str:
    return '%s:%d' % (peer.host, peer.port)


def peer_txpool_sizes(ctx) -> dict[str, int]:
    return {_peer_key(peer): peer.remembered_tx_bytes for peer in ctx.node.peers()}


def pings(ctx) -> dict[str, float | None]:
    return {_peer_key(peer): peer.ping for peer in ctx.node.peers()}


def peer_versions(ctx) -> dict[str, str]:
    return {_peer_key(peer): peer.sub_version for peer in ctx.node.peers()}


def payout_addr(ctx) -> str | None:
    return ctx.node.payout_address


def payout_addrs(ctx) -> list[str]:
    return list(ctx.node.payout_addresses)


def recent_blocks(ctx) -> list[dict[str, Any]]:
    """Shares of the last CHAIN_LENGTH of the best chain that are blocks, newest first ([jt])."""
    best, height = ctx.best()
    if best is None:
        return []

    def compute():
        found = []
        for share in ctx.tracker.get_chain(best, min(height, ctx.net.CHAIN_LENGTH)):
            if share.pow_hash <= bits_to_target(share.header['bits']):
                found.append({'ts': share.timestamp, 'hash': '%064x' % share.hash,
                              'number': read_bip34_height(share.share_data['coinbase']),
                              'share': '%064x' % share.hash})
        return found
    found = ctx.memo('recent_blocks', ctx.chain_key(), compute)
    state_of = getattr(ctx.node, 'block_state', None)
    if state_of is None:
        return found
    return [dict(block, state=state_of(int(block['hash'], 16))) for block in found]


def uptime(ctx) -> float:
    return ctx.clock() - ctx.node.start_time


def stale_rates(ctx) -> dict[str, float]:
    best, height = ctx.need_best()
    lookbehind = decent_height(height)
    if lookbehind < 2:
        raise HttpError(503, 'not enough shares for stale rates yet')
    return stats.stale_counts(ctx.tracker, best, lookbehind, rates=True)


def sync_progress(ctx) -> dict[str, Any]:
    """Shares downloaded and verified of those needed (beyond the original).

    Needed are CHAIN_LENGTH shares, or all of a younger pool's chain: a chain whose tail is
    the pool's first share (no parent) is complete, so a new pool (the demo's, a fresh
    regtest one) is in sync below CHAIN_LENGTH shares."""
    tracker, needed = ctx.tracker, ctx.net.CHAIN_LENGTH
    heights = {head: tracker.get_height(head) for head in tracker.heads}
    tallest = max(heights, key=lambda head: heights[head], default=None)
    downloaded = heights[tallest] if tallest is not None else 0
    if tallest is not None and tracker.heads[tallest] is None:
        needed = min(needed, downloaded)
    verified = max((tracker.verified.get_height(head) for head in tracker.verified.heads), default=0)
    downloaded, verified = min(downloaded, needed), min(verified, needed)
    return {'downloaded': downloaded, 'verified': verified, 'needed': needed,
            'synced': verified >= needed, 'shares_in_memory': len(tracker.items),
            'verified_in_memory': len(tracker.verified.items)}


def attempts_to_share_and_block(ctx, best) -> tuple[int, int]:
    """(attempts for a share at the pool minimum, attempts for a block at the current target)."""
    work = ctx.need_work()
    return (target_to_average_attempts(ctx.tracker.items[best].max_target),
            target_to_average_attempts(bits_to_target(work['bits'])))


ROOT_ENDPOINTS = {
    'rate': pool_rate,
    'difficulty': difficulty,
    'users': users,
    'user_stales': user_stales,
    'fee': fee,
    'current_payouts': current_payouts,
    'peer_addresses': peer_addresses,
    'peer_txpool_sizes': peer_txpool_sizes,
    'pings': pings,
    'peer_versions': peer_versions,
    'payout_addr': payout_addr,
    'payout_addrs': payout_addrs,
    'recent_blocks': recent_blocks,
    'uptime': uptime,
    'stale_rates': stale_rates,
}
