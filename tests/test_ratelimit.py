"""TokenBucket: charges with the caller's clock reading are the same as with the bucket's own."""
from twisted.internet import task

from p2pool.util.ratelimit import TokenBucket


def test_a_given_clock_reading_charges_as_the_clock_does():
    clock = task.Clock()
    own, given = TokenBucket(3, 2.0, clock), TokenBucket(3, 2.0, clock)
    for step, cost in [(0, 2), (0, 2), (0.25, 1), (0.5, 1), (0, 2), (10, 3), (0, 1)]:
        clock.advance(step)
        assert own.take(cost) == given.take(cost, clock.seconds())
        assert own.tokens == given.tokens <= 3


def test_a_refused_charge_takes_nothing_and_a_clock_going_back_mints_nothing():
    clock = task.Clock()
    bucket = TokenBucket(2, 1.0, clock)
    assert bucket.take(2, 0.0) and not bucket.take(1, 0.5)
    assert bucket.tokens == 0.5
    assert not bucket.take(1, 0.25)     # earlier than the last charge: no refill
    assert bucket.take(1, 0.75) and bucket.tokens == 0.0
    assert bucket.take(2, 100.0) and bucket.tokens == 0.0   # refilled to the capacity, not beyond
