"""Full validation of shares and naughty-share bookkeeping (shares.md §12, §14).

check_share(tracker, share, now, ...) re-derives the share with the generator and
raises ShareInvalid / ShareMisbehaviour (both ban the sending peer) when it does
not match; on success it returns the regenerated gentx (a RegeneratedGentx: its
bytes and txid, the transaction dict only on demand, since a syncing node checks
thousands of shares and needs the dict of almost none) and records the share's
`naughty` level. The version votes a share is checked against (§13) are counted
in p2pool.sharechain.voting.

The tracker is read through `items`, `get_height`, `get_nth_parent_hash` and the
generator's queries (sharechain.md §1).
"""
from collections.abc import Callable, Mapping

from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.data import bits_to_target
from p2pool.sharechain import generate
from p2pool.sharechain.share import (
    FIRST_ADDRESS_VERSION, SHARE_VERSIONS, Net, Share, ShareInvalid, ShareMisbehaviour, ShareTracker)
from p2pool.sharechain.voting import SUCCESSION_PERCENT, vote_window_counts

__all__ = ['check_share', 'RegeneratedGentx', 'ShareInvalid', 'ShareMisbehaviour']

MAX_FUTURE_SECONDS = 600
MAX_NAUGHTY = 6

# --- §12 full validation ---------------------------------------------------------


class RegeneratedGentx:
    """The generation transaction of a valid share as check_share rebuilt it."""

    __slots__ = ('plan', 'ref_hash', 'last_txout_nonce', 'stripped', 'txid')

    def __init__(self, plan: generate.SharePlan, ref_hash: int, last_txout_nonce: int, stripped: bytes,
                 txid: int) -> None:
        self.plan, self.ref_hash, self.last_txout_nonce = plan, ref_hash, last_txout_nonce
        self.stripped, self.txid = stripped, txid   # the stripped serialization and its hash

    def tx(self) -> bitcoin_data.Tx:
        """The gentx as a transaction dict (p2pool.bitcoin.data layout), built on each call."""
        return self.plan.gentx(self.ref_hash, self.last_txout_nonce)


#: parent-chain block hash -> its height, or None when unknown
BlockHeight = Callable[[int | None], int | None]


def _check_succession(tracker: ShareTracker, share: Share, prev: Share, net: Net) -> None:
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


def _referenced_tx_keys(tracker: ShareTracker, share: Share) -> list[int]:
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
    keys: list[int] = []
    for share_count, tx_count in share.transaction_hash_refs:
        if share_count >= len(ancestors):
            raise ShareInvalid('transaction reference to a share that is not known')
        hashes = ancestors[share_count].new_transaction_hashes
        if tx_count >= len(hashes):
            raise ShareInvalid('transaction reference past the end of a share\'s list')
        keys.append(hashes[tx_count])
    return keys


def check_share(tracker: ShareTracker, share: Share, now: float, fee_cache: Mapping[int, int] | None = None,
                block_height: BlockHeight | None = None) -> RegeneratedGentx:
    """Fully validate `share` against its ancestors in `tracker` (shares.md §12).

    Returns the regenerated gentx. `fee_cache` (tx key ->
    fee) and `block_height` (parent-chain block hash -> height or None) feed the
    naughty-share rule (§14); without them only inherited naughtiness is
    recorded. Validity never depends on which transactions this node knows.
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
        plan = generate.plan_share(tracker, net, generate.ShareTerms(
            share.share_data, bits_to_target(share.header['bits']), share.timestamp, share.target,
            tuple((key, None) for key in other_tx_keys), known_txs=None, segwit_data=share.segwit_data,
            version=share.VERSION))
    except generate.GenerateError as e:
        raise ShareInvalid('cannot regenerate share: %s' % e) from None
    regenerated = plan.share_info
    if regenerated.keys() != share.share_info.keys():
        raise ShareInvalid('share_info invalid: fields differ')
    for field, value in share.share_info.items():
        if regenerated[field] != value:
            raise ShareInvalid('share_info invalid: %s' % field)
    # share_info matched byte for byte, so the ref_hash computed at decode applies.
    stripped, txid = plan.stripped_gentx(share.ref_hash, share.last_txout_nonce)
    if txid != share.gentx_hash:
        raise ShareInvalid("gentx doesn't match hash_link")
    if share.VERSION < FIRST_ADDRESS_VERSION:
        link = bitcoin_data.calculate_merkle_link([None, *other_tx_keys], 0)
        if link['branch'] != share.merkle_link['branch']:
            raise ShareInvalid('merkle_link and other_tx_hashes do not match')

    share.naughty = _naughtiness(share, prev, other_tx_keys, fee_cache, block_height)
    return RegeneratedGentx(plan, share.ref_hash, share.last_txout_nonce, stripped, txid)


def _naughtiness(share: Share, prev: Share | None, other_tx_keys: list[int], fee_cache: Mapping[int, int] | None,
                 block_height: BlockHeight | None) -> int:
    """§14: 1 for a v<34 share claiming more than the block reward plus fees; descendants
    of a naughty share count up to 6 generations, then return to 0."""
    naughty = 0
    if (prev is not None and share.VERSION < FIRST_ADDRESS_VERSION and fee_cache is not None
            and block_height is not None and all(key in fee_cache for key in other_tx_keys)):
        height = block_height(share.header['previous_block'])
        if height is not None:
            max_subsidy: int = share.net.PARENT.subsidy(height + 1) + sum(fee_cache[key] for key in other_tx_keys)
            if share.subsidy > max_subsidy:
                naughty = 1
    if prev is not None and prev.naughty:
        naughty = prev.naughty + 1
        if naughty > MAX_NAUGHTY:
            naughty = 0
    return naughty
