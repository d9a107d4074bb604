"""Graph history (web.md §2.4) and the stat log (§3): binning, views, recording, persistence."""
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pool.store.sharestore import ShareStore
from p2pool.web import WebService
from p2pool.web.history import SOURCES, VIEWS, DataView, GraphHistory, StreamKind, UnknownGraph
from p2pool.web.service import LOCAL_SHARE_CHECK_DELAY
from p2pool.testing.web_testnode import demo_node, fetch, listen
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)

RATE = StreamKind(gauge=False)
GAUGE = StreamKind(gauge=True)
T0 = 1_800_000_000.0           # a multiple of every bin width used below


def test_views_and_sources_of_the_spec():
    assert {name: VIEWS[name] for name in VIEWS} == {
        'last_hour': (3600, 150), 'last_day': (86400, 300), 'last_week': (604800, 300),
        'last_month': (2592000, 300), 'last_year': (31557600, 300)}
    assert set(SOURCES) == {
        'local_hash_rate', 'local_dead_hash_rate', 'local_share_hash_rates', 'pool_rates', 'current_payout',
        'current_payouts', 'peers', 'miner_hash_rates', 'miner_dead_hash_rates', 'desired_version_rates',
        'traffic_rate', 'getwork_latency', 'memory_usage'}
    assert SOURCES['miner_hash_rates'].keep == 10000 and SOURCES['current_payouts'].keep == 20


def test_rate_bins_are_totals_per_second_newest_first():
    view = DataView(10, 5)
    view.add(T0 + 1, {'null': 100})
    view.add(T0 + 2, {'null': 50})
    view.add(T0 + 25, {'null': 40})
    data = view.data(T0 + 25, RATE)
    assert len(data) == 5
    # bins end at T0+30 (newest, partial up to now = T0+25), T0+20, T0+10, ...
    assert data[0] == [T0 + 22.5, 40 / 5, 5, 0]
    assert data[1] == [T0 + 15, 0, 10, 0]             # an empty rate bin is 0
    assert data[2] == [T0 + 5, 15.0, 10, 0]
    assert data[4][0] == T0 - 15


def test_gauges_average_their_samples():
    history = GraphHistory({'g': GAUGE, 'm': StreamKind(gauge=True, multi=True, missing_is_zero=True)},
                           {'v': (100, 10)})
    for t, value in ((T0 + 1, 2), (T0 + 2, 4), (T0 + 3, 9)):
        history.add('g', t, value)
    history.add('m', T0 + 1, {'a': 10, 'b': 2})
    history.add('m', T0 + 2, {'a': 20})
    newest = history.graph_data('g', 'v', T0 + 5)[0]
    assert newest[1] == 5 and newest[3] is None        # gauges: mean, default null
    multi = history.graph_data('m', 'v', T0 + 5)
    assert multi[0][1] == {'a': 15, 'b': 1} and multi[0][3] == 0   # b missing from one sample counts as 0
    assert multi[1][1] is None                                      # no samples: null


def test_multi_values_keep_the_largest_keys():
    history = GraphHistory({'m': StreamKind(gauge=False, multi=True, keep=3)}, {'v': (100, 10)})
    history.add('m', T0 + 1, {str(i): i for i in range(10)})
    value = history.graph_data('m', 'v', T0 + 10)[0][1]
    assert set(value) == {'7', '8', '9'}


def test_old_data_falls_out_and_far_future_resets():
    view = DataView(10, 3)
    view.add(T0, {'null': 1})
    view.add(T0 - 100, {'null': 1})             # older than the window: ignored
    assert sum(bin_[0] for bin_ in view.bins) == 1
    view.add(T0 + 1000, {'null': 7})
    assert sum(bin_[0] for bin_ in view.bins) == 1 and view.last_bin_end == T0 + 1000


