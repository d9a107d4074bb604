"""Stratum `mining.set_difficulty` + `mining.notify` to every connection at once (the fan-out).

A new block sends a notify to every miner at once; with 10,000 connections the per-connection
cost is what a farm waits for, so `Fanout.send` does the least it can per connection:

* the bridge is asked once per username (`_UserWork`), refusals included;
* per (username, target) one Job record (jobs.py: shared by those connections, as the event's
  job id is; nothing older is rewritten) and the two lines encoded once (`notify_parts`, with
  clean_jobs false and true), so that a connection only picks one and sends it;
* the bytes go straight to the socket when nothing is queued for it, one send() instead of a
  trip through the reactor's write loop with two epoll changes; anything left over, or any
  transport that is not a plain Twisted TCP one, goes through transport.write() as usual.

(Sending from several threads at once was tried: on a loaded 2-core machine it gained nothing.)
A connection that is not yet subscribed and authorized, or is closing, is left out.
"""
from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.tcp import Connection

from p2pool.bitcoin.data import target_to_difficulty
from p2pool.util.untrusted import shown
from p2pool.work.bridge import WorkRefused, WorkUnavailable
from p2pool.work.jobs import MAX_JOBS, Job, trim
from p2pool.work.targets import fixed_target_floor

log = logging.getLogger(__name__)


def notify_fragment(record: Any) -> str:
    """The job-independent part of mining.notify's params (§7.2 encodings), JSON text."""
    swapped_prev = record.previous_block.to_bytes(32, 'little')
    swapped_prev = b''.join(swapped_prev[i:i + 4][::-1] for i in range(0, 32, 4))
    return json.dumps([
        swapped_prev.hex(), record.coinb1.hex(), record.coinb2.hex(),
        [h.to_bytes(32, 'little').hex() for h in record.merkle_link['branch']],
        '%08x' % record.version, '%08x' % record.bits, '%08x' % record.timestamp,
    ], separators=(',', ':'))[1:-1]


def notify_parts(base: Any, record: Any, target: int, difficulty_factor: float) -> tuple[bytes, bytes, bytes]:
    """(head, tail with clean_jobs false, tail with clean_jobs true): set_difficulty for `target`
    and a notify of `record` are head + job id + tail, newline-ended.

    Cached in base.cache (one BaseWork serves many connections); the notification ids are
    random per cached part, as the original sends random ids."""
    key = ('stratum', target)
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
        tails = tuple(b''.join((b'",', fragment, clean_field, str(random.getrandbits(30)).encode('ascii'), b'}\n'))
                      for clean_field in (b',false],"id":', b',true],"id":'))
        parts = base.cache[key] = (head, tails[0], tails[1])
    return parts


def notify_bytes(base: Any, record: Any, target: int, job_id: str, clean: bool, difficulty_factor: float) -> bytes:
    """set_difficulty for `target` and a notify of `record` as job `job_id` (clean_jobs `clean`)."""
    head, kept, cleaned = notify_parts(base, record, target, difficulty_factor)
    return head + job_id.encode('ascii') + (cleaned if clean else kept)


def direct_sender(transport: Any) -> Callable[[bytes], int] | None:
    """The socket's send() of a plain Twisted TCP transport (whose write buffer `write_now` can
    see), or None: anything else only ever gets transport.write()."""
    if isinstance(transport, Connection) and getattr(transport, 'socket', None) is not None:
        send: Callable[[bytes], int] = transport.socket.send
        return send
    return None


def write_now(transport: Any, data: bytes, send: Callable[[bytes], int] | None) -> None:
    """transport.write(data), sent at once with `send` (direct_sender's) when nothing is queued.
    (Fanout.send does the same inline.)"""
    if send is not None and not transport._tempDataLen and not transport.dataBuffer:
        try:
            sent = send(data)
        except OSError:      # would block, or a dead connection that write() will find out about
            sent = 0
        if sent >= len(data):
            return
        data = data[sent:]
    transport.write(data)


