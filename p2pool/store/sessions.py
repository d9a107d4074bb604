"""The store's table of Stratum sessions (p2pool.work.sessions keeps them; this only stores them).

Mixed into `p2pool.store.sharestore.ShareStore`. One row per session: its id, its
4-byte extranonce1, its state as JSON text and when it was last in use. Every
method is one transaction; timestamps come from the caller.
"""
import json
import logging
from typing import Any

from .schema import StoreError

log = logging.getLogger(__name__)

SessionRow = tuple[str, bytes, dict[str, Any], float]


class StratumSessionTableMixin:
    """Stratum sessions; relies on ShareStore's _read(work, default) and _write(work)."""

    _read: Any
    _write: Any

    def save_stratum_sessions(self, rows: list[SessionRow]) -> None:
        """Insert or replace sessions given as (session_id, extranonce1, state, last_seen)."""
        encoded = []
        for session_id, extranonce1, state, last_seen in rows:
            if not isinstance(session_id, str) or not isinstance(extranonce1, bytes):
                raise StoreError('a Stratum session needs a text id and bytes extranonce1')
            try:
                text = json.dumps(state, separators=(',', ':'), sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise StoreError('Stratum session state is not JSON-serialisable: %s' % exc) from exc
            encoded.append((session_id, extranonce1, text, float(last_seen)))
        self._write(lambda conn: conn.executemany(
            'INSERT OR REPLACE INTO stratum_sessions (session_id, extranonce1, state, last_seen)'
            ' VALUES (?, ?, ?, ?)', encoded))

    def load_stratum_sessions(self, since: float) -> list[SessionRow]:
        """Sessions last used at or after `since`; records that do not decode are skipped."""
        rows = self._read(lambda conn: conn.execute(
            'SELECT session_id, extranonce1, state, last_seen FROM stratum_sessions WHERE last_seen >= ?',
            (since,)).fetchall(), [])
        sessions = []
        for session_id, extranonce1, text, last_seen in rows:
            try:
                state = json.loads(text)
            except (TypeError, ValueError):
                log.warning('skipping a damaged Stratum session record %r', session_id)
                continue
            if isinstance(session_id, str) and isinstance(extranonce1, bytes) and isinstance(state, dict):
                sessions.append((session_id, extranonce1, state, last_seen))
        return sessions

    def forget_stratum_sessions(self, before: float) -> int:
        """Delete sessions last used before `before`; returns how many."""
        return int(self._write(lambda conn: conn.execute(
            'DELETE FROM stratum_sessions WHERE last_seen < ?', (before,)).rowcount))
