"""One simulated node: the real ShareChain and P2PNode, a miner, and a view of the parent chain.

The node's sharechain (tracker, chooser, verification, pruning every 5 s, stale
accounting) is p2pool/sharechain/chain.py; its peer network (handshake, relay,
sharereq serving, the download loop, pings, address gossip, bans, outgoing and
incoming connection limits) is p2pool/p2p/peerset.py with the real
PeerConnection, over links.SimNetwork. SimShareChain only routes parsing and
full validation through the cross-node ShareCache (caches.py).

The miner stands in for hashing hardware: it finds shares as a Poisson process
at hash_rate x (share target + 1) / 2**256 per second, for the target of the
work it mines on (the real retarget decides it), and builds each share with the
real generator (sharechain/generate.py) and a real nonce search at an easy
target. Work follows the node's best share and parent tip after `work_delay`
seconds (the stratum round trip and the miner's own pipeline); a share found on
work older than the node's newest is dead on arrival, as the work bridge counts it.

Two P2PNode loops do not run: /pings (three sharereq round trips per peer a
minute, read only by the dashboard) and getaddrs. The latter asks a peer for 8
addresses every ~20 s while the store holds fewer than 1,000, and every record
of the answer is forwarded on with probability 0.8 (p2p.md §4.4): on a network
of a few hundred nodes that is most of all messages, and none of it moves
shares. A node starts knowing BOOTSTRAP_PEERS random other nodes and learns
more from the real addrme / addrs advertising, which does run.
"""
from __future__ import annotations

import random
import struct
from typing import Any

from p2pool.bitcoin.data import bits_to_target, target_to_bits
from p2pool.p2p.peerset import NodeConfig, P2PNode
from p2pool.p2p.peersettings import PeerSettings
from p2pool.sharechain import generate, voting
from p2pool.sharechain.chain import ShareChain
from p2pool.sharechain.share import Share, voting_version
from p2pool.sim.caches import MemoryShareStore, ShareCache
from p2pool.sim.clock import DelayedCall
from p2pool.sim.links import NodeReactor, OrderedSet
from p2pool.testing.testchain import solve_plan


PRUNE_INTERVAL = 5.0   # as p2pool/app/main.py
#: P2PNode loops the simulator does not run (module docstring)
QUIET_LOOPS = ('pings', 'getaddrs')


class SimShareChain(ShareChain):
    """ShareChain whose parsing and full validation go through the run's ShareCache."""

    def __init__(self, net: Any, store: Any, clock: Any, cache: ShareCache, **kw: Any) -> None:
        super().__init__(net, store, clock=clock, **kw)
        self.cache = cache
        self.check_share = cache.check
        self._virtual_clock = clock   # read as .now on the path every received share takes

    def parse_share(self, wrapper: Any, peer_addr: Any = None) -> Share:
        if isinstance(wrapper, dict):
            return self.cache.parse(self.net, wrapper['type'], bytes(wrapper['contents']), self.clock(),
                                    peer_addr, self.tracker.items)
        return super().parse_share(wrapper, peer_addr)

    def parse_shares(self, wrappers: Any, peer_addr: Any = None) -> list[Share]:
        # through the cache, which hashes a share once for all the nodes of the run
        return self.cache.parse_records(self.net, wrappers, self._virtual_clock.now, peer_addr, self.tracker.items,
                                        self.parse_share)


