"""The web interface against web.md: shapes and values the other web tests do not pin
down, odd and hostile request paths, the graph sources' bookkeeping, the console status
lines and the LocalStats the running node's facade (p2pool.app.views) builds from the work bridge.
"""
import json
import types

import pytest

from p2pool.bitcoin.address import donation_address
from p2pool.bitcoin.data import target_to_average_attempts, target_to_difficulty
from p2pool.sharechain.stats import StaleAccounting
from p2pool.sharechain.tracker import Tracker
from p2pool.app.status import status_text
from p2pool.app.views import WebNodeView
from p2pool.web import WebService
from p2pool.web.api import LocalStats, PeerInfo
from p2pool.testing.web_testnode import FixedNode, demo_node, fetch, listen
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)
from worker_helpers import header_for, make_bridge, make_template, solve

NOW = 1_800_000_000.0
UNKNOWN = '12' * 32


@pytest.fixture(scope='module')
def served(reactor):  # noqa: F811 (the fixture from twisted_helpers)
    node = demo_node(now=NOW)
    service = WebService(node, clock=lambda: NOW)
    port = run_in_reactor(lambda: listen(node, service, reactor))
    yield node, 'http://127.0.0.1:%d' % port.getHost().port
    run_in_reactor(port.stopListening)


def one_line(body):
    text = body.decode()
    assert text.endswith('\n') and '\n' not in text[:-1] and 'Traceback' not in text, text
    return text.strip()


# --- web.md §2.3: unknown shares ---------------------------------------------------------

def test_unknown_share_is_null(served):
    _node, base = served
    status, headers, body = fetch(base + '/web/share/' + UNKNOWN)
    assert status == 200 and headers['content-type'] == 'application/json'
    assert json.loads(body) is None


def test_unknown_share_data_is_empty(served):
    _node, base = served
    status, headers, body = fetch(base + '/web/share_data/' + UNKNOWN)
    assert status == 200 and headers['content-type'] == 'application/octet-stream'
    assert body == b''


# --- bad arguments: 400/404 with one line, never a 500 ---------------------------------------

@pytest.mark.parametrize('path, code', [
    ('/web/share/zz', 400),
    ('/web/share/' + '1' * 65, 400),
    ('/web/share/-1', 400),                  # int(text, 16) would take these: not display hex
    ('/web/share/0x1f', 400),
    ('/web/share/+1f', 400),
    ('/web/share/1_f', 400),
    ('/web/share/%201', 400),
    ('/web/share/%ff', 400),
    ('/web/share/' + 'a' * 10000, 400),
    ('/web/share_data/0x12', 400),
    ('/web/payout_address/-12', 400),
    ('/web/payout_address/' + UNKNOWN, 404),
    ('/patron_sendmany/1e400', 400),
    ('/patron_sendmany/nan', 400),
    ('/patron_sendmany/-inf', 400),
    ('/patron_sendmany/1/1e400', 400),
    ('/patron_sendmany/1/nan', 400),
    ('/patron_sendmany/0x10', 400),
    ('/patron_sendmany/%00', 400),
    ('/patron_sendmany/1/2/3', 404),
    ('/graph_data/x/y/z', 404),
    ('/web/graph_data/x/y/z', 404),
    ('/web/graph_data/x/y?a=b', 404),
    ('/web/graph_data/%ff/last_day', 404),
    ('/web', 404),
    ('/web/', 404),
    ('/web/' + 'x' * 5000, 404),
    ('/' + 'y' * 5000 + '?q=1', 404),
    ('/rate/extra?x=1', 404),
], ids=lambda value: str(value)[:40])
def test_odd_paths_are_refused_with_one_line(served, path, code):
    _node, base = served
    status, headers, body = fetch(base + path)
    assert status == code, (path, status, body[:200])
    assert headers['content-type'].startswith('text/plain')
    assert len(one_line(body)) < 300


def test_query_strings_are_ignored(served):
    _node, base = served
    plain = fetch(base + '/web/graph_data/peers/last_day')
    asked = fetch(base + '/web/graph_data/peers/last_day?x=1&y')
    assert plain[0] == asked[0] == 200 and plain[2] == asked[2]
    assert fetch(base + '/rate?a=b')[2] == fetch(base + '/rate')[2]


