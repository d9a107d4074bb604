"""Token buckets for the per-peer rate limits of the P2P protocol.

A bucket holds at most `capacity` tokens and refills at `rate` tokens per second
of the clock it is given (the reactor, or twisted.internet.task.Clock in tests).
A request costing n tokens is allowed when n tokens are available; a refused
request takes nothing, so a peer that slows down regains its allowance.
"""


class TokenBucket:
    """`capacity` tokens, refilled continuously at `rate` per second of clock.seconds()."""

    def __init__(self, capacity, rate, clock):
        if capacity <= 0 or rate < 0:
            raise ValueError('a token bucket needs capacity > 0 and rate >= 0')
        self.capacity, self.rate, self.clock = float(capacity), float(rate), clock
        self.tokens = float(capacity)
        self._updated = clock.seconds()

    def _refill(self):
        now = self.clock.seconds()
        # A clock stepping backwards must not mint tokens from negative time.
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)

    def available(self):
        self._refill()
        return self.tokens

    def take(self, cost=1):
        """Consume `cost` tokens and return True, or take nothing and return False."""
        self._refill()
        if cost <= self.tokens:
            self.tokens -= cost
            return True
        return False

    def __repr__(self):
        return 'TokenBucket(%.1f/%.1f, %.2f/s)' % (self.tokens, self.capacity, self.rate)