def test_bad_values_and_names():
    history = GraphHistory()
    history.add('local_hash_rate', T0, float('nan'))
    history.add('peers', T0, {'incoming': float('inf'), 'outgoing': 3})
    assert history.graph_data('peers', 'last_hour', T0)[0][1] == {'outgoing': 3}
    with pytest.raises(UnknownGraph, match="unknown graph source 'nope'"):
        history.graph_data('nope', 'last_hour', T0)
    with pytest.raises(UnknownGraph, match="unknown graph view 'last_decade'"):
        history.graph_data('peers', 'last_decade', T0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 7200), st.integers(0, 10**6)), max_size=40))
def test_snapshot_restore_round_trip(points):
    sources = {name: SOURCES[name] for name in ('local_hash_rate', 'peers')}
    history = GraphHistory(sources)
    for offset, value in points:
        history.add('local_hash_rate', T0 + offset, value)
        history.add('peers', T0 + offset, {'incoming': value, 'outgoing': 1})
    snapshot = json.loads(json.dumps(history.snapshot()))
    restored = GraphHistory(sources)
    assert restored.restore(snapshot) == len(sources) * len(VIEWS)
    for source in ('local_hash_rate', 'peers'):
        for view in VIEWS:
            assert restored.graph_data(source, view, T0 + 7200) == history.graph_data(source, view, T0 + 7200)


def test_damaged_snapshots_are_skipped():
    history = GraphHistory()
    assert history.restore({'peers': {'last_hour': {'bin_width': 99, 'bins': []}, 'last_day': 'junk'},
                            'unknown': {}, 'local_hash_rate': {'last_hour': {'bin_width': 24.0}}}) == 0


def test_service_records_pseudoshares_and_serves_them(reactor):  # noqa: F811
    node = demo_node(now=T0)
    now = [T0]
    service = WebService(node, clock=lambda: now[0])
    for step in range(10):
        service.on_pseudoshare(1000, step == 3, 'miner%d' % (step % 2), now=T0 - 20 + step)
    service.on_traffic('p2p/in', 500, now=T0 - 5)
    service.on_getwork_latency(0.25, now=T0 - 5)
    port = run_in_reactor(lambda: listen(node, service, reactor))
    base = 'http://127.0.0.1:%d/web/graph_data/' % port.getHost().port
    try:
        def bins(source, view='last_hour'):
            status, _headers, body = fetch(base + source + '/' + view)
            assert status == 200
            return json.loads(body)
        hour = bins('local_hash_rate')
        assert len(hour) == 150 and [b[2] for b in hour[1:]] == [24] * 149
        total = sum(b[1] * b[2] for b in hour)
        assert total == pytest.approx(10 * 1000)
        assert sum(b[1] * b[2] for b in bins('local_dead_hash_rate')) == pytest.approx(1000)
        assert len(bins('miner_hash_rates', 'last_year')) == 300
        miners = {}
        for b in bins('miner_hash_rates'):
            for key, value in b[1].items():
                miners[key] = miners.get(key, 0) + value * b[2]
        assert miners == pytest.approx({'miner0': 5000, 'miner1': 5000})
        assert any(b[1] == {'p2p/in': 500 / b[2]} for b in bins('traffic_rate'))
        assert any(b[1] == 0.25 for b in bins('getwork_latency'))
    finally:
        run_in_reactor(port.stopListening)


def test_sample_records_the_gauges():
    node = demo_node(now=T0)
    service = WebService(node, clock=lambda: T0)
    service.sample(T0)
    newest = {source: service.history.graph_data(source, 'last_hour', T0)[0][1]
              for source in ('peers', 'pool_rates', 'current_payout', 'current_payouts', 'desired_version_rates')}
    assert newest['peers'] == {'incoming': 1, 'outgoing': 2}
    assert set(newest['pool_rates']) == {'good', 'orphan', 'doa'}
    assert newest['current_payout'] == pytest.approx(json.loads(json.dumps(
        service.context.expected_payouts()[node.payout_address] * 1e-8)))
    assert set(newest['current_payouts']) == set(node.local.miner_hash_rates)
    assert list(newest['desired_version_rates']) == ['35']
    assert newest['desired_version_rates']['35'] == pytest.approx(newest['pool_rates']['good'], rel=0.02)


