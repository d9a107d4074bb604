"""Punishment of shares (sharechain.md §5.1 and §5.3, [jt] lineage).

punishment() is the [jt] should_punish value of one share; best_descendant() is where the
chooser steps forward to after stepping back from a punished best share. Both read only the
tracker and the injected transaction sizes (see chooser.py).
"""
from collections.abc import Mapping

from p2pool.bitcoin.data import bits_to_target
from p2pool.sharechain.share import Net, Share, ShareTracker

__all__ = ['BEST_DESCENDANT_LIMIT', 'FIRST_ADDRESS_VERSION', 'best_descendant', 'punishment', 'referenced_tx_keys']

FIRST_ADDRESS_VERSION = 34        # from here on shares carry no transaction list
BEST_DESCENDANT_LIMIT = 20        # best_descendant stops 21 generations down


def referenced_tx_keys(tracker: ShareTracker, share: Share) -> list[int] | None:
    """Transaction keys a VERSION < 34 share puts in its block, or None if an
    ancestor it refers to is not in the tracker (shares.md §12 step 3)."""
    refs = share.transaction_hash_refs
    if not refs:
        return []
    ancestors = [share]
    deepest = max(share_count for share_count, _tx_count in refs)
    while len(ancestors) <= deepest:
        parent = tracker.get(ancestors[-1].previous_hash)
        if parent is None:
            return None
        ancestors.append(parent)
    keys: list[int] = []
    for share_count, tx_count in refs:
        hashes = ancestors[share_count].new_transaction_hashes
        if tx_count >= len(hashes):
            return None
        keys.append(hashes[tx_count])
    return keys


def punishment(share: Share, tracker: ShareTracker, net: Net,
               known_tx_sizes: Mapping[int, tuple[int, int]] | None = None,
               gentx_sizes: Mapping[int, tuple[int, int]] | None = None) -> int:
    """[jt] should_punish value: -1 block solution (preferred), 0 fine, > 0 punish.

    1. a block solution -> -1; 2. naughty n > 0 -> n; 3. VERSION < 34 with every
    transaction size known: over BLOCK_MAX_WEIGHT or BLOCK_MAX_SIZE -> 1.
    """
    if share.pow_hash <= bits_to_target(share.header['bits']):
        return -1
    if share.naughty:
        return share.naughty
    if share.VERSION < FIRST_ADDRESS_VERSION and known_tx_sizes is not None and gentx_sizes is not None:
        gentx = gentx_sizes.get(share.hash)
        keys = referenced_tx_keys(tracker, share) if gentx is not None else None
        if gentx is not None and keys is not None and all(key in known_tx_sizes for key in keys):
            full_size = sum(known_tx_sizes[key][0] for key in keys)
            stripped_size = sum(known_tx_sizes[key][1] for key in keys)
            gentx_size, gentx_weight = gentx
            header_size = 80
            if full_size + 3 * stripped_size + 4 * header_size + gentx_weight > net.BLOCK_MAX_WEIGHT:
                return 1
            if stripped_size + header_size + gentx_size > net.BLOCK_MAX_SIZE:
                return 1
    return 0


def best_descendant(tracker: ShareTracker, share_hash: int, limit: int = BEST_DESCENDANT_LIMIT) -> tuple[int, int]:
    """(generations, hash): the deepest descendant reachable through non-naughty
    children of the full tracker, at most limit + 1 generations down; ties go to
    the larger descendant hash (§5.3)."""
    if limit < 0:
        return 0, share_hash
    items = tracker.items
    found = [best_descendant(tracker, child, limit - 1)
             for child in tracker.reverse.get(share_hash, ()) if not items[child].naughty]
    if not found:
        return 0, share_hash
    generations, descendant = max(found)
    return generations + 1, descendant
