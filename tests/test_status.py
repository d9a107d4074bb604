"""The console status lines (p2pool.app.status): numbers, binomial bounds, print schedule."""
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pool.sharechain.tracker import Tracker
from p2pool.app.status import (REPEAT_AFTER, StatusPrinter, binomial_center_radius, binomial_conf_interval,
                           format_binomial_conf, format_hash_rate, status_text)
from p2pool.web.api import LocalStats
from p2pool.testing.web_testnode import FixedNode, demo_node
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)

NOW = 1_800_000_000.0


def test_wilson_interval_known_values():
    # 95 % Wilson score intervals from the literature
    assert binomial_conf_interval(0, 10) == pytest.approx((0, 0.2775), abs=1e-4)
    assert binomial_conf_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert binomial_conf_interval(10, 10) == pytest.approx((0.7225, 1), abs=1e-4)
    center, radius = binomial_center_radius(2, 23)
    assert center - radius == pytest.approx(0.0241, abs=1e-4) and center + radius == pytest.approx(0.2680, abs=1e-4)
    with pytest.raises(ValueError):
        binomial_conf_interval(3, 2)


@given(st.integers(1, 10**6), st.data())
def test_interval_contains_the_estimate(n, data):
    x = data.draw(st.integers(0, n))
    left, right = binomial_conf_interval(x, n)
    assert 0 <= left <= x / n <= right <= 1


def test_formats():
    assert format_binomial_conf(0, 0) == '???'
    assert format_binomial_conf(5, 10) == '~50.0% (23-77%)'
    assert format_binomial_conf(5, 10, transform=lambda x: 1 - x) == '~50.0% (23-77%)'
    assert format_hash_rate(99999) == '99999'
    assert format_hash_rate(123456789) == '123M'
    assert format_hash_rate(12345678) == '12345k'
    assert format_hash_rate(3.2e15) == '3200T'


def test_status_lines_of_a_known_chain():
    node = demo_node(now=NOW)
    text, warnings = status_text(node, NOW)
    lines = text.splitlines()
    assert lines[0] == 'P2Pool: 150 shares in chain (152 verified/152 total) Peers: 3 (1 incoming)'
    assert lines[1].startswith(' Local: 3000MH/s in last 10.0 minutes Local dead on arrival: ~5.0% (')
    assert lines[2].startswith(' Shares: 23 (1 orphan, 1 dead) Stale rate: ~8.7% (2-27%) Efficiency: ~')
    assert lines[2].endswith('Current payout: 1.0334 BTC')
    assert re.fullmatch(r' Pool: \d+H/s Stale rate: 8\.4% Expected time to block: 7\.6 hours', lines[3])
    # 2 stales in 23 own shares: Wilson centre 14.6 %, half-width 12.2 %; pool stale proportion 8.4 %
    assert lines[4] == ' Pool stales: 8% Own: 15±12% Own efficiency: 93±13%'
    # the chain's tail is the pool's first share: a young pool's whole chain, in sync, so no Sync line
    assert len(lines) == 5
    assert warnings == []


def test_a_chain_missing_its_parents_shows_the_sync_line():
    node = demo_node(now=NOW)
    tracker = node.tracker
    first = next(share for share in tracker.items.values() if share.previous_hash is None)
    tracker.remove(first.hash)     # now the tallest chain's tail is a share nobody has
    text, _warnings = status_text(node, NOW)
    assert text.splitlines()[-1] == ' Sync: 149/8640 shares downloaded, 149/8640 verified'


def test_status_before_anything_is_known():
    node = FixedNode(demo_node(count=1).net, Tracker(), start_time=NOW)
    text, warnings = status_text(node, NOW)
    assert text.splitlines() == [
        'P2Pool: 0 shares in chain (0 verified/0 total) Peers: 0 (0 incoming)',
        ' Local: 0H/s in last 0.0 seconds Local dead on arrival: ??? Expected time to share: ???',
        ' Sync: 0/8640 shares downloaded, 0/8640 verified']
    assert warnings == []


def test_printer_repeats_only_after_a_while_and_frames_warnings():
    node = demo_node(now=NOW)
    now = [NOW]
    printed = []
    printer = StatusPrinter(node, write=printed.append, clock=lambda: now[0])
    printer.tick()
    assert len(printed) == 1 and printed[0].startswith('P2Pool: ')
    now[0] += 3
    printer.tick()
    assert len(printed) == 1                 # unchanged: not repeated yet
    now[0] += REPEAT_AFTER
    node.local = LocalStats(last_template_time=NOW - 100)     # bitcoind went quiet
    printer.tick()
    assert printed[1].startswith('#' * 40 + '\n>>> Warning: LOST CONTACT WITH BITCOIND for ')
    assert printed[2].startswith('P2Pool: ')


def test_printer_loop(reactor):  # noqa: F811
    node = demo_node(now=NOW)
    printed = []
    printer = StatusPrinter(node, write=printed.append)
    run_in_reactor(printer.start, reactor)
    run_in_reactor(printer.stop)
    assert printed and printed[-1].startswith('P2Pool: ')
