"""Full validation of shares, version voting and naughty-share bookkeeping (shares.md §12-§14).

check_share(tracker, share, now, ...) re-derives the share with the generator and
raises ShareInvalid / ShareMisbehaviour (both ban the sending peer) when it does
not match; on success it returns the regenerated gentx and records the share's
`naughty` level. The minimum accepted peer protocol version is not a global:
updated_minimum_protocol_version() returns the new value for the caller to keep.

The tracker is read through `items`, `get_height`, `get_nth_parent_hash` and the
generator's queries (sharechain.md §1).
"""
from typing import Any
from collections import OrderedDict

from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.data import bits_to_target
from p2pool.sharechain import generate
from p2pool.sharechain.share import (
    FIRST_ADDRESS_VERSION, INITIAL_VERSION, SHARE_VERSIONS, ShareInvalid, ShareMisbehaviour)

__all__ = ['check_share', 'desired_version_counts', 'vote_window_counts', 'choose_share_version',
           'successor_support', 'updated_minimum_protocol_version', 'startup_minimum_protocol_version',
           'ShareInvalid', 'ShareMisbehaviour']

MAX_FUTURE_SECONDS = 600
SUCCESSION_PERCENT = 60      # a share may switch to its SUCCESSOR with this much of the vote
SWITCH_PERCENT = 95          # the generator switches / the minimum protocol rises at this much
MAX_NAUGHTY = 6

# --- §13.1 vote counting -------------------------------------------------------

_COUNTS_CACHE_SIZE = 64
_counts_cache: OrderedDict[Any, Any] = OrderedDict()


def _remember_counts(key, counts):
    _counts_cache[key] = counts
    _counts_cache.move_to_end(key)
    while len(_counts_cache) > _COUNTS_CACHE_SIZE:
        _counts_cache.popitem(last=False)


def desired_version_counts(tracker, start_hash, n):
    """{desired_version: summed work} over the `n` shares from `start_hash` backwards.

    Complete windows are cached by (start, n) (a pure function of the chain); a
    window one share above a cached one is derived from it by adding the new
    share and dropping the oldest.
    """
    counts = _counts_cache.get((start_hash, n))
    if counts is not None:
        return dict(counts)
    items = tracker.items
    start = items.get(start_hash) if start_hash is not None else None
    if start is None:
        return {}
    below = _counts_cache.get((start.previous_hash, n)) if n > 1 else None
    oldest = None
    if below is not None:
        try:
            oldest = items.get(tracker.get_nth_parent_hash(start.previous_hash, n - 1))
        except (KeyError, ValueError, IndexError, AssertionError):
            oldest = None
    if oldest is not None:
        counts = dict(below)
        counts[start.desired_version] = counts.get(start.desired_version, 0) + start.work
        left = counts[oldest.desired_version] - oldest.work
        if left:
            counts[oldest.desired_version] = left
        else:
            del counts[oldest.desired_version]
        complete = True
    else:
        counts = {}
        share, counted = start, 0
        while share is not None and counted < n:
            counts[share.desired_version] = counts.get(share.desired_version, 0) + share.work
            counted += 1
            share = items.get(share.previous_hash) if share.previous_hash is not None else None
        complete = counted == n
    if complete:
        _remember_counts((start_hash, n), counts)
    return dict(counts)


