"""/metrics: valid Prometheus text, the same numbers as the JSON API, bounded label sets."""
import json
import re

import pytest

from p2pool.sharechain.tracker import Tracker
from p2pool.web import WebService
from p2pool.web.api import LocalStats
from p2pool.web.metrics import MAX_MINER_LABELS
from p2pool.testing.web_testnode import FixedNode, demo_node, fetch, listen
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)

NOW = 1_800_000_000.0
_NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
_SAMPLE = re.compile(r'^(%s)(?:\{(.*)\})? (\S+)$' % _NAME)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def escape_label(value):
    """A label value as the text format writes it (backslash, double quote and newline escaped)."""
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def parse_exposition(text, kinds=None):
    """{name: {frozenset(labels.items()): value}}; asserts the format rules on the way.
    kinds: a dict that receives {name: 'gauge' | 'counter'}."""
    assert text.endswith('\n')
    metrics, declared = {}, {}
    for line in text.splitlines():
        if line.startswith('# HELP '):
            name = line.split(' ')[2]
            assert name not in declared, 'metric %s declared twice' % name
            declared[name] = None
            continue
        if line.startswith('# TYPE '):
            _hash, _type, name, kind = line.split(' ')
            assert name in declared and kind in ('gauge', 'counter')
            assert (kind == 'counter') == name.endswith('_total'), 'counters and only counters end in _total'
            declared[name] = kind
            if kinds is not None:
                kinds[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, 'not a sample line: %r' % line
        name, label_text, value = match.groups()
        assert declared.get(name) in ('gauge', 'counter'), 'sample before its TYPE: %r' % line
        labels = {}
        if label_text:
            consumed = ''.join(m.group(0) for m in _LABEL.finditer(label_text))
            assert consumed == label_text, 'bad labels: %r' % label_text
            labels = {m.group(1): m.group(2) for m in _LABEL.finditer(label_text)}
        metrics.setdefault(name, {})[frozenset(labels.items())] = float(value)
    return metrics


def value(metrics, name, **labels):
    return metrics[name][frozenset(labels.items())]


@pytest.fixture(scope='module')
def served(reactor):  # noqa: F811
    node = demo_node(now=NOW)
    port = run_in_reactor(lambda: listen(node, WebService(node, clock=lambda: NOW), reactor))
    yield node, 'http://127.0.0.1:%d' % port.getHost().port
    run_in_reactor(port.stopListening)


def get(base, path):
    status, headers, body = fetch(base + path)
    assert status == 200
    return headers, body


def test_metrics_match_the_api(served):
    node, base = served
    headers, body = get(base, '/metrics')
    assert headers['content-type'] == 'text/plain; version=0.0.4; charset=utf-8'
    kinds = {}
    metrics = parse_exposition(body.decode(), kinds)
    assert kinds['p2pool_shares_found_total'] == 'counter'
    assert kinds['p2pool_p2p_traffic_bytes_total'] == 'counter'
    assert kinds['p2pool_peers'] == kinds['p2pool_pool_hash_rate'] == 'gauge'
    accounting = node.stale_accounting
    assert value(metrics, 'p2pool_shares_found_total', arrival='dead') == len(accounting.my_doa_shares)
    assert value(metrics, 'p2pool_shares_found_total', arrival='on_time') == (
        len(accounting.my_shares) - len(accounting.my_doa_shares))
    assert 'spec' not in body.decode() and '.md' not in body.decode(), 'help texts cite nothing outside the repo'
    global_stats = json.loads(get(base, '/global_stats')[1])
    local_stats = json.loads(get(base, '/local_stats')[1])
    sync = json.loads(get(base, '/web/sync_progress')[1])
    assert value(metrics, 'p2pool_pool_hash_rate') == pytest.approx(global_stats['pool_hash_rate'])
    assert value(metrics, 'p2pool_pool_nonstale_hash_rate') == pytest.approx(global_stats['pool_nonstale_hash_rate'])
    assert value(metrics, 'p2pool_pool_stale_proportion') == pytest.approx(global_stats['pool_stale_prop'])
    assert value(metrics, 'p2pool_share_difficulty') == pytest.approx(global_stats['min_difficulty'])
    assert value(metrics, 'p2pool_attempts_to_block') == local_stats['attempts_to_block']
    assert value(metrics, 'p2pool_block_value_coins') == pytest.approx(local_stats['block_value'])
    for kind, key in (('total', 'total'), ('orphan', 'orphan'), ('dead', 'dead')):
        assert value(metrics, 'p2pool_local_shares', kind=kind) == local_stats['shares'][key]
    assert value(metrics, 'p2pool_peers', direction='incoming') == local_stats['peers']['incoming']
    assert value(metrics, 'p2pool_peers', direction='outgoing') == local_stats['peers']['outgoing']
    assert value(metrics, 'p2pool_uptime_seconds') == pytest.approx(local_stats['uptime'])
    assert value(metrics, 'p2pool_local_hash_rate') == node.local.hash_rate
    assert value(metrics, 'p2pool_bitcoind_latency_seconds') == node.local.bitcoind_latency
    assert value(metrics, 'p2pool_work_latency_seconds') == node.local.work_latency
    assert value(metrics, 'p2pool_template_age_seconds') == pytest.approx(2)
    assert value(metrics, 'p2pool_sync_shares', state='downloaded') == sync['downloaded']
    assert value(metrics, 'p2pool_sync_shares', state='verified') == sync['verified']
    assert value(metrics, 'p2pool_sync_needed_shares') == sync['needed']
    assert value(metrics, 'p2pool_warnings') == len(local_stats['warnings'])
    payouts = json.loads(get(base, '/current_payouts')[1])
    assert value(metrics, 'p2pool_expected_payout_coins') == pytest.approx(payouts[node.payout_address])
    assert value(metrics, 'p2pool_info', version=local_stats['version'], network='bitcoin', protocol='3501') == 1
    for miner, rate in local_stats['miner_hash_rates'].items():
        assert value(metrics, 'p2pool_miner_hash_rate', miner=miner) == pytest.approx(rate)


def test_miner_labels_are_bounded(reactor):  # noqa: F811
    node = demo_node(now=NOW)
    rates = {'miner"%d\\\n' % i: float(1000 + i) for i in range(3 * MAX_MINER_LABELS)}
    node.local = LocalStats(miner_hash_rates=rates)
    port = run_in_reactor(lambda: listen(node, None, reactor))
    try:
        _status, _headers, body = fetch('http://127.0.0.1:%d/metrics' % port.getHost().port)
    finally:
        run_in_reactor(port.stopListening)
    series = parse_exposition(body.decode())['p2pool_miner_hash_rate']
    assert len(series) == MAX_MINER_LABELS + 1
    assert sum(series.values()) == pytest.approx(sum(rates.values()))
    fastest = sorted(rates, key=rates.get, reverse=True)[:MAX_MINER_LABELS]
    assert {dict(labels)['miner'] for labels in series} == {escape_label(m) for m in fastest} | {'other'}


def test_unknown_numbers_are_left_out(reactor):  # noqa: F811
    node = FixedNode(demo_node(count=1).net, Tracker(), start_time=NOW - 1)
    port = run_in_reactor(lambda: listen(node, None, reactor))
    try:
        _status, _headers, body = fetch('http://127.0.0.1:%d/metrics' % port.getHost().port)
    finally:
        run_in_reactor(port.stopListening)
    metrics = parse_exposition(body.decode())
    for absent in ('p2pool_pool_hash_rate', 'p2pool_bitcoind_latency_seconds', 'p2pool_best_share_height',
                   'p2pool_expected_payout_coins'):
        assert absent not in metrics
    assert value(metrics, 'p2pool_sync_shares', state='downloaded') == 0
    assert value(metrics, 'p2pool_peers', direction='incoming') == 0


def test_label_escaping():
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
