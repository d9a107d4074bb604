"""A node facade with fixed contents: for tests, for trying the dashboard, and as a reference.

`FixedNode` implements every member of the facade documented in p2pool.web.api
from plain values. `demo_node()` mines a small deterministic test chain (with
p2pool.testing.testchain) containing own shares, stale announcements, a
donation and a few blocks, and wraps it in a FixedNode.

    python3 -m p2pool.testing.web_testnode [PORT]    # serve the dashboard over a demo chain
"""
import time
from typing import Any

from p2pool.bitcoin.data import target_to_bits
from p2pool.testing import testchain
from p2pool.sharechain.share import voting_version
from p2pool.sharechain.stats import StaleAccounting
from p2pool.sharechain.tracker import Tracker
from p2pool.web.api import LocalStats, PeerInfo

__all__ = ['FixedNode', 'DemoChain', 'mine_demo_chain', 'demo_node', 'listen', 'fetch']


class FixedNode:
    """The facade of p2pool.web.api over fixed values (change the attributes to change it)."""

    #: the DemoChain behind a demo_node(), else None
    demo_chain: Any = None

    def __init__(self, net, tracker, best=None, start_time=0.0, work=None, peer_list=(), local=None, fee=0.0,
                 donation=0.0, payout_address=None, payout_addresses=None, history_store=None):
        self.net = net
        self.tracker = tracker
        self.best = best
        self.start_time = start_time
        self.work = work
        self.peer_list = list(peer_list)
        self.local = local if local is not None else LocalStats()
        self.fee = fee
        self.donation = donation
        self.payout_address = payout_address
        self.payout_addresses = list(payout_addresses) if payout_addresses is not None else (
            [payout_address] if payout_address else [])
        self.history_store = history_store
        self.stale_accounting = StaleAccounting(tracker, self.best_share_hash)

    def best_share_hash(self) -> int | None:
        return self.best

    def current_work(self) -> Any:
        return self.work

    def peers(self) -> list[Any]:
        return list(self.peer_list)

    def local_stats(self) -> Any:
        return self.local


class DemoChain:
    """The shares of mine_demo_chain and what is known about them."""

    def __init__(self, net, tracker, shares, mine, mine_doa, addresses, block_target):
        self.net, self.tracker, self.shares = net, tracker, shares
        self.mine, self.mine_doa = mine, mine_doa
        self.addresses, self.block_target = addresses, block_target
        self.side_shares = []


