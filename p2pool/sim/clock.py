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

Only the calls due before the next whole second (`_limit`) are in the heap; later
ones wait in a bucket per whole second and enter the heap when their second comes
(cancelled ones are dropped then). Most pending entries are far-off timers (a
miner's next find, idle timeouts, pings), and most of those get cancelled or
reset; the heap that every message's delivery goes through stays a few dozen
entries deep. A heap entry with a smaller time is always popped before any bucket
is opened, so the order is the (time, sequence) order of one heap.

The classes here (PyVirtualClock, PyDelayedCall) are the reference. Where the optional C
accelerator p2pool/sim/_clock.c is built (setup.py), VirtualClock and DelayedCall are its
types instead: the same algorithm step for step (the same calls at the same times in the same
order, tests/test_sim_clock.py), without an interpreted loop and tuple per event.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

_clock_c: ModuleType | None
try:    # optional (setup.py): where it is not built, the Python classes below run the simulation
    from p2pool.sim import _clock as _clock_c
except ImportError:
    _clock_c = None

log = logging.getLogger(__name__)


class AlreadyDone(Exception):
    """cancel/reset of a call that already ran or was cancelled (as Twisted's AlreadyCalled)."""


class PyDelayedCall:
    """A pending call: active(), cancel(), reset(seconds), delay(seconds), getTime()."""

    __slots__ = ('clock', 'time', 'queued_time', 'func', 'args', 'kw', 'called', 'cancelled')

    def __init__(self, clock: PyVirtualClock, time: float, func: Callable[..., Any],
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
        if self.called or self.cancelled:
            raise AlreadyDone('call already done')
        self.time = self.clock.now + seconds
        if self.time < self.queued_time:
            self.clock.requeue(self)

    def delay(self, seconds: float) -> None:
        self.reset(self.time - self.clock.now + seconds)


class PyVirtualClock:
    """Simulated time; `run_until(t)` executes every call due up to t in time order (FIFO on ties)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.pending = 0
        self.executed = 0
        # (time, sequence, DelayedCall, _CALL) or (time, sequence, function, its one argument),
        # for the calls due before _limit; the others in _later (module docstring)
        self._heap: list[tuple[float, int, Any, Any]] = []
        self._limit = math.floor(start) + 1.0
        self._later: dict[int, list[tuple[float, int, Any, Any]]] = {}
        self._later_seconds: list[int] = []   # heap of the keys of _later
        self._seq = itertools.count()

    def seconds(self) -> float:
        return self.now

    def __call__(self) -> float:
        """The clock as a plain `clock()` function (ShareChain's injected clock)."""
        return self.now

    def _queue_later(self, entry: tuple[float, int, Any, Any]) -> None:
        second = math.floor(entry[0])
        bucket = self._later.get(second)
        if bucket is None:
            self._later[second] = [entry]
            heapq.heappush(self._later_seconds, second)
        else:
            bucket.append(entry)

    def callLater(self, delay: float, func: Callable[..., Any], *args: Any, **kw: Any) -> PyDelayedCall:
        when = self.now + delay if delay > 0 else self.now
        call = PyDelayedCall(self, when, func, args, kw)
        if when < self._limit:
            heapq.heappush(self._heap, (when, next(self._seq), call, _CALL))
        else:   # _queue_later, inlined: most timers go there
            second = math.floor(when)
            bucket = self._later.get(second)
            if bucket is None:
                self._later[second] = [(when, next(self._seq), call, _CALL)]
                heapq.heappush(self._later_seconds, second)
            else:
                bucket.append((when, next(self._seq), call, _CALL))
        self.pending += 1
        return call

    def deliver_at(self, when: float, func: Callable[[Any], Any], arg: Any) -> None:
        """func(arg) at `when` (not before now); it cannot be cancelled (module docstring)."""
        if when < self.now:
            when = self.now
        if when < self._limit:
            heapq.heappush(self._heap, (when, next(self._seq), func, arg))
        else:
            self._queue_later((when, next(self._seq), func, arg))
        self.pending += 1

    def requeue(self, call: PyDelayedCall) -> None:
        call.queued_time = call.time
        entry = (call.time, next(self._seq), call, _CALL)
        if call.time < self._limit:
            heapq.heappush(self._heap, entry)
        else:
            self._queue_later(entry)

    def _open_next_second(self) -> None:
        """Move the earliest bucket into the (empty) heap, without its dead calls."""
        second = heapq.heappop(self._later_seconds)
        self._limit = second + 1.0
        heap, push = self._heap, heapq.heappush
        for entry in self._later.pop(second):
            call = entry[2]
            if entry[3] is _CALL and (call.called or call.cancelled or entry[0] != call.queued_time):
                continue  # run_until would skip it
            push(heap, entry)

    def run_until(self, end: float) -> None:
        heap, pop, later_seconds = self._heap, heapq.heappop, self._later_seconds
        while True:
            if not heap:
                if not later_seconds or later_seconds[0] > end:
                    break
                self._open_next_second()
                continue
            if heap[0][0] > end:
                break
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
                self.requeue(call)
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


def report_failure(func: Any, exception: BaseException) -> None:
    """How the C clock logs a call that raised (as run_until above does)."""
    log.error('simulated call %r failed', func, exc_info=exception)


if TYPE_CHECKING or _clock_c is None:
    VirtualClock = PyVirtualClock
    DelayedCall = PyDelayedCall
else:
    _clock_c.configure(AlreadyDone, report_failure)
    VirtualClock = _clock_c.VirtualClock
    DelayedCall = _clock_c.DelayedCall
