"""The simulator's virtual clock (p2pool/sim/clock.py): the optional C clock (_clock.c) runs every
random schedule exactly as the Python reference does: the same calls at the same times in the same order."""
import logging
import random

import pytest

from p2pool.sim import clock as clock_module
from p2pool.sim.clock import AlreadyDone, PyVirtualClock

C_CLOCK = clock_module._clock_c.VirtualClock if clock_module._clock_c is not None else None
needs_c_clock = pytest.mark.skipif(C_CLOCK is None, reason='the C clock p2pool/sim/_clock.c is not built here '
                                                           '(no compiler or Python headers at install)')
#: delays with ties, whole seconds and fractions that land on second boundaries
DELAYS = (0.0, 0.0, -0.5, 0.25, 0.5, 0.75, 1.0, 1.0, 1.5, 2.0, 2.25, 3.0, 7.0, 0.1, 0.3, 12.5)


def run_schedule(clock_class, seed, steps=200):
    """Drive a clock with random callLater/deliver_at/reset/delay/cancel, from outside and from the
    calls themselves; returns what happened, in order."""
    rng = random.Random(seed)
    clock = clock_class(1000.0 + rng.choice((0.0, 0.3, 0.999)))
    log, live, counter = [], [], [0]

    def act():
        choice = rng.random()
        if choice < 0.35 or not live:
            counter[0] += 1
            live.append(clock.callLater(rng.choice(DELAYS) * rng.choice((1, 1, 3)), ran, 'call%d' % counter[0],
                                        extra=counter[0]))
        elif choice < 0.55:
            counter[0] += 1
            clock.deliver_at(clock.seconds() + rng.choice(DELAYS), delivered, 'deliver%d' % counter[0])
        else:
            call = rng.choice(live[-8:])
            try:
                if choice < 0.7:
                    call.reset(rng.choice(DELAYS))
                elif choice < 0.8:
                    call.delay(rng.choice(DELAYS))
                elif choice < 0.9:
                    call.cancel()
                else:
                    log.append(('active', call.active(), call.getTime()))
            except AlreadyDone as e:
                log.append(('done', str(e)))

    def ran(label, extra):
        log.append((clock.seconds(), label, extra))
        if rng.random() < 0.1:
            raise ValueError('a failing call')
        for _ in range(rng.choice((0, 1, 1, 2))):
            act()

    def delivered(label):
        log.append((clock.seconds(), label))
        for _ in range(rng.choice((0, 1, 2))):
            act()

    for _ in range(steps):
        for _ in range(rng.randrange(6)):
            act()
        clock.run_until(clock.seconds() + rng.choice((0.0, 0.2, 0.5, 1.0, 1.7, 3.0)))
        log.append(('run', clock.seconds(), clock.pending, clock.executed))
    clock.run_until(clock.seconds() + 1000)
    log.append(('end', clock.seconds(), clock.pending, clock.executed))
    return log


@needs_c_clock
@pytest.mark.parametrize('seed', range(12))
def test_c_clock_runs_random_schedules_as_the_python_clock(seed, caplog):
    with caplog.at_level(logging.CRITICAL, logger='p2pool.sim.clock'):
        reference = run_schedule(PyVirtualClock, seed)
        assert run_schedule(C_CLOCK, seed) == reference
    assert len(reference) > 700 and any(entry[0] == 'done' for entry in reference)


@needs_c_clock
def test_c_clock_logs_a_failed_call_and_goes_on_but_lets_keyboard_interrupt_through(caplog):
    clock, ran = C_CLOCK(5.0), []

    def fails():
        raise ValueError('broken')

    def interrupts():
        raise KeyboardInterrupt

    clock.callLater(1, fails)
    clock.callLater(2, ran.append, 'after')
    with caplog.at_level(logging.ERROR, logger='p2pool.sim.clock'):
        clock.run_until(8)
    assert ran == ['after'] and 'simulated call' in caplog.text and 'broken' in caplog.text
    clock.deliver_at(9.0, lambda _: interrupts(), None)
    with pytest.raises(KeyboardInterrupt):
        clock.run_until(20)
    assert clock.seconds() == 9.0 and clock.pending == 0 and clock() == 9.0


@needs_c_clock
def test_c_delayed_call_interface():
    clock = C_CLOCK(10.0)
    call = clock.callLater(2.5, dict, a=1)
    assert call.active() and call.getTime() == 12.5 and call.kw == {'a': 1} and call.args == ()
    call.delay(1)
    assert call.getTime() == 13.5
    call.cancel()
    assert not call.active() and call.cancelled and clock.pending == 0
    with pytest.raises(AlreadyDone):
        call.cancel()
    with pytest.raises(AlreadyDone):
        call.reset(1)
    with pytest.raises(TypeError):
        clock.callLater(1)


def exchange(clock_class, inbox_class, uplink_class, link_class, seed):
    """Random writes both ways over two lossy links sharing one host's uplink, closes included;
    returns every delivery as (time, link, bytes) in the order the clock ran them."""
    rng, loss_rng = random.Random(seed), random.Random(seed + 100)
    clock = clock_class(50.0)
    shared = uplink_class()
    delivered = []
    inboxes = [inbox_class() for _ in range(3)]
    for index, inbox in enumerate(inboxes):
        inbox.receiver = lambda data, index=index: delivered.append((clock.seconds(), index, data))
    links = [link_class(clock, shared, 0.05, 1e5, None),
             link_class(clock, shared, 0.3, 1e5, lambda: loss_rng.random() < 0.2),
             link_class(clock, uplink_class(), 0.011, 2e4, None)]
    for link, inbox in zip(links, inboxes):
        link.inbox = inbox
    for step in range(300):
        link = rng.choice(links)
        link.write(bytes(rng.randrange(1, 3000)))
        if step == 200:
            inboxes[2].closed = True            # the receiver went away: nothing more arrives there
        if step == 250:
            links[0].closed = True              # the sender went away: it writes nothing more
        clock.run_until(clock.seconds() + rng.choice((0.0, 0.0, 0.01, 0.2)))
    clock.run_until(clock.seconds() + 100)
    return delivered, [link.last_arrival for link in links], shared.bytes_sent


@needs_c_clock
@pytest.mark.parametrize('seed', range(4))
def test_c_links_deliver_as_the_python_links(seed):
    from p2pool.sim import links
    reference = exchange(PyVirtualClock, links.PyInbox, links.PyUplink, links.PyLink, seed)
    c = clock_module._clock_c
    assert exchange(c.VirtualClock, c.Inbox, c.Uplink, c.Link, seed) == reference
    assert len(reference[0]) > 200