class SimNode:
    """A node of the simulation; `start()` / `stop()` for churn (restarts load the store)."""

    def __init__(self, world: Any, index: int, hash_rate: float, address: str) -> None:
        self.world, self.index = world, index
        self.host = world.host_of(index)
        self.hash_rate = hash_rate            # attempts per simulated second
        self.address = address
        self.store = MemoryShareStore()
        self.rng = random.Random(world.scenario.seed * 1_000_003 + index)
        self.online = False
        self.chain: SimShareChain | None = None
        self.p2p: P2PNode | None = None
        self.tip_hash, self.tip_height = world.parent.tip_hash, world.parent.tip_height
        self.work_generation = 0
        self.work: tuple[int | None, int, int] | None = None   # (previous share, parent tip, generation)
        self._find_call: DelayedCall | None = None
        self._rate = 0.0
        self._prune_call: DelayedCall | None = None
        self.starts = 0
        self.adversary: Any = None

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        world, scenario = self.world, self.world.scenario
        self.tip_hash, self.tip_height = world.parent.tip_hash, world.parent.tip_height
        chain = self.chain = SimShareChain(world.net, self.store, world.clock, world.cache,
                                           rel_height=self.rel_height)
        chain.load()
        config = NodeConfig(port=world.net.P2P_PORT, max_incoming=scenario.max_conns,
                            outgoing_target=world.outgoing_target, use_bootstrap=False,
                            fixed_peers=world.fixed_peers(self.index), advertise=not world.ring)
        settings = PeerSettings(prefix=world.net.PREFIX, pow_func=world.net.PARENT.pow_hash,
                                checksum=world.wire.checksum, decode_payload=world.wire.decode_payload,
                                addrs_frames=world.wire.addrs_frames)
        p2p = self.p2p = P2PNode(chain, None, config, settings=settings,
                                 reactor=NodeReactor(world.network, self.host),
                                 rng=random.Random(self.rng.getrandbits(64)))
        p2p.connections = OrderedSet()
        # the feed of the dashboard's traffic graph, which a simulation has not: no Event per message
        p2p.traffic = None
        # PeerConnection draws ping times and request ids from its own rng: seeded for the run
        p2p.peer_rng = lambda: random.Random(self.rng.getrandbits(64))
        p2p.parent_tip = lambda: self.tip_hash
        p2p.sync.relay_frames = world.wire.relay_frames   # each share encoded once per run
        now = world.clock.now
        for addr in world.bootstrap_addresses(self.index, self.rng):
            p2p.addresses.add_new(addr, now)
        world.network.hosts_up.add(self.host)
        p2p.start()
        for name in QUIET_LOOPS:
            timer = p2p._timers.pop(name, None)
            if timer is not None and timer.active():
                timer.cancel()
        self.online = True
        self.starts += 1
        chain.best_share_hash.changed.watch(self._best_changed)
        chain.block_found_by_peer.watch(self._peer_found_block)
        chain.shares_added.watch(self._shares_added)
        self._prune_call = world.clock.callLater(PRUNE_INTERVAL, self._prune)
        if self.adversary is not None:
            self.adversary.attach(self)
        self.new_work()

    def stop(self) -> None:
        """Leave the network (a clean shutdown: peers see the connections close)."""
        if not self.online:
            return
        self.online = False
        assert self.p2p is not None and self.chain is not None
        self.p2p.stop()
        self.world.network.hosts_up.discard(self.host)
        for call in (self._find_call, self._prune_call):
            if call is not None and call.active():
                call.cancel()
        self.chain.close()
        self.work = None

    def _prune(self) -> None:
        if self.online and self.chain is not None:
            self.chain.prune()
            self._prune_call = self.world.clock.callLater(PRUNE_INTERVAL, self._prune)

    # --- parent chain ----------------------------------------------------------------------

    def rel_height(self, block_hash: int) -> int:
        """As bitcoin/blocks.py: height of the block minus the best height this node knows."""
        height = self.world.parent.heights.get(block_hash, 0)
        return height - max(self.tip_height, height)

    def learn_block(self, block_hash: int, height: int) -> None:
        """This node's bitcoind has a new block (from the parent network or from us)."""
        if not self.online or height <= self.tip_height:
            return
        self.tip_hash, self.tip_height = block_hash, height
        self.new_work()

    def _peer_found_block(self, share: Share) -> None:
        # the node hands a peer's block solution to its bitcoind, which then has it
        self.world.pool_block_seen(self, share)

    # --- work and mining -------------------------------------------------------------------

    def _best_changed(self, best_hash: int | None) -> None:
        self.new_work()

    def new_work(self) -> None:
        """New work (best share or parent tip changed); the miner has it after work_delay."""
        if not self.online or self.chain is None:
            return
        self.work_generation += 1
        work = (self.mining_parent(), self.tip_hash, self.work_generation)
        delay = self.world.scenario.work_delay_ms / 1000.0
        if delay > 0:
            self.world.clock.callLater(delay, self._switch_work, work)
        else:
            self._switch_work(work)

    def mining_parent(self) -> int | None:
        if self.adversary is not None:
            return self.adversary.mining_parent()
        assert self.chain is not None
        return self.chain.best_share_hash.value

    def _switch_work(self, work: tuple[int | None, int, int]) -> None:
        if not self.online or (self.work is not None and self.work[2] > work[2]):
            return
        self.work = work
        target = self.share_target(work[0])
        rate = self.hash_rate * (target + 1) / 2**256
        if self._find_call is not None and self._find_call.active():
            if rate == self._rate:
                return  # same target: the pending find stays valid (memoryless)
            self._find_call.cancel()
        self._rate = rate
        self._find_call = self.world.clock.callLater(self.rng.expovariate(rate), self._found)

    def share_target(self, previous_hash: int | None) -> int:
        """The target of a share on `previous_hash` (the retarget, as the generator applies it)."""
        assert self.chain is not None
        tracker = self.chain.tracker
        height = tracker.get_height(previous_hash) if previous_hash is not None else 0
        # with the whole retarget window present the target is a fact of the hash chain below
        # previous_hash, the same for every node: computed once for the run (world.share_targets)
        complete = previous_hash is not None and height >= self.world.net.TARGET_LOOKBEHIND
        if complete:
            known = self.world.share_targets.get(previous_hash)
            if known is not None:
                return known
        try:
            pool_target = generate.pool_target(tracker, previous_hash, height, self.world.net)
        except (KeyError, ValueError):
            pool_target = self.world.net.MAX_TARGET
            complete = False
        target = bits_to_target(target_to_bits(pool_target))
        if complete:
            self.world.share_targets[previous_hash] = target
        return target

    def _found(self) -> None:
        if not self.online or self.work is None:
            return
        self._find_call = self.world.clock.callLater(self.rng.expovariate(self._rate), self._found)
        previous_hash, tip, generation = self.work
        share = self.make_share(previous_hash, tip)
        if share is None:
            return
        doa = generation != self.work_generation
        self.world.share_found(self, share, doa)
        if self.adversary is not None:
            self.adversary.own_share(share, doa)
        else:
            self.publish_local(share, doa)

    def publish_local(self, share: Any, doa: bool) -> None:
        assert self.chain is not None
        # as the work bridge does: the stale accounting knows the node's own shares (stale_info)
        self.chain.stale.record_local_share(share.hash, doa)
        self.chain.add_local_share(share, doa)

    def make_share(self, previous_hash: int | None, tip: int) -> Share | None:
        """A real share on `previous_hash`: generator, gentx, hash_link and a solved header."""
        assert self.chain is not None
        chain, world = self.chain, self.world
        tracker = chain.tracker
        if previous_hash is not None and previous_hash not in tracker.items:
            return None
        now = world.clock.now
        version = voting.choose_share_version(tracker, previous_hash, world.net)
        nonce = self.rng.getrandbits(32)
        share_data = {
            'previous_share_hash': previous_hash,
            'coinbase': b'\x03' + struct.pack('<I', self.index)[:3] + b'/sim/',
            'nonce': nonce,
            'address': self.address,
            'subsidy': world.subsidy,
            'donation': 0,
            'stale_info': chain.stale.stale_info(chain.best_share_hash.value),
            'desired_version': voting_version(version),
        }
        timestamp = int(now)
        if previous_hash is not None:
            timestamp = max(timestamp, tracker.items[previous_hash].timestamp + 1)
        try:
            plan = generate.plan_share(tracker, world.net, generate.ShareTerms(
                share_data, world.block_target, timestamp, 2**256 - 1, known_txs={}, version=version))
        except generate.GenerateError:
            return None
        share = solve_plan(plan, world.block_bits, timestamp, last_txout_nonce=nonce, previous_block=tip)
        share.time_seen = now
        world.cache.remember(share)
        return share

    # --- what the world records ----------------------------------------------------------------

    def _shares_added(self, shares: list[Any]) -> None:
        self.world.shares_arrived(self, shares)
