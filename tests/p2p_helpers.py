"""Helpers shared by the P2P node tests and benchmarks: test chains, nodes on loopback, raw clients.

Chains are mined with p2pool.testing.testchain on an easy copy of the
bsv_regtest network (CHAIN_LENGTH 100), with timestamps just before the wall
clock so the real ShareChain (p2pool/sharechain/chain.py, clock=time.time) accepts them.
Every node gets its own copies of the shares (`copies`), as a peer would.

Nodes are created, started and stopped in the reactor thread of
tests/twisted_helpers.py (`start_node`, `stop_node`). `RawClient` is a plain
blocking socket bound to a chosen loopback address (127.0.0.x), for peers that
misbehave: every 127.0.0.0/8 address reaches the local host on Linux, so each
attacker can be a different host to the node's bans.
"""
import os
import socket
import time

import pytest

from p2pool.config import load_network
from p2pool.sharechain.chain import ShareChain
from p2pool.p2p import messages
from p2pool.p2p.peerset import NodeConfig, P2PNode
from p2pool.testing import testchain
from p2pool.sharechain.share import Share, ShareMisbehaviour, layout_for
from twisted_helpers import run_in_reactor

NET = testchain.easy_network(load_network('bsv_regtest'))


def mine(count, previous=None, tracker=None, net=NET, seed=b'testchain', **kwargs):
    """`count` shares on top of `previous` (a Share, or None for a new chain), near the wall clock."""
    if previous is None:
        kwargs.setdefault('start_time', int(time.time()) - (count + 50) * net.SHARE_PERIOD)
    return testchain.mine_chain(net, count, tracker=tracker, previous_hash=previous and previous.hash,
                                addresses=testchain.make_addresses(net, 10, seed=seed), **kwargs)


def copies(shares, net=NET):
    """Fresh Share objects for the same shares (no tracker state, no peer address)."""
    return [Share.from_wire(net, share.to_wire()) for share in shares]


def node_config(**overrides):
    """A NodeConfig for loopback tests: any free port on 127.0.0.1, no dialling of strangers."""
    settings = dict(port=0, listen_interface='127.0.0.1', outgoing_target=0, use_bootstrap=False,
                    advertise=True)
    settings.update(overrides)
    return NodeConfig(**settings)


def build_node(shares=(), store=None, net=NET, settings=None, chain_clock=time.time, **config):
    """A started P2PNode with its own ShareChain holding copies of `shares` (reactor thread only)."""
    chain = ShareChain(net, store, clock=chain_clock)
    if store is not None:
        chain.load()
    if shares:
        chain.add_shares(copies(shares, net))
    node = P2PNode(chain, store, node_config(**config), settings=settings)
    node.start()
    return node


def start_node(shares=(), **kwargs):
    return run_in_reactor(build_node, shares, **kwargs)


def stop_node(node):
    run_in_reactor(node.stop)


@pytest.fixture
def nodes(reactor):
    """Call it to start nodes (start_node's arguments); all still running are stopped after the test."""
    started = []

    def start(*args, **kwargs):
        node = start_node(*args, **kwargs)
        started.append(node)
        return node
    yield start
    for node in started:
        if node.running:
            stop_node(node)


def endpoint(node, host='127.0.0.1'):
    return (host, node.listening_port)


def best(node):
    return node.chain.best_share_hash.value


def tweaked_share(share, pow_ok):
    """A wrapper for `share` with a wrong absheight (so it fails verification) and a
    last_txout_nonce such that its PoW passes (pow_ok) or fails."""
    layout = layout_for(share.VERSION, share.net)
    share_info = dict(share.contents['share_info'], absheight=share.absheight + 1000)
    for nonce in range(1, 200):
        contents = dict(share.contents, share_info=share_info, last_txout_nonce=nonce)
        raw = layout.contents_type.pack(contents)
        try:
            Share(share.net, share.VERSION, raw)
            passes = True
        except ShareMisbehaviour:
            passes = False
        if passes == pow_ok:
            return {'type': share.VERSION, 'contents': raw}
    raise AssertionError('no suitable nonce')


def frame(command, net=NET, **fields):
    return messages.encode_message(net.PREFIX, command, fields)


def version_frame(nonce=None, best_share_hash=None, version=3501, net=NET):
    nonce = nonce or int.from_bytes(os.urandom(8), 'little')
    return frame('version', net=net, version=version, services=0, nonce=nonce,
                 addr_to={'services': 0, 'address': '127.0.0.1', 'port': 1},
                 addr_from={'services': 0, 'address': '127.0.0.1', 'port': 1},
                 sub_version=b'raw-test-client', mode=1, best_share_hash=best_share_hash)


class RawClient:
    """A blocking TCP client from `source` (a 127.0.0.x address) to a node on 127.0.0.1."""

    def __init__(self, port, source='127.0.0.1', timeout=10):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=timeout, source_address=(source, 0))
        self.decoder = messages.FrameDecoder(NET.PREFIX)

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass  # the node may already have hung up on us

    def handshake(self):
        """Send our version and read until the node's version arrived."""
        self.send(version_frame())
        return self.read_until('version')

    def read_until(self, command):
        while True:
            for event in self.decoder.events():
                if isinstance(event, messages.Frame) and event.command == command:
                    return messages.decode_payload(command, event.payload)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError('closed before %r arrived' % command)
            self.decoder.feed(data)

    def closed_by_peer(self):
        """True once the node closed the connection (reads and drops everything before)."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        except socket.timeout:
            return False
        return True

    def close(self):
        self.sock.close()