def test_local_shares_are_reclassified_after_a_while():
    node = demo_node(now=T0)
    chain = node.demo_chain
    service = WebService(node, clock=lambda: T0)
    in_chain, orphaned = chain.shares[-3], chain.side_shares[0]
    service.on_local_share(in_chain, True, now=T0)     # dead, but made it into the best chain
    service.on_local_share(orphaned, False, now=T0)    # good, but not in the best chain
    service.settle_local_shares(T0 + LOCAL_SHARE_CHECK_DELAY - 1)
    before = service.history.graph_data('local_share_hash_rates', 'last_hour', T0)[0][1]
    assert before == {'dead': in_chain.work / 24, 'good': orphaned.work / 24}      # rates over the 24 s bin
    service.settle_local_shares(T0 + LOCAL_SHARE_CHECK_DELAY)
    after = service.history.graph_data('local_share_hash_rates', 'last_hour', T0)[0][1]
    assert after == {'dead': 0, 'good': in_chain.work / 24, 'orphan': orphaned.work / 24}


def test_history_and_stat_log_survive_a_restart(tmp_path, reactor):  # noqa: F811
    path = tmp_path / 'p2pool.sqlite3'
    store = ShareStore(path)
    node = demo_node(now=T0, history_store=store)
    service = WebService(node, clock=lambda: T0)
    service.on_pseudoshare(4800, False, 'someone', now=T0 - 30)
    service.sample(T0)
    entry = service.add_stat_entry()
    assert entry is not None and entry['time'] == T0 and entry['shares'] == 23
    assert entry['stale_shares_breakdown'] == {'orphan': 1, 'doa': 1}
    assert service.save(T0)
    service.save(T0 + 100)                      # older snapshots are pruned, the newest kept
    store.close()

    store = ShareStore(path)
    node = demo_node(now=T0 + 200, history_store=store)
    restarted = WebService(node, clock=lambda: T0 + 200)
    assert restarted.load() == len(SOURCES) * len(VIEWS)
    for source in ('local_hash_rate', 'peers', 'pool_rates'):
        for view in VIEWS:
            assert (restarted.history.graph_data(source, view, T0 + 200)
                    == service.history.graph_data(source, view, T0 + 200))
    port = run_in_reactor(lambda: listen(node, restarted, reactor))
    try:
        status, _headers, body = fetch('http://127.0.0.1:%d/web/log' % port.getHost().port)
        assert status == 200 and json.loads(body) == [json.loads(json.dumps(entry))]
    finally:
        run_in_reactor(port.stopListening)
        store.close()


def test_stat_entries_wait_for_an_hour_of_shares():
    node = demo_node(count=60, now=T0)            # 60 shares < 3600 // 30
    assert WebService(node, clock=lambda: T0).add_stat_entry() is None


def test_service_loops_start_and_stop(reactor):  # noqa: F811
    node = demo_node(now=T0)
    service = WebService(node)
    run_in_reactor(service.start, reactor)
    try:
        assert len(service._loops) == 3 and all(loop.running for loop in service._loops)
    finally:
        run_in_reactor(service.stop)
    assert service._loops == []


def test_the_newest_save_wins_even_if_the_clock_steps_back(tmp_path):
    store = ShareStore(tmp_path / 'p2pool.sqlite3')
    try:
        node = demo_node(now=T0, history_store=store)
        service = WebService(node, clock=lambda: T0)
        service.on_pseudoshare(1000, False, 'a', now=T0 - 10)
        service.save(T0 + 100)
        service.on_pseudoshare(2000, False, 'a', now=T0 - 10)
        service.save(T0 + 50)                   # the wall clock went back 50 s
        restarted = WebService(demo_node(now=T0, history_store=store), clock=lambda: T0)
        restarted.load(T0)
        bins = restarted.history.graph_data('local_hash_rate', 'last_hour', T0)
        assert sum(bin_[1] * bin_[2] for bin_ in bins) == pytest.approx(3000)
    finally:
        store.close()
