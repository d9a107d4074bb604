"""What one peer can make the node buffer or send (issue 16, finding 9).

Message sizes. Every message type has a payload limit that the FrameDecoder checks
against the frame header before it buffers any of the payload; a peer over it is
reported as FLOODING (before its handshake, anything but `version` is a
PROTOCOL_VIOLATION). Most types get small fixed limits (their real sizes are a few
bytes to a few kilobytes; hash lists and share pushes get room for big blocks). A
`sharereply` may have the full payload size only while one of our requests to that
peer is outstanding or has just timed out; a `remember_tx` only what is left of the
peer's remembered-transaction allowance, so that what one peer makes us hold stays
within that allowance plus one small frame. Unknown commands over a limit are
skipped without being read.

Answers. Shares sent in `sharereply` answers come out of a per-peer byte budget (a
token bucket, PeerSettings.sharereply_budget): an answer is cut short to the
leading shares the budget still holds (a partial answer is still `good`, and the
asking node simply asks again), and a peer that does not read what we send (our
write buffer is full) gets empty answers until it does.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

from p2pool.p2p.messages import MESSAGE_TYPES
from p2pool.util.ratelimit import TokenBucket

log = logging.getLogger(__name__)

#: payload bytes a peer may send in one message of each type
MESSAGE_SIZE_LIMITS = {
    'version': 10_000, 'ping': 1_000, 'addrme': 1_000, 'getaddrs': 1_000, 'bestblock': 1_000,
    'addrs': 100_000, 'sharereq': 1_000_000, 'shares': 4_000_000,
    'have_tx': 8_000_000, 'losing_tx': 8_000_000, 'forget_tx': 8_000_000,
}
UNSOLICITED_REPLY_LIMIT = 10_000   # a sharereply when we asked for nothing
REMEMBER_TX_MARGIN = 1_000_000     # remember_tx: hash lists on top of the remaining allowance
UNKNOWN_COMMAND_LIMIT = 100_000    # larger frames of unknown commands are skipped unread
WRAPPER_OVERHEAD = 8               # a share wrapper's type and length fields, about
#: commands whose payload_limit depends on the connection's state of the moment
RUN_TIME_LIMITED = frozenset({'sharereply', 'remember_tx'})


def payload_limit(peer: Any, command: str) -> int:
    """The largest payload `peer` (a PeerConnection) may send now for `command`."""
    settings = peer.settings
    if command not in MESSAGE_TYPES:
        return UNKNOWN_COMMAND_LIMIT
    if not peer.handshake_done and command != 'version':
        return 0
    if command == 'sharereply':
        if peer._pending_requests or peer.clock.seconds() < peer._replies_expected_until:
            return int(settings.max_payload_size)
        return UNSOLICITED_REPLY_LIMIT
    if command == 'remember_tx':
        return max(0, settings.max_remembered_txs_size - peer.remembered_txs_size) + REMEMBER_TX_MARGIN
    return int(settings.message_size_limits.get(command, settings.max_payload_size))


def fixed_payload_limits(settings: Any) -> dict[str, int]:
    """payload_limit of every command whose limit does not change at run time, for a peer past
    its handshake (the per-frame check is then one dict lookup). One dict shared by every
    connection with the same limits: read it, never change it."""
    limits, max_payload_size = settings.message_size_limits, settings.max_payload_size
    # every connection asks at its start: the answer is remembered on the settings with a copy of
    # what it was made from (compared, not trusted: settings may change between connections)
    memo = getattr(settings, '_fixed_limits_memo', None)
    if memo is not None and memo[1] == max_payload_size and memo[0] == limits:
        return memo[2]
    fixed = _fixed_limits(tuple(sorted(limits.items())), max_payload_size)
    settings._fixed_limits_memo = (dict(limits), max_payload_size, fixed)
    return fixed


@functools.lru_cache(maxsize=64)
def _fixed_limits(limits: tuple[tuple[str, int], ...], max_payload_size: int) -> dict[str, int]:
    by_command = dict(limits)
    return {command: int(by_command.get(command, max_payload_size))
            for command in MESSAGE_TYPES if command not in RUN_TIME_LIMITED}


def within_budget(shares: list[dict], budget: TokenBucket, peer: Any) -> list[dict]:
    """The leading share wrappers whose bytes `budget` still holds (they are charged to it)."""
    for index, wrapper in enumerate(shares):
        if not budget.take(len(wrapper['contents']) + WRAPPER_OVERHEAD):
            log.debug('%s: sharereply cut to %d of %d shares (reply byte budget)', peer, index, len(shares))
            return shares[:index]
    return shares
