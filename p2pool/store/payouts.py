"""The store's table of payout history (p2pool.app.payout_history keeps it; this only stores it).

Mixed into `p2pool.store.sharestore.ShareStore`. One row per block found by the pool
whose coinbase pays this node's payees: block hash (64 hex digits), height, block time,
the share that carried it, the amounts per payee address (satoshis, JSON text), the
confirmations last seen at bitcoind and the state ('immature', 'mature', 'orphaned').
Every method is one transaction.
"""
import json
import logging
from typing import Any

from .schema import StoreError

log = logging.getLogger(__name__)

PAYOUT_STATES = ('immature', 'mature', 'orphaned')
_COLUMNS = 'block_hash, height, ts, share_hash, amounts, confirmations, state'


class PayoutTableMixin:
    """Payout history; relies on ShareStore's _read(work, default) and _write(work)."""

    _read: Any
    _write: Any

    def save_payout(self, row: dict[str, Any]) -> None:
        """Insert or replace one block's row (keys: the columns; amounts a {address: satoshis} dict)."""
        if row.get('state') not in PAYOUT_STATES:
            raise StoreError('payout state must be one of %s, got %r' % (', '.join(PAYOUT_STATES), row.get('state')))
        amounts = row.get('amounts')
        if not isinstance(amounts, dict) or not all(isinstance(value, int) for value in amounts.values()):
            raise StoreError('payout amounts must be {address: satoshis}')
        values = (str(row['block_hash']), int(row['height']), float(row['ts']), str(row['share_hash']),
                  json.dumps(amounts, sort_keys=True), int(row['confirmations']), row['state'])
        self._write(lambda conn: conn.execute(
            'INSERT OR REPLACE INTO payouts (%s) VALUES (?, ?, ?, ?, ?, ?, ?)' % _COLUMNS, values))

    def load_payouts(self, limit: int = 10000) -> list[dict[str, Any]]:
        """The newest `limit` rows, newest block first; damaged records are skipped."""
        rows = self._read(lambda conn: conn.execute(
            'SELECT %s FROM payouts ORDER BY height DESC, ts DESC LIMIT ?' % _COLUMNS, (limit,)).fetchall(), [])
        result = []
        for block_hash, height, ts, share_hash, amounts_text, confirmations, state in rows:
            try:
                amounts = json.loads(amounts_text)
            except (TypeError, ValueError):
                amounts = None
            if not isinstance(amounts, dict) or state not in PAYOUT_STATES:
                log.warning('skipping a damaged payout record of block %s', block_hash)
                continue
            result.append({'block_hash': block_hash, 'height': height, 'ts': ts, 'share_hash': share_hash,
                           'amounts': amounts, 'confirmations': confirmations, 'state': state})
        return result
