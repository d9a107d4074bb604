"""The transactions this node knows: what its shares and its peers' shares may reference.

KnownTxPool is one mapping {tx key: transaction dict} (a key is the hash of the
transaction's full serialization, p2pool.bitcoin.data.tx_key) with the fees
bitcoind reported for the transactions of its templates. Transactions join it
from bitcoind's templates (follow_template) and from peers (the P2P room's
transaction relay); every change fires `changed` once with what was added and
what was removed, so that watchers (the relay mirroring the pool to v<34
peers) react to changes instead of comparing copies.

Pure bookkeeping: no reactor, no sockets.
"""
from collections.abc import Iterator, Mapping
from typing import Any

from p2pool.bitcoin.events import Event

Tx = dict[str, Any]


class KnownTxPool(Mapping[int, Tx]):
    """{tx key: tx} of the known transactions; `fees` {tx key: fee} for those of templates.

    changed fires with (added {key: tx}, removed {key: tx}) after each add or remove
    that changed something.
    """

    def __init__(self) -> None:
        self._txs: dict[int, Tx] = {}
        self.fees: dict[int, int] = {}
        self.changed = Event('known transactions')
        self._template_keys: set[int] = set()

    # --- the Mapping -------------------------------------------------------------------

    def __getitem__(self, key: int) -> Tx:
        return self._txs[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._txs)

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, key: object) -> bool:
        return key in self._txs

    def get(self, key: int, default: Any = None) -> Any:
        return self._txs.get(key, default)

    # --- changes -------------------------------------------------------------------------

    def add(self, txs: Mapping[int, Tx], fees: Mapping[int, int] | None = None) -> dict[int, Tx]:
        """Add the transactions not known yet (and record `fees`); returns the added ones."""
        added = {key: tx for key, tx in txs.items() if key not in self._txs}
        self._txs.update(added)
        if fees:
            self.fees.update(fees)
        if added:
            self.changed.happened(added, {})
        return added

    def remove(self, keys: Any) -> dict[int, Tx]:
        """Forget the transactions of `keys` (unknown ones are ignored); returns the removed ones."""
        removed = {}
        for key in keys:
            tx = self._txs.pop(key, None)
            self.fees.pop(key, None)
            if tx is not None:
                removed[key] = tx
        if removed:
            self.changed.happened({}, removed)
        return removed

    def follow_template(self, template: Any) -> None:
        """bitcoind's new template: its transactions (and fees) join the pool and those of the
        previous template that it no longer holds leave it. Transactions peers sent are the
        relay's to forget."""
        if template is None:
            return
        keys = list(template.transaction_keys)
        self.remove(self._template_keys.difference(keys))
        self._template_keys = set(keys)
        self.add(dict(zip(keys, template.transactions)),
                 {key: fee for key, fee in zip(keys, template.transaction_fees) if fee is not None})