def vote_window_counts(tracker, previous_share_hash, net):
    """Counts of the vote window of a share whose parent is `previous_share_hash`:
    the oldest tenth of the last CHAIN_LENGTH shares (§13.1)."""
    start = tracker.get_nth_parent_hash(previous_share_hash, net.CHAIN_LENGTH * 9 // 10)
    return desired_version_counts(tracker, start, net.CHAIN_LENGTH // 10)


def _has_vote_window(tracker, previous_share_hash, net):
    return previous_share_hash is not None and tracker.get_height(previous_share_hash) >= net.CHAIN_LENGTH


# --- §13.3 generator version and minimum protocol version ------------------------

def successor_support(tracker, best_hash, net):
    """(successor version, its share of the vote window) on top of `best_hash`, or None."""
    if best_hash is None or best_hash not in tracker.items:
        return None
    successor = SHARE_VERSIONS[tracker.items[best_hash].VERSION].SUCCESSOR
    if successor is None or not _has_vote_window(tracker, best_hash, net):
        return None
    counts = vote_window_counts(tracker, best_hash, net)
    total = sum(counts.values())
    return successor, (counts.get(successor, 0) / total if total else 0.0)


def choose_share_version(tracker, best_hash, net):
    """VERSION for new work on top of `best_hash` (§13.3); the initial version without one.

    (A node logs "Switchover imminent" when successor_support() exceeds 65 %.)
    """
    if best_hash is None:
        return INITIAL_VERSION
    version = tracker.items[best_hash].VERSION
    successor = SHARE_VERSIONS[version].SUCCESSOR
    if successor is not None and _has_vote_window(tracker, best_hash, net):
        counts = vote_window_counts(tracker, best_hash, net)
        if counts.get(successor, 0) > sum(counts.values()) * SWITCH_PERCENT // 100:
            return successor
    return version


def updated_minimum_protocol_version(tracker, share, current_minimum, net):
    """The minimum peer protocol version after `share` passed check (or at start-up with the
    best loaded share): raised to the share class's value once it has 95 % of the votes."""
    class_minimum = SHARE_VERSIONS[share.VERSION].MINIMUM_PROTOCOL_VERSION
    if current_minimum >= class_minimum or not _has_vote_window(tracker, share.previous_hash, net):
        return current_minimum
    counts = vote_window_counts(tracker, share.previous_hash, net)
    if counts.get(share.VERSION, 0) >= sum(counts.values()) * SWITCH_PERCENT // 100:
        return class_minimum
    return current_minimum


def startup_minimum_protocol_version(tracker, best_hash, loaded_count, current_minimum, net):
    """[jt] start-up rule (§13.3): with more than CHAIN_LENGTH shares loaded, raise the minimum
    to the best share's class value if its version has 95 % of the window above the best share."""
    if best_hash is None or loaded_count <= net.CHAIN_LENGTH or best_hash not in tracker.items:
        return current_minimum
    best = tracker.items[best_hash]
    class_minimum = SHARE_VERSIONS[best.VERSION].MINIMUM_PROTOCOL_VERSION
    if current_minimum >= class_minimum or tracker.get_height(best_hash) <= net.CHAIN_LENGTH * 9 // 10:
        return current_minimum
    counts = vote_window_counts(tracker, best_hash, net)
    if counts.get(best.VERSION, 0) >= sum(counts.values()) * SWITCH_PERCENT // 100:
        return class_minimum
    return current_minimum


# --- §12 full validation ---------------------------------------------------------

def _check_succession(tracker, share, prev, net):
    """§13.2: may `share` follow `prev`?"""
    own, parent_class = SHARE_VERSIONS[share.VERSION], SHARE_VERSIONS[prev.VERSION]
    if tracker.get_height(prev.hash) >= net.CHAIN_LENGTH:
        if share.VERSION == prev.VERSION:
            return
        if share.VERSION == parent_class.SUCCESSOR:
            counts = vote_window_counts(tracker, prev.hash, net)
            if counts.get(share.VERSION, 0) < sum(counts.values()) * SUCCESSION_PERCENT // 100:
                raise ShareMisbehaviour('switch without enough hash power upgraded')
            return
        raise ShareMisbehaviour("%s can't follow %s" % (own.NAME, parent_class.NAME))
    # Quirk: with short history only a switch to the successor is refused.
    if share.VERSION != prev.VERSION and share.VERSION == parent_class.SUCCESSOR:
        raise ShareMisbehaviour('switch without enough history')


def _referenced_tx_keys(tracker, share):
    """§12 step 3: resolve transaction_hash_refs to transaction keys."""
    if not share.transaction_hash_refs:
        return []
    ancestors = [share]
    deepest = max(share_count for share_count, _ in share.transaction_hash_refs)
    items = tracker.items
    for _ in range(deepest):
        parent_hash = ancestors[-1].previous_hash
        parent = items.get(parent_hash) if parent_hash is not None else None
        if parent is None:
            break
        ancestors.append(parent)
    keys = []
    for share_count, tx_count in share.transaction_hash_refs:
        if share_count >= len(ancestors):
            raise ShareInvalid('transaction reference to a share that is not known')
        hashes = ancestors[share_count].new_transaction_hashes
        if tx_count >= len(hashes):
            raise ShareInvalid('transaction reference past the end of a share\'s list')
        keys.append(hashes[tx_count])
    return keys


def check_share(tracker, share, now, known_txs=None, fee_cache=None, block_height=None):
    """Fully validate `share` against its ancestors in `tracker` (shares.md §12).

    Returns the regenerated gentx (a transaction dict). `fee_cache` (tx key ->
    fee) and `block_height` (parent-chain block hash -> height or None) feed the
    naughty-share rule (§14); without them only inherited naughtiness is
    recorded. `known_txs` is accepted for interface compatibility; validity
    never depends on it.
    """
    net = share.net
    if share.timestamp > now + MAX_FUTURE_SECONDS:
        raise ShareInvalid('share timestamp is %d seconds in the future' % (share.timestamp - now))
    prev = None
    if share.previous_hash is not None:
        prev = tracker.items.get(share.previous_hash)
        if prev is None:
            raise ShareInvalid('parent share is not known')
        _check_succession(tracker, share, prev, net)
    other_tx_keys = _referenced_tx_keys(tracker, share) if share.VERSION < FIRST_ADDRESS_VERSION else []

    try:
        plan = generate.plan_share(
            tracker, share.share_data, bits_to_target(share.header['bits']), share.timestamp,
            share.target, [(key, None) for key in other_tx_keys], net, known_txs=None,
            segwit_data=share.segwit_data, version=share.VERSION)
    except generate.GenerateError as e:
        raise ShareInvalid('cannot regenerate share: %s' % e) from None
    regenerated = plan.share_info
    if regenerated.keys() != share.share_info.keys():
        raise ShareInvalid('share_info invalid: fields differ')
    for field, value in share.share_info.items():
        if regenerated[field] != value:
            raise ShareInvalid('share_info invalid: %s' % field)
    # share_info matched byte for byte, so the ref_hash computed at decode applies.
    _, txid = plan.stripped_gentx(share.ref_hash, share.last_txout_nonce)
    if txid != share.gentx_hash:
        raise ShareInvalid("gentx doesn't match hash_link")
    if share.VERSION < FIRST_ADDRESS_VERSION:
        link = bitcoin_data.calculate_merkle_link([None] + other_tx_keys, 0)
        if link['branch'] != share.merkle_link['branch']:
            raise ShareInvalid('merkle_link and other_tx_hashes do not match')

    share.naughty = _naughtiness(share, prev, other_tx_keys, fee_cache, block_height)
    return plan.gentx(share.ref_hash, share.last_txout_nonce)


def _naughtiness(share, prev, other_tx_keys, fee_cache, block_height):
    """§14: 1 for a v<34 share claiming more than the block reward plus fees; descendants
    of a naughty share count up to 6 generations, then return to 0."""
    naughty = 0
    if (prev is not None and share.VERSION < FIRST_ADDRESS_VERSION and fee_cache is not None
            and block_height is not None and all(key in fee_cache for key in other_tx_keys)):
        height = block_height(share.header['previous_block'])
        if height is not None:
            max_subsidy = share.net.PARENT.subsidy(height + 1) + sum(fee_cache[key] for key in other_tx_keys)
            if share.subsidy > max_subsidy:
                naughty = 1
    if prev is not None and prev.naughty:
        naughty = prev.naughty + 1
        if naughty > MAX_NAUGHTY:
            naughty = 0
    return naughty
