"""Stratum sessions that outlive their connection.

A session is what a miner keeps when it reconnects: its extranonce1 (the 4 coinbase
nonce bytes the node reserved for it), its vardiff state and its worker name. The
session id is the subscription id answered to `mining.subscribe`; a miner that
reconnects and sends it back as the second parameter (as cgminer does) gets the same
extranonce1 and difficulty again, as long as the session is known and no open
connection is using it.

Sessions are kept SESSION_LIFETIME seconds after their connection closed (at least
10 minutes), in memory and, through `store` (p2pool.store's stratum session table),
across restarts and takeovers. Writes are batched: `flush()` commits what changed
(the node calls it every few seconds and at shutdown).

Extranonce1 values of remembered sessions are never handed to a new connection, so
a resumed session cannot collide with another miner's coinbase space.
"""
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

SESSION_LIFETIME = 900.0
MAX_SESSIONS = 100000
SESSION_ID_BYTES = 8

#: the Vardiff attributes that make up its state (its settings come from the node's options)
VARDIFF_STATE = ('fixed_target', 'target', 'suggested_target', 'ceiling', 'recent', 'previous_target', 'grace_until')


class SessionStore(Protocol):
    def save_stratum_sessions(self, rows: list[tuple[str, bytes, dict[str, Any], float]]) -> None: ...
    def load_stratum_sessions(self, since: float) -> list[tuple[str, bytes, dict[str, Any], float]]: ...
    def forget_stratum_sessions(self, before: float) -> int: ...


@dataclass
class StratumSession:
    """What a reconnecting miner gets back; `state` is JSON-able (vardiff, worker name, version mask)."""
    session_id: str
    extranonce1: bytes
    state: dict[str, Any] = field(default_factory=dict)
    last_seen: float = 0.0


def vardiff_state(vardiff: Any) -> dict[str, Any]:
    state = {name: getattr(vardiff, name, None) for name in VARDIFF_STATE}
    state['recent'] = list(state['recent'] or [])
    return state


def restore_vardiff(vardiff: Any, state: dict[str, Any]) -> None:
    """Put a saved state back into a Vardiff, ignoring values of the wrong kind (a damaged record)."""
    for name in VARDIFF_STATE:
        value = state.get(name)
        if name == 'recent':
            if isinstance(value, list) and all(isinstance(x, (int, float)) for x in value):
                vardiff.recent = list(value)
        elif name == 'grace_until':
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                vardiff.grace_until = float(value)
        elif value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            setattr(vardiff, name, value)


class SessionBook:
    """The node's Stratum sessions: live ones (connection open) and remembered ones."""

    def __init__(self, store: SessionStore | None = None, clock: Callable[[], float] = time.time,
                 lifetime: float = SESSION_LIFETIME, max_sessions: int = MAX_SESSIONS) -> None:
        self.store, self.clock, self.lifetime, self.max_sessions = store, clock, lifetime, max_sessions
        self.sessions: dict[str, StratumSession] = {}
        self.live: set[str] = set()
        self._extranonce1s: set[bytes] = set()
        self._dirty: set[str] = set()

    def load(self) -> int:
        """Read the remembered sessions from the store; returns how many."""
        if self.store is None:
            return 0
        now = self.clock()
        for session_id, extranonce1, state, last_seen in self.store.load_stratum_sessions(now - self.lifetime):
            if session_id not in self.sessions and len(extranonce1) == 4 and isinstance(state, dict):
                self._add(StratumSession(session_id, bytes(extranonce1), state, last_seen))
        return len(self.sessions)

    def _add(self, session: StratumSession) -> None:
        self.sessions[session.session_id] = session
        self._extranonce1s.add(session.extranonce1)

    def new_extranonce1(self, reserve: Callable[[], bytes]) -> bytes:
        """A value from `reserve` (the bridge's counter) that no remembered session holds."""
        value = reserve()
        for _ in range(1000):
            if value not in self._extranonce1s:
                break
            value = reserve()
        return value

    def open(self, extranonce1: bytes, session_id: str | None = None) -> StratumSession:
        """A new live session for a connection that did not resume one."""
        if len(self.sessions) >= self.max_sessions:
            self.prune()
        while session_id is None or session_id in self.sessions:
            session_id = secrets.token_hex(SESSION_ID_BYTES)
        session = StratumSession(session_id, extranonce1, {}, self.clock())
        self._add(session)
        self.live.add(session_id)
        self._dirty.add(session_id)
        return session

    def resume(self, session_id: object) -> StratumSession | None:
        """The remembered session `session_id` (now live again), or None if unknown, expired or in use."""
        if not isinstance(session_id, str):
            return None
        session = self.sessions.get(session_id)
        if session is None or session_id in self.live:
            return None
        if self.clock() - session.last_seen > self.lifetime:
            self._forget(session)
            return None
        self.live.add(session_id)
        return session

    def adopt(self, session: StratumSession) -> StratumSession:
        """A live session arriving from another process (takeover): known from now on."""
        known = self.sessions.get(session.session_id)
        if known is not None:
            self._extranonce1s.discard(known.extranonce1)
        self._add(session)
        self.live.add(session.session_id)
        self._dirty.add(session.session_id)
        return session

    def update(self, session: StratumSession, state: dict[str, Any]) -> None:
        if state != session.state:
            session.state = state
            self._dirty.add(session.session_id)

    def close(self, session: StratumSession) -> None:
        """Its connection ended: remember it from now for `lifetime` seconds."""
        self.live.discard(session.session_id)
        session.last_seen = self.clock()
        self._dirty.add(session.session_id)

    def _forget(self, session: StratumSession) -> None:
        self.sessions.pop(session.session_id, None)
        self._extranonce1s.discard(session.extranonce1)
        self._dirty.discard(session.session_id)

    def prune(self) -> None:
        """Forget sessions closed longer than `lifetime` ago (and the oldest ones above max_sessions)."""
        now = self.clock()
        idle = sorted((s for s in self.sessions.values() if s.session_id not in self.live),
                      key=lambda s: s.last_seen)
        excess = len(self.sessions) - self.max_sessions
        for index, session in enumerate(idle):
            if now - session.last_seen > self.lifetime or index < excess:
                self._forget(session)

    def flush(self) -> None:
        """Commit changed sessions (live ones with last_seen = now) and forget expired ones in the store."""
        self.prune()
        if self.store is None:
            self._dirty.clear()
            return
        now = self.clock()
        rows = []
        for session_id in self.live:
            session = self.sessions.get(session_id)
            if session is not None:
                session.last_seen = now
        for session_id in list(self._dirty) + [s for s in self.live if s not in self._dirty]:
            session = self.sessions.get(session_id)
            if session is not None:
                rows.append((session.session_id, session.extranonce1, session.state, session.last_seen))
        self._dirty.clear()
        try:
            if rows:
                self.store.save_stratum_sessions(rows)
            self.store.forget_stratum_sessions(now - self.lifetime)
        except Exception as e:  # the store logs its own damage; sessions are a convenience
            log.warning('cannot save Stratum sessions: %s', e)
