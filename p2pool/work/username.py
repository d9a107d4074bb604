"""Miner usernames (worker.md §5): payout address, worker name, difficulty suffixes, payee choice.

A username is `ADDRESS[+PSEUDO_DIFF][/SHARE_DIFF]...`, split on `+` and `/`:

* `+D` fixes the pseudoshare difficulty (how often the miner reports work),
* `/D` fixes the share difficulty (how hard the miner's sharechain shares are);

modifiers come in any order, the last of each kind wins, and values that do not
parse as a non-negative number are ignored. The part before the first
modifier may carry a worker name ([jt]): `ADDRESS_WORKER` or, without `_`,
`ADDRESS.WORKER`. Statistics use `ADDRESS.WORKER`.

PayeeResolver turns the address into the payee the work pays: the address itself
when the parent network accepts it ([jt]: any address family that can be paid,
but only Base58 P2PKH while the best share is older than VERSION 34, whose
share_data stores a pubkey hash), otherwise the node's payout address, with one
warning per worker. With `--fee` the node's address replaces the payee on that
percentage of requests.
"""
import logging
import math
import random
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin.data import difficulty_to_target
from p2pool.util.untrusted import shown

log = logging.getLogger(__name__)

FIRST_ADDRESS_VERSION = 34   # share versions from here on store the payee as address text
MAX_USERNAME_LENGTH = 512    # longer names are cut: no address or modifier list needs more
MAX_USER_SHOWN = 160         # characters of `address.worker` in statistics, logs and pages
_SPLIT = re.compile(r'([+/])')
_VALIDITY_CACHE_SIZE = 10000


@dataclass(frozen=True)
class Username:
    """A parsed username; targets are None when the username does not fix them."""
    raw: str
    address: str
    worker: str
    desired_pseudoshare_target: int | None = None
    desired_share_target: int | None = None

    @property
    def user(self) -> str:
        """The statistics key: `address.worker`, or just the address without a worker name.

        It is what logs, the console and the web pages show of a miner, so it is made safe
        once, here: control characters escaped, at most MAX_USER_SHOWN characters."""
        return shown('%s.%s' % (self.address, self.worker) if self.worker else self.address, MAX_USER_SHOWN)


def _difficulty(text):
    """The float of a modifier, or None when it is unusable (not a number, NaN or negative:
    the original's difficulty_to_target refuses those). 0 means the easiest target and
    infinity target 0, as difficulty_to_target gives them."""
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value) or value < 0:
        return None
    return value


def parse_username(username) -> 'Username':
    """Username of the text a miner logged in with (None and non-text count as empty)."""
    if not isinstance(username, str):
        username = ''
    username = username.strip()[:MAX_USERNAME_LENGTH]
    parts = _SPLIT.split(username)
    head = parts[0]
    pseudoshare_target = share_target = None
    for symbol, value in zip(parts[1::2], parts[2::2]):
        difficulty = _difficulty(value)
        if difficulty is None:
            continue
        if symbol == '+':
            pseudoshare_target = difficulty_to_target(difficulty)
        else:
            share_target = difficulty_to_target(difficulty)
    separator = '_' if '_' in head else '.'
    pieces = head.split(separator)
    address = pieces[0]
    worker = pieces[1] if len(pieces) > 1 else ''
    return Username(raw=username, address=address, worker=worker,
                    desired_pseudoshare_target=pseudoshare_target, desired_share_target=share_target)


def payable(address, parent, share_version) -> bool:
    """Whether shares of `share_version` can pay `address` on the parent network."""
    try:
        if share_version < FIRST_ADDRESS_VERSION:
            bitcoin_address.address_to_pubkey_hash(address, parent)
        else:
            bitcoin_address.address_to_script(address, parent, padding=share_version >= 35)
    except bitcoin_address.AddressError:
        return False
    return True


class PayeeResolver:
    """Chooses the payout address of each work request.

    node_address: the node operator's payout address, or a callable returning it
    (a `--address dynamic` pool can be plugged in that way).
    fee_percent: `--fee`, the percentage of work requests paid to the node instead.
    """

    def __init__(self, parent, node_address, fee_percent=0.0, rng=None, early_address=None) -> None:
        """`early_address`: paid instead of the node's address by share versions that cannot pay it
        (a legacy wallet address while a fresh chain is at version 17 and the operator gave bech32)."""
        self.early_address = early_address
        if not 0 <= fee_percent <= 100:
            raise ValueError('the worker fee must be a percentage between 0 and 100')
        self.parent = parent
        self._node_address = node_address if callable(node_address) else (lambda: node_address)
        self.fee_percent = fee_percent
        self.rng = rng or random.Random()
        self._validity: OrderedDict[Any, Any] = OrderedDict()
        self._warned: set[Any] = set()

    def node_address(self, share_version=None) -> str:
        address = self._node_address()
        if (share_version is not None and self.early_address is not None
                and not self.is_payable(address, share_version)):
            return self.early_address
        return address

    def is_payable(self, address, share_version) -> bool:
        key = (address, share_version >= FIRST_ADDRESS_VERSION, share_version >= 35)
        known = self._validity.get(key)
        if known is None:
            known = self._validity[key] = payable(address, self.parent, share_version)
            if len(self._validity) > _VALIDITY_CACHE_SIZE:
                self._validity.popitem(last=False)
        return known

    def payee(self, username, share_version) -> str:
        """The address `username`'s next work pays (node's address for invalid ones or the fee)."""
        if self.fee_percent and self.rng.random() * 100 < self.fee_percent:
            return self.node_address(share_version)
        if username.address and self.is_payable(username.address, share_version):
            return username.address
        if username.user not in self._warned:
            self._warned.add(username.user)
            if len(self._warned) > _VALIDITY_CACHE_SIZE:
                self._warned.clear()
            log.warning('worker %s: %s is not a payable address for share version %d on %s; mining to '
                        'the node\'s payout address instead', username.user, shown(username.address),
                        share_version, getattr(self.parent, 'SYMBOL', 'this network'))
        return self.node_address(share_version)
