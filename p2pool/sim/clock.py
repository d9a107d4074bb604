"""One virtual clock for every simulated node: an event queue in simulated seconds.

VirtualClock offers the part of Twisted's IReactorTime the node's code uses
(`callLater`, `seconds`), so P2PNode, PeerConnection, ShareSync, the token
buckets and `task.deferLater` run on it unchanged. It is a binary heap, not
`task.Clock` (which re-sorts its whole list on every `callLater`): a run of
1,000 nodes keeps ~10^5 timers pending.

`DelayedCall.reset` to a later time (every received message resets a peer's idle
timer) only records the new time; the stale heap entry re-queues the call when
it comes up, so resets cost O(1).

`deliver_at(when, func, arg)` queues a call that is never cancelled nor reset (the
links' byte deliveries, most of all events) without a DelayedCall: a heap entry
of its own, run in the same time order (FIFO on ties) as every other call.
"""
from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class AlreadyDone(Exception):
    """cancel/reset of a call that already ran or was cancelled (as Twisted's AlreadyCalled)."""


class DelayedCall:
    """A pending call: active(), cancel(), reset(seconds), delay(seconds), getTime()."""

    __slots__ = ('clock', 'time', 'queued_time', 'func', 'args', 'kw', 'called', 'cancelled')

    def __init__(self, clock: VirtualClock, time: float, func: Callable[..., Any],
                 args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        self.clock, self.time, self.queued_time = clock, time, time
        self.func, self.args, self.kw = func, args, kw
        self.called = self.cancelled = False

    def active(self) -> bool:
        return not (self.called or self.cancelled)

    def getTime(self) -> float:
        return self.time

    def cancel(self) -> None:
        if not self.active():
            raise AlreadyDone('call already %s' % ('called' if self.called else 'cancelled'))
        self.cancelled = True
        self.clock.pending -= 1

    def reset(self, seconds: float) -> None:
        if not self.active():
            raise AlreadyDone('call already done')
        self.time = self.clock.now + seconds
        if self.time < self.queued_time:
            self.clock.requeue(self)

    def delay(self, seconds: float) -> None:
        self.reset(self.time - self.clock.now + seconds)


class VirtualClock:
    """Simulated time; `run_until(t)` executes every call due up to t in time order (FIFO on ties)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.pending = 0
        self.executed = 0
        # (time, sequence, DelayedCall, _CALL) or (time, sequence, function, its one argument)
        self._heap: list[tuple[float, int, Any, Any]] = []
        self._seq = itertools.count()

    def seconds(self) -> float:
        return self.now

    def __call__(self) -> float:
        """The clock as a plain `clock()` function (ShareChain's injected clock)."""
        return self.now

    def callLater(self, delay: float, func: Callable[..., Any], *args: Any, **kw: Any) -> DelayedCall:
        when = self.now + delay if delay > 0 else self.now
        call = DelayedCall(self, when, func, args, kw)
        heapq.heappush(self._heap, (when, next(self._seq), call, _CALL))
        self.pending += 1
        return call

    def deliver_at(self, when: float, func: Callable[[Any], Any], arg: Any) -> None:
        """func(arg) at `when` (not before now); it cannot be cancelled (module docstring)."""
        heapq.heappush(self._heap, (when if when > self.now else self.now, next(self._seq), func, arg))
        self.pending += 1

    def requeue(self, call: DelayedCall) -> None:
        call.queued_time = call.time
        heapq.heappush(self._heap, (call.time, next(self._seq), call, _CALL))

    def run_until(self, end: float) -> None:
        heap, pop, push, seq = self._heap, heapq.heappop, heapq.heappush, self._seq
        while heap and heap[0][0] <= end:
            when, _, call, arg = pop(heap)
            if arg is not _CALL:   # a deliver_at entry: call is the function
                self.now = when
                self.pending -= 1
                self.executed += 1
                try:
                    call(arg)
                except Exception:
                    log.exception('simulated call %r failed', call)
                continue
            if call.called or call.cancelled or when != call.queued_time:
                continue  # done already, or an entry left behind by an earlier reset
            if call.time > when:  # reset to a later time while queued: queue it again
                call.queued_time = call.time
                push(heap, (call.time, next(seq), call, _CALL))
                continue
            self.now = when
            call.called = True
            self.pending -= 1
            self.executed += 1
            try:
                call.func(*call.args, **call.kw)
            except Exception:  # as the reactor does: log the failed call and go on
                log.exception('simulated call %r failed', call.func)
        self.now = max(self.now, end)


#: the fourth element of a DelayedCall's heap entry
_CALL: Any = object()
