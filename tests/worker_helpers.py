"""Fakes shared by the worker-interface tests: a template source, a node, a ready WorkBridge.

The bridge runs on the real network definitions (bsv_regtest: 256 hashes per share,
every other hash a block) with a real Tracker and the real share generator; only
bitcoind and the P2P node are replaced by small objects.
"""
import struct
import time
import types

from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.template import Template
from p2pool.config import load_network
from p2pool.testing.testchain import make_addresses
from p2pool.sharechain.tracker import Tracker
from p2pool.events import Event
from p2pool.work.bridge import WorkBridge
from p2pool.work.username import PayeeResolver

REGTEST_BITS = 0x207fffff


def make_template(previous_block=0x1234, height=200, transactions=(), rules=(), now=None, bits=REGTEST_BITS,
                  fees=None, version=0x20000000, subsidy=5000000000):
    now = time.time() if now is None else now
    transactions = list(transactions)
    keys = [bitcoin_data.tx_key(tx) for tx in transactions]
    return Template(
        version=version, previous_block=previous_block, height=height, bits=bits, time=int(now),
        subsidy=subsidy, coinbaseflags=b'', transactions=transactions, transaction_keys=keys,
        transaction_fees=list(fees) if fees is not None else [1000] * len(transactions),
        rules=list(rules), last_update=now)


class FakeTemplateSource:
    def __init__(self, template):
        self.current = template
        self.changed = Event()

    def set(self, template):
        self.current = template
        self.changed.happened(template)


class FakeNode:
    def __init__(self):
        self.peers = 1
        self.best_share_hash = None
        self.punish_aggressively = False
        self._bumps = []

    def peer_count(self):
        return self.peers

    def watch_new_work(self, bump):
        self._bumps.append(bump)

    def new_work(self, reason='best share changed'):
        """What the running node does when its best share changes."""
        for bump in self._bumps:
            bump(reason)


def make_bridge(net_name='bsv_regtest', net=None, template=None, **options):
    """A WorkBridge on fakes; returns a namespace with bridge, net, source, node, tracker, shares, blocks."""
    net = net or load_network(net_name)
    tracker = Tracker()
    node = FakeNode()
    source = FakeTemplateSource(template or make_template())
    node_address = make_addresses(net, 1, seed=b'node')[0]
    found = types.SimpleNamespace(shares=[], blocks=[])

    def on_share(share, dead):
        found.shares.append((share, dead))
        tracker.add(share)

    def on_block(block, segwit):
        found.blocks.append((block, segwit))

    payees = PayeeResolver(net.PARENT, node_address, fee_percent=options.pop('fee_percent', 0.0))
    bridge = WorkBridge(net, source, tracker, node, payees, on_share, on_block, **options)
    return types.SimpleNamespace(bridge=bridge, net=net, source=source, node=node, tracker=tracker,
                                 node_address=node_address, shares=found.shares, blocks=found.blocks)


def header_for(record, nonce8, timestamp=None, nonce=0, version=None):
    """The header of `record` with coinbase nonce bytes `nonce8` (coinb1 || nonce8 || coinb2)."""
    coinbase = record.coinb1 + nonce8 + record.coinb2
    merkle_root = bitcoin_data.check_merkle_link(bitcoin_data.hash256(coinbase), record.merkle_link)
    return {'version': record.version if version is None else version, 'previous_block': record.previous_block,
            'merkle_root': merkle_root, 'timestamp': record.timestamp if timestamp is None else timestamp,
            'bits': record.bits, 'nonce': nonce}


def solve(header, pow_hash, target=None, above=None, start=0):
    """A copy of `header` with the first nonce whose PoW is <= target (and > above, if given)."""
    packed = bitcoin_data.header_type.pack(header)[:76]
    for nonce in range(start, 2**32):
        value = pow_hash(packed + struct.pack('<I', nonce))
        if (target is None or value <= target) and (above is None or value > above):
            return dict(header, nonce=nonce)
    raise AssertionError('no nonce found')


def start_worker_server(env, share_rate=3.0, **stratum_options):
    """Stratum + getwork on one loopback port (call in the reactor thread); returns a namespace."""
    from twisted.internet import reactor
    from twisted.web import resource

    from p2pool.work.getwork import GetworkServer, attach_getwork
    from p2pool.work.stratum import StratumFactory
    from p2pool.work.switch import listen_worker_port

    switch_options = stratum_options.pop('switch_options', {})
    root = resource.Resource()
    getwork = GetworkServer(env.bridge)
    attach_getwork(root, getwork)
    stratum = StratumFactory(env.bridge, env.net, share_rate=share_rate, **stratum_options)
    port = listen_worker_port(root, stratum, 0, interface='127.0.0.1', reactor=reactor, **switch_options)
    return types.SimpleNamespace(port=port, number=port.getHost().port, stratum=stratum, getwork=getwork,
                                 root=root)


def stop_worker_server(server):
    """Stop listening and drop every Stratum connection (call in the reactor thread)."""
    for connection in list(server.stratum.connections):
        connection.transport.abortConnection()
    return server.port.stopListening()