def mine_demo_chain(net, count=150, addresses=None, start_time=testchain.DEFAULT_START_TIME, version=35,
                    my_every=7, stale_every=11, donation_every=13, block_every=40) -> 'DemoChain':
    """Mine `count` shares on the easy copy of `net` (see testchain.easy_network).

    Share i pays addresses[i % len]; shares with i % my_every == 3 are "ours" (every
    other one of them dead on arrival); i % stale_every == 5 announces 'orphan' (and
    'doa' when also i % 2); i % donation_every == 0 donates 10 %; i % block_every == 39
    is mined against a block target so easy that the share is a block. Two more own
    shares (`side_shares`, the second dead on arrival) branch off the 4th and 5th newest
    shares, so they are orphans. Every share is marked verified. Deterministic for given
    arguments.
    """
    net = testchain.easy_network(net) if net.MAX_TARGET < testchain.EASY_MAX_TARGET else net
    addresses = addresses if addresses is not None else testchain.make_addresses(net, 6)
    tracker: Tracker[Any] = Tracker()
    normal_bits = target_to_bits(testchain.default_block_target(net))
    block_bits = target_to_bits(net.MAX_TARGET)     # every share meets it: a block
    shares, mine, mine_doa = [], set(), set()
    previous = None
    for index in range(count):
        stale_info = None
        if index % stale_every == 5:
            stale_info = 'doa' if index % 2 else 'orphan'
        share = testchain.mine_share(
            tracker, net, previous, addresses[index % len(addresses)], start_time + index * net.SHARE_PERIOD,
            version, block_bits if index % block_every == block_every - 1 else normal_bits, nonce=index,
            donation=6554 if index % donation_every == 0 else 0, stale_info=stale_info,
            desired_version=voting_version(version))
        tracker.add(share)
        tracker.verified.add(share)
        if index % my_every == 3:
            mine.add(share.hash)
            if (index // my_every) % 2:
                mine_doa.add(share.hash)
        shares.append(share)
        previous = share.hash
    side = []
    if count > 6:
        # two of "our" shares that lost a race: children of an older share, beside the best chain
        for offset, dead in ((4, False), (5, True)):
            parent = shares[-offset]
            share = testchain.mine_share(
                tracker, net, parent.hash, addresses[0], parent.timestamp + 1, version, normal_bits,
                nonce=1000 + offset, desired_version=voting_version(version))
            tracker.add(share)
            tracker.verified.add(share)
            mine.add(share.hash)
            if dead:
                mine_doa.add(share.hash)
            side.append(share)
    chain = DemoChain(net, tracker, shares, mine, mine_doa, addresses, testchain.default_block_target(net))
    chain.side_shares = side
    return chain


def demo_node(net=None, count=150, now=None, history_store=None) -> FixedNode:
    """A FixedNode over mine_demo_chain: best = the newest share, peers, local rates, a template.

    The node started an hour before `now`; its last template is 2 s old.
    """
    if net is None:
        from p2pool.config import load_network
        net = load_network('bitcoin')
    # the newest share is 10 s old at `now` (default: the test chain's usual start time)
    start_time = testchain.DEFAULT_START_TIME if now is None else int(now) - 10 - (count - 1) * net.SHARE_PERIOD
    chain = mine_demo_chain(net, count, start_time=start_time)
    newest = chain.shares[-1]
    now = newest.timestamp + 10 if now is None else now
    local = LocalStats(
        rate_window=600.0, hash_rate=3.0e9, dead_hash_rate=1.5e8, pseudoshares=200, dead_pseudoshares=10,
        miner_hash_rates={chain.addresses[0]: 2.0e9, chain.addresses[1]: 1.0e9},
        miner_dead_hash_rates={chain.addresses[0]: 1.5e8},
        miner_last_difficulties={chain.addresses[0]: 1.5, chain.addresses[1]: 0.75},
        bitcoind_latency=0.012, work_latency=0.003, last_template_time=now - 2,
        networkinfo={'version': 210000, 'warnings': ''})
    node = FixedNode(
        chain.net, chain.tracker, best=newest.hash, start_time=now - 3600,
        work={'bits': target_to_bits(chain.block_target), 'coinbasevalue': 625000000 + 12345, 'height': 800000},
        peer_list=[PeerInfo('10.0.0.1', chain.net.P2P_PORT, False, '/p2pool:0.1.0/', 12.5, 1000),
                   PeerInfo('10.0.0.2', 19333, True, '/p2pool:17.0/', None, 0),
                   PeerInfo('10.0.0.3', chain.net.P2P_PORT, False, '/p2pool:0.1.0/', 40.0, 250)],
        local=local, fee=1.5, donation=0.5, payout_address=chain.addresses[0],
        history_store=history_store)
    for share_hash in chain.mine:
        node.stale_accounting.record_local_share(share_hash, share_hash in chain.mine_doa)
    node.demo_chain = chain
    return node


def listen(node, service=None, reactor=None, port=0, static_dir=None) -> Any:
    """Serve build_web_root(node) on 127.0.0.1:`port` (0: any free port) with a plain twisted.web
    Site; call in the reactor thread. Returns the listening port (`.getHost().port`)."""
    from twisted.web import server as web_server

    from p2pool.app.resources import web_static_dir
    from p2pool.web import build_web_root
    if reactor is None:
        from twisted.internet import reactor
    root = build_web_root(node, static_dir if static_dir is not None else web_static_dir(), service=service)
    return reactor.listenTCP(port, web_server.Site(root), interface='127.0.0.1')


def fetch(url, timeout=10) -> tuple[int, dict[str, str], bytes]:
    """GET `url` -> (status, {header: value} with lower-case names, body bytes); no exception on 4xx/5xx."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _serve(port):
    from twisted.internet import reactor

    from p2pool.web import WebService
    node = demo_node(now=time.time())
    service = WebService(node)
    for step in range(600):
        service.on_pseudoshare(2.0e7 * (1 + step % 5), step % 17 == 0, node.demo_chain.addresses[step % 3],
                               now=time.time() - 3000 + 5 * step)
    service.sample()
    service.start(reactor)
    listen(node, service, reactor, port)
    print('demo dashboard on http://127.0.0.1:%d/static/' % port)
    reactor.run()


if __name__ == '__main__':
    import sys
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 9332)
