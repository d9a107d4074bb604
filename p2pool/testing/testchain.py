"""Mine test sharechains quickly: real shares built by the real generator at an easy target.

For tests, benchmarks and the inspector. `easy_network(net)` copies a network
with a MAX_TARGET so easy that one or two header hashes find a share;
`mine_chain` then extends a tracker share by share with generate_transaction
and a brute-force header nonce search, paying a rotating set of addresses:

    net = easy_network(load_network('bitcoin'))
    shares = mine_chain(net, 500, addresses=make_addresses(net, 20))

`equilibrium_chain` mines a chain whose retarget has come down from MAX_TARGET to the
target at which a given hash rate makes one share per SHARE_PERIOD, for nodes that are to
start where a running pool would be (bench/simvalid_real.py).

Everything is deterministic for given arguments (no clock, no randomness).
"""
import dataclasses
import struct
import types
from typing import Any

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin.data import bits_to_target, calculate_merkle_link, target_to_bits, tx_key
from p2pool.bitcoin.hashes import hash160_bytes
from p2pool.config import ParentNetwork
from p2pool.sharechain import generate
from p2pool.sharechain.share import (
    FIRST_ADDRESS_VERSION, GENTX_BEFORE_REFHASH, prefix_to_hash_link, ref_hash_of, share_from_contents,
    voting_version)

EASY_MAX_TARGET = 2**255 - 1           # half of all hashes meet it
DEFAULT_START_TIME = 1_700_000_000
#: shares of an equilibrium chain after the descent, so that the whole TARGET_LOOKBEHIND is in equilibrium
EQUILIBRIUM_TAIL = 12
DEFAULT_SUBSIDY = 625000000
_HEADER = struct.Struct('<I32s32sIII')


class MiningError(RuntimeError):
    """The nonce search ran out of nonces (the target is far too hard for test mining)."""


def easy_network(net, max_target=EASY_MAX_TARGET, **overrides) -> Any:
    """A copy of `net` with an easy MAX_TARGET (MIN_TARGET clipped below it) and any overrides."""
    changes = dict(MAX_TARGET=max_target, MIN_TARGET=min(net.MIN_TARGET, max_target))
    changes.update(overrides)
    if dataclasses.is_dataclass(net) and not isinstance(net, type):
        return dataclasses.replace(net, **changes)
    clone = types.SimpleNamespace(**vars(net))
    for key, value in changes.items():
        setattr(clone, key, value)
    return clone


def make_addresses(net, count, kind='p2pkh', seed=b'testchain') -> list[str]:
    """`count` distinct deterministic addresses of `net`'s parent: 'p2pkh', 'p2sh' or 'bech32'."""
    parent = net.PARENT
    addresses = []
    for index in range(count):
        digest = hash160_bytes(seed + index.to_bytes(4, 'little'))
        if kind == 'p2pkh':
            addresses.append(bitcoin_address.base58check_encode(parent.ADDRESS_VERSION, digest))
        elif kind == 'p2sh':
            addresses.append(bitcoin_address.base58check_encode(parent.ADDRESS_P2SH_VERSION, digest))
        elif kind == 'bech32':
            addresses.append(bitcoin_address.bech32_encode(parent.HUMAN_READABLE_PART, 0, digest))
        else:
            raise ValueError('unknown address kind %r' % (kind,))
    return addresses


def default_block_target(net) -> int:
    """A block target 1000x harder than MAX_TARGET: windows end by share count in short chains."""
    return net.MAX_TARGET // 1000


def _new_tracker():
    from p2pool.sharechain.tracker import Tracker
    return Tracker()


