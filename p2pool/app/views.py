"""What the miner and web rooms see of the running node.

work/ and web/ never import p2p/ or each other; p2pool.app.main builds these two
small views over the ShareChain, the P2P node, the bitcoind bridge and the work
bridge, and passes them in (see the contracts at the top of
p2pool/work/bridge.py and p2pool/web/api.py).
"""
from collections.abc import Generator
import logging
import time
from collections import deque
from typing import Any

from twisted.internet import defer

from p2pool.bitcoin.data import target_to_average_attempts
from p2pool.bitcoin.rpc import RpcFailure
from p2pool.events import Event
from p2pool.web.api import LocalStats, PeerInfo

log = logging.getLogger('p2pool')


class WorkNodeView:
    """The `node` of p2pool.work.bridge.WorkBridge."""

    def __init__(self, chain, p2p_node) -> None:
        self.chain, self.p2p_node = chain, p2p_node

    def watch_new_work(self, bump) -> None:
        """bump(reason) when the best share changes or "punish aggressively" turns on
        (worker.md §1.4); template changes are watched by the bridge itself."""
        self.chain.best_share_hash.changed.watch(lambda best: bump('best share changed'))
        self.chain.punish_aggressively.changed.watch(lambda on: on and bump('punish aggressively'))

    @property
    def best_share_hash(self) -> int | None:
        return self.chain.best_share_hash.value

    @property
    def punish_aggressively(self) -> bool:
        return self.chain.punish_aggressively.value

    def peer_count(self) -> int:
        return len(self.p2p_node.peers) if self.p2p_node is not None else 0


class WebNodeView:
    """The node facade of p2pool.web.api."""

    def __init__(self, net, chain, p2p_node, bitcoind, work_bridge, payout_address, fee, donation, store,
                 start_time=None, dynamic_payouts=None, payouts=None) -> None:
        self.net, self.chain, self.tracker = net, chain, chain.tracker
        self.p2p_node, self.bitcoind, self.work_bridge = p2p_node, bitcoind, work_bridge
        self.payout_address = payout_address
        self.dynamic_payouts = dynamic_payouts
        self.payouts = payouts          # the payout history (p2pool.app.payout_history), or None
        self.fee, self.donation = fee, donation
        self.stale_accounting = chain.stale
        self.history_store = store
        self.start_time = time.time() if start_time is None else start_time
        self.networkinfo = None
        self.work_latency = None
        self._last_work_block = None
        # fired with the round-trip seconds of the getblocktemplate call behind each template
        # applied (the getwork_latency graph, web.md §2.4)
        self.template_latency = Event('getblocktemplate latency')
        self._new_work_times: deque[float] = deque(maxlen=100000)      # for the stale-work warning's "why"
        if work_bridge is not None:
            work_bridge.new_work.watch(lambda counter: self._new_work_times.append(time.time()))
        source = getattr(bitcoind, 'source', None)
        if source is not None and getattr(source, 'changed', None) is not None:
            source.changed.watch(self._template_applied)
        if work_bridge is not None:
            work_bridge.new_work.watch(self._new_work_announced)

    # --- the payout history ---------------------------------------------------------------

    def payout_history(self) -> list[dict[str, Any]]:
        return self.payouts.rows() if self.payouts is not None else []

    def payout_totals(self) -> dict[str, float]:
        return self.payouts.totals() if self.payouts is not None else {}

    def block_state(self, block_hash) -> str | None:
        return self.payouts.block_state(block_hash) if self.payouts is not None else None

    def _template_applied(self, template) -> None:
        latency = getattr(self.bitcoind.source, 'last_latency', None)
        if latency is not None:
            self.template_latency.happened(latency)

    def _new_work_announced(self, _counter: int) -> None:
        """Work latency for /metrics: template received -> new work announced to miners (the
        first new work on each new block; the bridge's new-work number is not needed)."""
        template = self.bitcoind.source.current
        if template is not None and template.previous_block != self._last_work_block:
            self._last_work_block = template.previous_block
            self.work_latency = max(0.0, time.time() - template.last_update)

    @defer.inlineCallbacks
    def poll_networkinfo(self) -> Generator[defer.Deferred[Any], Any, None]:
        """bitcoind's own warnings for the console and /local_stats (asked every 20 minutes)."""
        try:
            self.networkinfo = yield self.bitcoind.rpc.call('getnetworkinfo')
        except RpcFailure as e:
            log.debug('getnetworkinfo failed: %s', e)

    @property
    def payout_addresses(self) -> list[str]:
        if self.dynamic_payouts is not None:
            return list(self.dynamic_payouts.addresses)
        return [self.payout_address] if self.payout_address else []

    def best_share_hash(self) -> int | None:
        return self.chain.best_share_hash.value

    def bitcoind_daemons(self) -> list[dict[str, Any]]:
        """Each bitcoind's state (p2pool.bitcoin.failover.DaemonState as a dict), the active one marked."""
        states = getattr(self.bitcoind, 'states', None)
        if states is None:
            return []
        return [{'name': s.name, 'endpoint': s.endpoint, 'status': s.status, 'active': s.active,
                 'healthy': s.healthy, 'tip_height': s.tip_height, 'rpc_errors': s.rpc_errors,
                 'template_age': s.template_age, 'last_error': s.last_error} for s in states()]

    def current_work(self) -> dict[str, Any] | None:
        template = self.bitcoind.source.current if self.bitcoind is not None else None
        if template is None:
            return None
        return {'bits': template.bits, 'coinbasevalue': template.subsidy, 'height': template.height}

    def peers(self) -> list[PeerInfo]:
        if self.p2p_node is None:
            return []
        result = []
        for peer in list(self.p2p_node.peers.values()):
            host, port = getattr(peer, 'addr', None) or (peer.host, peer.port)
            result.append(PeerInfo(host=host, port=port, incoming=bool(getattr(peer, 'incoming', False)),
                                   sub_version=getattr(peer, 'sub_version', '') or '',
                                   ping=getattr(peer, 'ping_ms', None),
                                   remembered_tx_bytes=getattr(peer, 'remembered_txs_size', 0) or 0))
        return result

    def local_stats(self) -> LocalStats:
        bridge = self.work_bridge
        stats = LocalStats()
        if bridge is not None:
            now = getattr(bridge, 'clock', time.time)()     # one instant, on the bridge's own clock
            rates, dead_rates = bridge.local_rates(now)
            stats.miner_hash_rates, stats.miner_dead_hash_rates = dict(rates), dict(dead_rates)
            stats.hash_rate = sum(rates.values())
            stats.dead_hash_rate = sum(dead_rates.values())
            datums, window = bridge.local_rate_monitor.get_datums_in_last(now)
            stats.rate_window = window
            stats.pseudoshares = len(datums)
            stats.dead_pseudoshares = sum(1 for datum in datums if datum.get('dead'))
            if window > 0:
                stats.share_rate = sum(datum['work'] / window / target_to_average_attempts(datum['share_target'])
                                       for datum in datums if datum.get('share_target'))
            stats.miner_last_difficulties = dict(bridge.last_share_difficulties)
        source = self.bitcoind.source if self.bitcoind is not None else None
        if source is not None:
            stats.last_template_time = source.current.last_update if source.current is not None else None
            stats.bitcoind_latency = getattr(source, 'last_latency', None)
        stats.work_latency = self.work_latency
        stats.networkinfo = self.networkinfo
        times, minute_ago = self._new_work_times, time.time() - 60
        while times and times[0] < minute_ago:
            times.popleft()
        stats.new_work_per_minute = len(times)
        return stats