@pytest.mark.parametrize('path', ['/rate', '/web/share/' + UNKNOWN, '/web', '/static/index.html', '/'])
def test_other_methods_get_a_one_line_refusal(served, path):
    import urllib.error
    import urllib.request
    _node, base = served
    request = urllib.request.Request(base + path, data=b'{}', method='POST')
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError('POST %s should be refused' % path)
    except urllib.error.HTTPError as error:
        assert error.code in (404, 405), (path, error.code)
        one_line(error.read())


# --- web.md §1: coin amounts are satoshi / 1e8 -----------------------------------------------

def test_current_payouts_are_satoshis_divided_by_1e8(reactor):  # noqa: F811
    node = demo_node(now=NOW)
    node.work = dict(node.work, coinbasevalue=625000000)
    shares = node.demo_chain.shares
    subsidy = node.work['coinbasevalue']
    weights, total = {}, 0
    for share in shares:
        weights[share.payout_address] = weights.get(share.payout_address, 0) + share.work * (65535 - share.donation)
        total += share.work * 65535
    expected = {address: subsidy * weight // total for address, weight in weights.items()}
    donation = donation_address(node.net.PARENT)
    expected[donation] = subsidy - sum(expected.values())
    # the check only means something if x * 1e-8 and x / 1e8 differ for one of the amounts
    assert any(amount * 1e-8 != amount / 1e8 for amount in expected.values())
    port = run_in_reactor(lambda: listen(node, None, reactor))
    try:
        status, _headers, body = fetch('http://127.0.0.1:%d/current_payouts' % port.getHost().port)
    finally:
        run_in_reactor(port.stopListening)
    assert status == 200
    assert json.loads(body) == {address: amount / 1e8 for address, amount in expected.items()}


# --- web.md §2.4: graph sources -----------------------------------------------------------------

class _Share:
    def __init__(self, share_hash, work):
        self.hash, self.work = share_hash, work


def _latest(service, source, now):
    """The newest non-empty bin value of `source` in the last-hour view."""
    for _center, value, _width, _default in service.history.graph_data(source, 'last_hour', now):
        if value:
            return value
    return None


def test_local_share_not_connected_to_the_best_chain_counts_as_orphan():
    node = demo_node(now=NOW)
    service = WebService(node, clock=lambda: NOW)
    lost = _Share(0xdead, 1000)              # never reached the tracker (or was forgotten)
    service.on_local_share(lost, dead=False, now=NOW - 300)
    service.settle_local_shares(NOW)
    value = _latest(service, 'local_share_hash_rates', NOW)
    assert value['good'] == 0 and value['orphan'] > 0


def test_five_second_points_wait_for_height_10():
    net = demo_node(count=1).net
    node = FixedNode(net, Tracker(), start_time=NOW - 5,
                     peer_list=[PeerInfo('10.0.0.1', net.P2P_PORT, False)])
    service = WebService(node, clock=lambda: NOW)
    service.sample(NOW)
    for source in ('peers', 'memory_usage', 'pool_rates'):
        assert all(value is None for _c, value, _w, _d in service.history.graph_data(source, 'last_hour', NOW)), \
            source
    grown = demo_node(now=NOW)
    service = WebService(grown, clock=lambda: NOW)
    service.sample(NOW)
    assert _latest(service, 'peers', NOW) == {'incoming': 1, 'outgoing': 2}


# --- console status ------------------------------------------------------------------------------

def test_pool_stales_round_half_up():
    # 7 shares, one announcing a stale: average_stale_prop = 1 / (7 + 1) = 12.5 %
    node = demo_node(count=7, now=NOW)
    line = [text for text in status_text(node, NOW)[0].splitlines() if 'Pool stales' in text][0]
    assert line.startswith(' Pool stales: 13% Own: ')


def test_time_to_share_uses_the_share_targets_of_the_work():
    node = demo_node(now=NOW)
    node.local.share_rate = 1 / 90.0           # one share every 90 s at the miners' share targets
    line = status_text(node, NOW)[0].splitlines()[1]
    assert line.endswith('Expected time to share: 1.5 minutes')


# --- p2pool.app.views: LocalStats from a real work bridge -------------------------------------------

def _view_over(env, now):
    chain = types.SimpleNamespace(tracker=env.tracker, best_share_hash=types.SimpleNamespace(value=None))
    chain.stale = StaleAccounting(env.tracker, lambda: None)
    bitcoind = types.SimpleNamespace(source=env.source)
    return WebNodeView(env.net, chain, None, bitcoind, env.bridge, env.node_address, 0.0, 0.0, None,
                       start_time=now)


def test_local_stats_from_the_bridge():
    from p2pool.testing.testchain import make_addresses
    clock = [NOW]
    env = make_bridge(template=make_template(now=NOW), clock=lambda: clock[0])
    view = _view_over(env, NOW)
    miner = make_addresses(env.net, 1, seed=b'miner')[0]
    record, handler = env.bridge.get_work(miner + '.rig1')
    works = []
    for step in range(4):                    # the first one only starts the monitor's clock
        clock[0] = NOW + 10 * step
        header = solve(header_for(record, b'\x00' * 4), env.net.PARENT.pow_hash, target=record.share_target,
                       start=step * 100000)
        result = handler(header)
        assert result.pseudoshare == 'accepted'
        works.append(target_to_average_attempts(record.share_target))
    env.bridge.bump('a new block')            # the work cache is gone, the last target issued is not
    clock[0] = NOW + 40
    stats = view.local_stats()
    assert isinstance(stats, LocalStats)
    assert stats.rate_window == 40            # measured on the bridge's clock, like local_rates()
    assert stats.pseudoshares == 3 and stats.dead_pseudoshares == 0
    assert stats.hash_rate == pytest.approx(sum(works[1:]) / 40)
    assert stats.miner_hash_rates == {miner + '.rig1': pytest.approx(sum(works[1:]) / 40)}
    assert stats.miner_last_difficulties == {miner + '.rig1': target_to_difficulty(record.min_share_target)}
    assert stats.share_rate == pytest.approx(sum(works[1:]) / 40 / target_to_average_attempts(record.min_share_target))
    assert stats.last_template_time == NOW


def test_getwork_latency_is_recorded_for_each_template():
    env = make_bridge(template=make_template(now=NOW))
    view = _view_over(env, NOW)
    service = WebService(view, clock=lambda: NOW)
    env.source.last_latency = 0.25
    env.source.set(make_template(now=NOW, previous_block=0x5678))
    assert _latest(service, 'getwork_latency', NOW + 1) == 0.25


def test_loading_then_starting_keeps_one_copy_of_the_stat_log(tmp_path, reactor):  # noqa: F811
    from p2pool.store.sharestore import ShareStore
    store = ShareStore(tmp_path / 'p2pool.sqlite3')
    try:
        node = demo_node(now=NOW, history_store=store)
        assert WebService(node, clock=lambda: NOW).add_stat_entry() is not None
        restarted = WebService(demo_node(now=NOW, history_store=store), clock=lambda: NOW)
        restarted.load()                        # what p2pool.app.main does before start()
        run_in_reactor(restarted.start, reactor)
        run_in_reactor(restarted.stop)
        assert len(restarted.stat_log.entries()) == 1
    finally:
        store.close()


# --- issue 16 finding 6: NUL bytes and segments that are not UTF-8 --------------------------------

@pytest.mark.parametrize('path', ['/static/%00', '/static/index.html%00.js', '/static/%c0%ae', '/static/%ff%fe/x',
                                  '/static/a%5cb', '/web/%c0%ae', '/%00', '/web/share/%00', '/patron_sendmany/%c0',
                                  '/web/graph_data/%00/last_day', '/static/%1b[31m'])
def test_nul_and_non_utf8_paths_get_a_404_or_400_and_log_no_traceback(served, path):
    from twisted.logger import globalLogPublisher
    _node, base = served
    failures = []

    def observe(event):
        if event.get('log_failure') is not None or event.get('isError'):
            failures.append(event)
    globalLogPublisher.addObserver(observe)
    try:
        status, headers, body = fetch(base + path)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert status in (400, 404), (path, status, body[:200])
    assert headers['content-type'].startswith('text/plain') and '\x1b' not in one_line(body)
    assert not failures, failures
