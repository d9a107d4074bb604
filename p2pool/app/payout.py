"""The node operator's payout address (worker.md §10.1).

`-a ADDRESS` is checked against the network; without it the address cached in
DATADIR/NET/cached_payout_address is reused if bitcoind still says it is valid
and its own, else a fresh wallet address is requested (getaccountaddress on old
daemons, getnewaddress otherwise) and cached.
"""
from collections.abc import Generator
import logging
import os
from typing import Any

from twisted.internet import defer

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin.rpc import RpcError, RpcFailure

log = logging.getLogger(__name__)

CACHE_FILE = 'cached_payout_address'
METHOD_NOT_FOUND = -32601


class PayoutAddressError(ValueError):
    """No usable payout address; the message says why in one line."""


def check_address(address, net) -> str:
    try:
        bitcoin_address.address_to_script(address, net.PARENT)
    except bitcoin_address.AddressError as e:
        raise PayoutAddressError('payout address %r is not valid for %s: %s' % (address, net.NAME, e)) from None
    return address


@defer.inlineCallbacks
def resolve_payout_address(rpc, net, datadir, given=None) -> Generator[defer.Deferred[Any], Any, str]:
    """Fires with the payout address text; fails with PayoutAddressError."""
    if given:
        return check_address(given.strip(), net)
    cache_path = os.path.join(datadir, CACHE_FILE)
    cached = None
    try:
        with open(cache_path, encoding='ascii') as f:
            cached = f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        cached = None
    if cached is not None:
        try:
            check_address(cached, net)
            info = yield rpc.call('validateaddress', cached)
            if isinstance(info, dict) and info.get('isvalid') and info.get('ismine', True):
                return cached
            log.warning('Cached payout address %s is not in bitcoind\'s wallet any more; asking for a new one',
                        cached)
        except (PayoutAddressError, RpcFailure) as e:
            log.warning('Ignoring cached payout address %s: %s', cached, e)
    try:
        try:
            address = yield rpc.call('getaccountaddress', 'p2pool')
        except RpcError as e:
            if e.code != METHOD_NOT_FOUND:
                raise
            address = yield rpc.call('getnewaddress', 'p2pool')
    except RpcFailure as e:
        raise PayoutAddressError('no payout address given (-a) and bitcoind\'s wallet could not provide one: %s'
                                 % e) from None
    if not isinstance(address, str):
        raise PayoutAddressError('bitcoind answered a wallet address request with %r' % (address,))
    check_address(address, net)
    try:
        with open(cache_path + '.tmp', 'w', encoding='ascii') as f:
            f.write(address)
        os.replace(cache_path + '.tmp', cache_path)
    except OSError as e:
        log.warning('Could not cache the payout address in %s: %s', cache_path, e)
    log.info('Payout address from bitcoind\'s wallet: %s (cached in %s)', address, cache_path)
    return address


@defer.inlineCallbacks
def resolve_v17_fallback(rpc, net, payout_address) -> Generator[defer.Deferred[Any], Any, str | None]:
    """A legacy wallet address for version-17 shares when `payout_address` is one they cannot pay
    (bech32 or P2SH: v17 stores only a pubkey hash), else None. Fires with None too when the
    wallet cannot give one (the node then has no work until the chain votes in version 35)."""
    from p2pool.work.username import payable
    if payable(payout_address, net.PARENT, 17):
        return None
    try:
        address = yield rpc.call('getnewaddress', 'p2pool', 'legacy')
    except RpcFailure as e:
        log.warning('payout address %s cannot be paid by version-17 shares and bitcoind gave no legacy '
                    'address (%s): no work until the sharechain reaches version 35', payout_address, e)
        return None
    if not isinstance(address, str) or not payable(address, net.PARENT, 17):
        return None
    log.info('Payout address %s is paid from share version 35 on; until then shares pay wallet address %s',
             payout_address, address)
    return address


class DynamicPayoutPool:
    """`--address dynamic`: payees that are not valid addresses are paid to one of a
    rotating pool of `size` wallet addresses; every `rotate_seconds` the oldest address
    is replaced by a fresh one (worker.md §5).

    The spec says "weighted random" without naming the weights; every address of the
    pool has the same chance here.
    """

    def __init__(self, rpc, net, size, rotate_seconds, rng=None) -> None:
        import random
        self.rpc, self.net = rpc, net
        self.size, self.rotate_seconds = max(2, size), rotate_seconds
        self.rng = rng or random.SystemRandom()
        self.addresses: list[Any] = []
        self._loop: Any = None

    @defer.inlineCallbacks
    def fill(self) -> Generator[defer.Deferred[Any], Any, list[str]]:
        while len(self.addresses) < self.size:
            self.addresses.append((yield self._new_address()))
        return list(self.addresses)

    @defer.inlineCallbacks
    def _new_address(self):
        try:
            address = yield self.rpc.call('getnewaddress', 'p2pool')
        except RpcFailure as e:
            raise PayoutAddressError('--address dynamic needs addresses from bitcoind\'s wallet: %s' % e) from None
        return check_address(address, self.net)

    @defer.inlineCallbacks
    def rotate(self) -> Generator[defer.Deferred[Any], Any, None]:
        try:
            fresh = yield self._new_address()
        except PayoutAddressError as e:
            log.warning('Could not rotate the dynamic payout addresses: %s', e)
            return
        self.addresses = self.addresses[1:] + [fresh]
        log.info('Dynamic payout addresses now %s', ', '.join(self.addresses))

    def start(self, reactor) -> None:
        from twisted.internet import task
        loop = self._loop = task.LoopingCall(self.rotate)
        loop.clock = reactor
        loop.start(self.rotate_seconds, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def choose(self) -> str:
        return self.rng.choice(self.addresses)
