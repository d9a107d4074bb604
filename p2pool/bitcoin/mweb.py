"""Litecoin MWEB: what a block that ends with a HogEx must keep of its template.

The HogEx (integrating transaction, the last of every MWEB block) spends the previous
HogEx's output and every peg-in output of its own block. So a block may leave out template
transactions (the gentx of a share with many payees needs room that Litecoin Core did not
keep) but never a peg-in, nor anything a kept transaction spends from: without them the
HogEx spends outputs that do not exist and Litecoin Core rejects the block.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from p2pool.bitcoin import data
from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.hashes import hash256

_INPUTS = s.List(data.tx_in_type)


def spent_txids(raw: bytes) -> frozenset[int]:
    """The txids the inputs of `raw` spend; `raw` is serialized with the marker and flag bytes
    (version, 0x00, flag, inputs, ...), as the HogEx always is. Raises ValueError."""
    if len(raw) < 6 or raw[4] != 0:
        raise ValueError('is not serialized with a marker and flag')
    try:
        inputs, _ = _INPUTS.read(raw, 6)
    except (s.DecodeError, IndexError) as e:
        raise ValueError('has inputs that do not decode: %s' % e) from None
    return frozenset(tx_in['previous_output']['hash'] for tx_in in inputs if tx_in['previous_output'] is not None)


def fit_before_final(sizes: Sequence[int], txids: Sequence[int], depends: Sequence[Sequence[int]],
                     final_spends: frozenset[int], budget: int) -> list[int] | None:
    """Indices (ascending) of the template transactions to keep so that their summed `sizes`
    stay within `budget`: transactions are left out from the end of the template, except the
    ones the final transaction spends and the ones a kept transaction depends on (`depends`:
    per transaction, the indices it spends from). None when what must stay does not fit.

    Leaving out from the end keeps Litecoin Core's order (highest fee rates first), and in a
    template a transaction comes after everything it spends from."""
    needed = [txid in final_spends for txid in txids]
    for index in range(len(sizes) - 1, -1, -1):     # what a needed transaction spends from is needed
        if needed[index]:
            for parent in depends[index]:
                needed[parent] = True
    kept = [True] * len(sizes)
    total = sum(sizes)
    for index in range(len(sizes) - 1, -1, -1):
        if total <= budget:
            break
        if not needed[index]:
            # everything after `index` is left out or needed, and what is needed spends only
            # from needed transactions: leaving this one out breaks no kept transaction
            kept[index] = False
            total -= sizes[index]
    if total > budget:
        return None
    return [index for index in range(len(sizes)) if kept[index]]


def template_fit(template: Any, budget: int) -> list[int] | None:
    """Indices of `template`'s transactions a block within `budget` stripped bytes carries: all
    of them when there is no HogEx or when they fit (then a share simply takes the template's
    prefix that fits), else fit_before_final's choice; None when the HogEx's peg-ins alone do not
    fit."""
    count = len(template.transactions)
    hogex = getattr(template, 'hogex', None)
    everything = list(range(count))
    if hogex is None or sum(len(raw) for raw in template.raw_transactions) <= budget:
        return everything       # (the bytes as received include witnesses: more than stripped)
    stripped = [data.tx_id_type.pack(tx) for tx in template.transactions]
    if sum(len(raw) for raw in stripped) <= budget:
        return everything
    depends = template.transaction_depends or [()] * count
    return fit_before_final([len(raw) for raw in stripped], [hash256(raw) for raw in stripped], depends,
                            hogex.spends, budget)