def mine_share(tracker, net, previous_hash, address, timestamp, version, block_bits, nonce=0,
               transactions=(), subsidy=DEFAULT_SUBSIDY, donation=0, stale_info=None,
               desired_target=None, coinbase=None, desired_version=None) -> Any:
    """Generate, solve and return one share on top of `previous_hash` (not added to the tracker).

    `transactions`: tx dicts to include (their fees count as 0).
    """
    known_txs = {tx_key(tx): tx for tx in transactions}
    share_data = {
        'previous_share_hash': previous_hash,
        'coinbase': coinbase if coinbase is not None else b'\x03' + struct.pack('<I', nonce)[:3] + b'/test/',
        'nonce': nonce & 0xffffffff,
        'address': address,
        'subsidy': subsidy,
        'donation': donation,
        'stale_info': stale_info,
        'desired_version': desired_version if desired_version is not None else voting_version(version),
    }
    plan = generate.plan_share(tracker, net, generate.ShareTerms(
        share_data, bits_to_target(block_bits), timestamp,
        desired_target if desired_target is not None else net.MAX_TARGET,
        tuple((key, 0) for key in known_txs), known_txs=known_txs, version=version))
    return solve_plan(plan, block_bits, timestamp, last_txout_nonce=nonce, previous_block=0x1234567 + nonce)


def solve_plan(plan, block_bits, timestamp, last_txout_nonce=0, ref_merkle_link=None,
               previous_block=0x1234567, header_version=0x20000000) -> Any:
    """Mine the share described by `plan` (a generate.SharePlan whose share_info or outputs a
    test may have altered): gentx, hash_link, links, a header meeting the share target.

    A non-empty `ref_merkle_link` is applied to ref_hash and stored in the share."""
    net = plan.net
    ref_merkle_link = ref_merkle_link or {'branch': [], 'index': 0}
    ref_hash = ref_hash_of(plan.share_info, ref_merkle_link, plan.version, net)
    stripped, txid = plan.stripped_gentx(ref_hash, last_txout_nonce)
    header = {'version': header_version, 'previous_block': previous_block,
              'merkle_root': generate.header_merkle_root(plan, txid),
              'timestamp': timestamp, 'bits': block_bits, 'nonce': 0}
    header['nonce'] = solve_nonce(header, bits_to_target(plan.share_info['bits']), net.PARENT.pow_hash)
    contents = {
        'min_header': {key: header[key] for key in ('version', 'previous_block', 'timestamp', 'bits', 'nonce')},
        'share_info': plan.share_info,
        'ref_merkle_link': ref_merkle_link,
        'last_txout_nonce': last_txout_nonce,
        'hash_link': prefix_to_hash_link(stripped[:-44], GENTX_BEFORE_REFHASH),
        'merkle_link': calculate_merkle_link([None] + plan.other_tx_keys, 0),
    }
    return share_from_contents(net, plan.version, contents)


def solve_nonce(header, target, pow_hash) -> int:
    """The first header nonce whose PoW hash meets `target`."""
    prefix = _HEADER.pack(header['version'], (header['previous_block'] or 0).to_bytes(32, 'little'),
                          header['merkle_root'].to_bytes(32, 'little'), header['timestamp'],
                          header['bits'], 0)[:76]
    for nonce in range(2**32):
        if pow_hash(prefix + struct.pack('<I', nonce)) <= target:
            return nonce
    raise MiningError('no nonce meets the target')


def mine_chain(net, count, addresses=None, version=35, tracker=None, previous_hash=None,
               start_time=DEFAULT_START_TIME, block_target=None, spacing=None, transactions=None,
               donation=0, desired_version=None, on_share=None) -> list[Any]:
    """Mine `count` shares on top of `previous_hash` (None: a new chain) and add them to `tracker`.

    addresses: payees used in rotation (default: 10 test addresses; P2PKH for v<34).
    spacing: seconds between share timestamps (default SHARE_PERIOD).
    transactions: callable(index) -> list of tx dicts to include in share `index`.
    desired_version: the vote of every share (default: the version's own vote, 35).
    on_share: callable(index, share) after each share is added.
    Returns the list of Share objects, oldest first. `tracker` defaults to a new
    p2pool.sharechain.tracker.Tracker.
    """
    if tracker is None:
        tracker = _new_tracker()
    if addresses is None:
        addresses = make_addresses(net, 10)
    if version < FIRST_ADDRESS_VERSION:
        parent = net.PARENT
        for address in addresses:
            bitcoin_address.address_to_pubkey_hash(address, parent)   # v<34 pays P2PKH only
    block_bits = target_to_bits(block_target if block_target is not None else default_block_target(net))
    spacing = net.SHARE_PERIOD if spacing is None else spacing
    base_time = start_time
    if previous_hash is not None:
        base_time = tracker.items[previous_hash].timestamp + spacing
    shares = []
    for index in range(count):
        share = mine_share(
            tracker, net, previous_hash, addresses[index % len(addresses)], base_time + index * spacing,
            version, block_bits, nonce=index, donation=donation, desired_version=desired_version,
            transactions=transactions(index) if transactions is not None else ())
        tracker.add(share)
        shares.append(share)
        previous_hash = share.hash
        if on_share is not None:
            on_share(index, share)
    return shares



