"""Token buckets: the per-peer limits of the P2P protocol and rate-limited log lines.

A bucket holds at most `capacity` tokens and refills at `rate` tokens per second
of the clock it is given (anything with `seconds()`: the reactor, or
twisted.internet.task.Clock in tests). A request costing n tokens is allowed when
n tokens are available; a refused request takes nothing, so a source that slows
down regains its allowance.

`KeyedLimit` keeps one bucket per key (a source address), at most `max_keys` of
them (the least recently used go first), and counts what it refused, so that a
rate-limited log line can say how many it left out.
"""
from collections import OrderedDict
from typing import Callable, Hashable, Protocol


class Clock(Protocol):
    def seconds(self) -> float: ...


class TokenBucket:
    """`capacity` tokens, refilled continuously at `rate` per second of clock.seconds()."""

    __slots__ = ('capacity', 'rate', 'clock', 'tokens', '_seconds', '_updated')   # several per peer connection

    def __init__(self, capacity: float, rate: float, clock: Clock) -> None:
        if capacity <= 0 or rate < 0:
            raise ValueError('a token bucket needs capacity > 0 and rate >= 0')
        self.capacity, self.rate, self.clock = float(capacity), float(rate), clock
        self.tokens = float(capacity)
        self._seconds = clock.seconds
        self._updated = self._seconds()

    def _refill(self) -> None:
        now = self.clock.seconds()
        # A clock stepping backwards must not mint tokens from negative time.
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)

    def available(self) -> float:
        self._refill()
        return self.tokens

    def take(self, cost: float = 1, now: float | None = None) -> bool:
        """Consume `cost` tokens and return True, or take nothing and return False.

        `now` is the clock's reading when the caller has one already: a peer's message is
        charged to several buckets at the same instant, and the clock is read once for all."""
        # _refill inlined (min() spelt as a comparison): every message a peer sends is charged here
        if now is None:
            now = self._seconds()
        elapsed = now - self._updated
        self._updated = now
        tokens = self.tokens
        if elapsed > 0:
            tokens += elapsed * self.rate
            if tokens > self.capacity:
                tokens = self.capacity
        if cost <= tokens:
            self.tokens = tokens - cost
            return True
        self.tokens = tokens
        return False

    def __repr__(self) -> str:
        return 'TokenBucket(%.1f/%.1f, %.2f/s)' % (self.tokens, self.capacity, self.rate)


class KeyedLimit:
    """One TokenBucket(capacity, rate) per key; `allow(key)` takes a token from the key's bucket.

    `take_suppressed(key)` is how many requests of that key were refused since it was last allowed,
    for a log line such as "... (12 more like this not shown)".
    """

    def __init__(self, capacity: float, rate: float, clock: Clock, max_keys: int = 10000) -> None:
        if max_keys <= 0:
            raise ValueError('a keyed limit needs max_keys > 0')
        self.capacity, self.rate, self.clock, self.max_keys = capacity, rate, clock, max_keys
        self._buckets: 'OrderedDict[Hashable, TokenBucket]' = OrderedDict()
        self._refused: dict[Hashable, int] = {}

    def allow(self, key: Hashable) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.capacity, self.rate, self.clock)
            while len(self._buckets) > self.max_keys:
                oldest, _ = self._buckets.popitem(last=False)
                self._refused.pop(oldest, None)
        else:
            self._buckets.move_to_end(key)
        if bucket.take():
            return True
        self._refused[key] = self._refused.get(key, 0) + 1
        return False

    def take_suppressed(self, key: Hashable) -> int:
        """How many of `key`'s requests were refused since this was last asked (and reset to 0)."""
        return self._refused.pop(key, 0)


class FunctionClock:
    """A Clock from a plain time function such as time.time."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now

    def seconds(self) -> float:
        return self.now()