class _UserWork:
    """One username's work during one new-work event, and its jobs and bytes per target."""

    __slots__ = ('record', 'base', 'refusal', 'block', 'share_target', 'min_share_target', 'block_target',
                 'fixed_floor', 'by_target')

    def __init__(self, found: Any) -> None:
        self.by_target: dict[int, tuple[Any, bytes, bytes]] = {}
        if isinstance(found, Exception):
            self.refusal: Exception | None = found
            return
        self.refusal = None
        record, base = found
        self.record, self.base, self.block = record, base, record.previous_block
        self.share_target, self.min_share_target = record.share_target, record.min_share_target
        self.block_target = record.block_target
        self.fixed_floor = fixed_target_floor(record.block_target, record.min_share_target)


class Fanout:
    """One new-work event: every ready connection gets job `number`, issued at `now`.

    The connections are StratumProtocols; what is read and written of them here: username,
    subscribed, connected, transport, vardiff, jobs, last_block (the parent block of its newest
    job: clean_jobs when it changes), direct_send, refuse_work. Jobs beyond MAX_JOBS go at once;
    the expired ones are StratumFactory's to drop, after the sends."""

    def __init__(self, get_work: Callable[[Any], Any], number: int, now: float, difficulty_factor: float) -> None:
        self.get_work, self.now, self.difficulty_factor = get_work, now, difficulty_factor
        self.job_id = str(number)
        self.works: dict[str, _UserWork] = {}

    def work(self, username: Any) -> _UserWork:
        try:
            found = self.get_work(username)
        except (WorkRefused, WorkUnavailable) as e:     # every connection of the username hears it
            found = e
        except Exception as e:     # a fault of ours: said once, and the others still get their work
            log.exception('Stratum work for %s failed', shown(username.raw))
            found = e
        work = self.works[username.raw] = _UserWork(found)
        return work

    def entry(self, work: _UserWork, target: int) -> tuple[Any, bytes, bytes]:
        """(the Job, the bytes with clean_jobs false, with clean_jobs true)."""
        head, kept, cleaned = notify_parts(work.base, work.record, target, self.difficulty_factor)
        job_id = self.job_id.encode('ascii')
        entry = work.by_target[target] = (Job(work.record, work.base, target, self.now),
                                          head + job_id + kept, head + job_id + cleaned)
        return entry

    def send(self, connections: Iterable[Any]) -> None:
        works, job_id = self.works, self.job_id
        for connection in connections:
            username = connection.username
            if username is None or not connection.subscribed or not connection.connected:
                continue
            transport = connection.transport
            if transport.disconnecting:
                continue
            work = works.get(username.raw)
            if work is None:
                work = self.work(username)
            if work.refusal is not None:
                if isinstance(work.refusal, (WorkRefused, WorkUnavailable)):
                    connection.refuse_work(work.refusal)
                continue
            vardiff = connection.vardiff
            fixed = vardiff.fixed_target
            if fixed is not None:     # Vardiff.job_target's answer for a fixed target, without the call
                floor = work.fixed_floor
                target = fixed if fixed > floor else floor
            else:
                target = vardiff.job_target(work.share_target, work.min_share_target, work.block_target)
            entry = work.by_target.get(target)
            if entry is None:
                entry = self.entry(work, target)
            jobs = connection.jobs
            jobs[job_id] = entry[0]
            if len(jobs) > MAX_JOBS:
                trim(jobs)
            if connection.last_block == work.block:
                data = entry[1]
            else:
                connection.last_block = work.block
                data = entry[2]
            send = connection.direct_send
            if send is not None and not transport._tempDataLen and not transport.dataBuffer:
                try:
                    sent = send(data)
                except OSError:      # would block, or a dead connection that write() will find out about
                    sent = 0
                if sent == len(data):
                    continue
                data = data[sent:]
            transport.write(data)