@dataclasses.dataclass(frozen=True, kw_only=True)
class _FreePowParent(ParentNetwork):
    """The parent with a proof of work every header meets: for planning a chain's targets and times."""

    def pow_hash(self, header: bytes) -> int:
        return 0


def _retarget_chain(net: Any, hash_rate: float, base_time: int, address: str, block_bits: int,
                    previous_block: int, solve: bool = True) -> list[Any]:
    """equilibrium_chain's shares from `base_time` on (solve=False: a free proof of work, for the times).

    Each timestamp is the previous one plus the time `hash_rate` needs on average for a share
    at its target (fractions carried over), but at least one second later (version >= 32)."""
    if not solve:
        parent = _FreePowParent(**{field.name: getattr(net.PARENT, field.name)
                                   for field in dataclasses.fields(net.PARENT) if field.init})
        net = dataclasses.replace(net, PARENT=parent)
    tracker = _new_tracker()
    shares: list[Any] = []
    clock, previous, tail, version = float(base_time), None, 0, 35
    while tail < EQUILIBRIUM_TAIL:
        index = len(shares)
        target = bits_to_target(target_to_bits(generate.pool_target(tracker, previous, index, net)))
        seconds = (2**256 // (target + 1)) / hash_rate
        tail += seconds >= 0.9 * net.SHARE_PERIOD
        clock += seconds
        timestamp = int(clock) if previous is None else max(int(clock), tracker.items[previous].timestamp + 1)
        clock = max(clock, timestamp)
        share_data = {'previous_share_hash': previous, 'coinbase': b'\x03' + index.to_bytes(3, 'little'),
                      'nonce': index, 'address': address, 'subsidy': net.PARENT.INITIAL_SUBSIDY, 'donation': 0,
                      'stale_info': None, 'desired_version': voting_version(version)}
        plan = generate.plan_share(tracker, net, generate.ShareTerms(
            share_data, bits_to_target(block_bits), timestamp, 2**256 - 1, known_txs={}, version=version))
        share = solve_plan(plan, block_bits, timestamp, last_txout_nonce=index, previous_block=previous_block)
        tracker.add(share)
        shares.append(share)
        previous = share.hash
    return shares


def equilibrium_chain(net: Any, hash_rate: float, end_time: float, address: str, block_bits: int,
                      previous_block: int) -> list[Any]:
    """A chain from MAX_TARGET down to the pool target at which `hash_rate` (hashes/s) makes one
    share per SHARE_PERIOD, with EQUILIBRIUM_TAIL shares there, the last one stamped `end_time`.

    The timestamps are those the hash rate would give (but at least 1 s apart), so the real
    retarget comes down at its 10 % per share and then stays. Each share is at the pool target,
    pays `address` and builds on parent block `previous_block`. Costs about
    (EQUILIBRIUM_TAIL + 10) x hash_rate x SHARE_PERIOD header hashes."""
    planned = _retarget_chain(net, hash_rate, 0, address, block_bits, previous_block, solve=False)
    return _retarget_chain(net, hash_rate, int(end_time) - planned[-1].timestamp, address, block_bits, previous_block)
