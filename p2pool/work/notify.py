"""Stratum `mining.set_difficulty` + `mining.notify` bytes, built once and shared by every connection.

A new block sends a notify to every miner at once; with 10,000 connections the per-connection
cost is what a farm waits for. So, per new-work event, the bridge is asked once per username
(`FanoutWork`); per (work, target) the two lines are encoded once into a head and a tail
(`notify_bytes`), and a connection only adds its job id between them; and the bytes go straight
to the socket when nothing is queued for it (`write_now`), one send() instead of a trip through
the reactor's write loop with two epoll changes. (Sending from several threads at once was tried:
on a loaded 2-core machine it gained nothing.)
"""
from __future__ import annotations

import json
import random
from typing import Any, Callable

from p2pool.bitcoin.data import target_to_difficulty


def notify_fragment(record: Any) -> str:
    """The job-independent part of mining.notify's params (§7.2 encodings), JSON text."""
    swapped_prev = record.previous_block.to_bytes(32, 'little')
    swapped_prev = b''.join(swapped_prev[i:i + 4][::-1] for i in range(0, 32, 4))
    return json.dumps([
        swapped_prev.hex(), record.coinb1.hex(), record.coinb2.hex(),
        [h.to_bytes(32, 'little').hex() for h in record.merkle_link['branch']],
        '%08x' % record.version, '%08x' % record.bits, '%08x' % record.timestamp,
    ], separators=(',', ':'))[1:-1]


def notify_bytes(base: Any, record: Any, target: int, job_id: str, clean: bool, difficulty_factor: float) -> bytes:
    """set_difficulty for `target` and a notify of `record` as job `job_id` (clean_jobs `clean`),
    newline-ended.

    The parts are cached in base.cache (one BaseWork serves many connections); the notification
    ids are random per cached part, as the original sends random ids.
    """
    key = ('stratum', target, clean)
    parts = base.cache.get(key)
    if parts is None:
        fragment = base.cache.get('stratum')
        if fragment is None:
            fragment = base.cache['stratum'] = notify_fragment(record).encode('ascii')
        difficulty = target_to_difficulty(target) * difficulty_factor
        head = b''.join((
            b'{"jsonrpc":"2.0","method":"mining.set_difficulty","params":[', repr(difficulty).encode('ascii'),
            b'],"id":', str(random.getrandbits(30)).encode('ascii'), b'}\n',
            b'{"jsonrpc":"2.0","method":"mining.notify","params":["'))
        clean_field = b',true],"id":' if clean else b',false],"id":'
        tail = b''.join((b'",', fragment, clean_field, str(random.getrandbits(30)).encode('ascii'), b'}\n'))
        parts = base.cache[key] = (head, tail)
    return parts[0] + job_id.encode('ascii') + parts[1]


class FanoutWork:
    """The bridge's stratum work per username during one new-work event (every connection of a
    username gets the same record and BaseWork; refusals are remembered too)."""

    def __init__(self, get_work: Callable[[Any], Any]) -> None:
        self.get_work = get_work
        self._found: dict[str, Any] = {}

    def __call__(self, username: Any) -> Any:
        key = username.raw
        found = self._found.get(key)
        if found is None:
            try:
                found = self.get_work(username)
            except Exception as e:   # WorkRefused/WorkUnavailable: raised again for each connection
                found = e
            self._found[key] = found
        if isinstance(found, Exception):
            raise found
        return found


class Fanout:
    """One new-work event: the work shared by username, and the writes (straight to the socket)."""

    def __init__(self, get_work: Callable[[Any], Any]) -> None:
        self.work = FanoutWork(get_work)

    def write(self, transport: Any, data: bytes) -> None:
        write_now(transport, data)

    def flush(self) -> None:
        """Nothing is held back now; a place for batching writes should a transport want it."""


def _idle(transport: Any) -> bool:
    """A plain TCP transport of Twisted with nothing queued to send (anything else: False)."""
    try:
        return bool(transport._tempDataLen == 0 and len(transport.dataBuffer) == transport.offset
                    and transport.connected and not transport.disconnecting and not transport._writeDisconnected
                    and transport.socket is not None)
    except AttributeError:
        return False


def write_now(transport: Any, data: bytes) -> None:
    """transport.write(data), sent at once when the transport has nothing queued (a plain TCP
    transport of Twisted; anything else simply gets write())."""
    if _idle(transport):
        try:
            sent = transport.socket.send(data)
        except OSError:      # would block, or a dead connection that write() will find out about
            sent = 0
        if sent >= len(data):
            return
        data = data[sent:]
    transport.write(data)
