"""Helpers for tests of the running node's ShareChain (p2pool/sharechain/chain.py)."""
from p2pool.config import load_network
from p2pool.sharechain.chain import ShareChain
from p2pool.testing import testchain
from p2pool.sharechain.share import Share

#: bsv_regtest with an easy MAX_TARGET, so test chains mine in milliseconds
NET = testchain.easy_network(load_network('bsv_regtest'))


class Clock:
    """A settable clock for ShareChain(clock=...)."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def reparsed(shares, net=NET):
    """Copies as a peer would send them (no verified marks, no tracker state)."""
    return [Share.from_wire(net, share.to_wire()) for share in shares]


def fresh(shares, store=None, net=NET):
    """A ShareChain whose clock stands just after the newest of `shares`."""
    return ShareChain(net, store, clock=Clock(shares[-1].timestamp + 10))
