"""The JSON API over HTTP (web.md §2): a real twisted.web Site on a loopback port serving a
facade over a known test chain (p2pool.testing.web_testnode.demo_node: 150 v35 shares, own shares,
stale announcements, donations, three blocks and two orphaned own shares).

Expected values are recomputed here from the share list itself, not with the
functions the endpoints use.
"""
import json

import pytest

from p2pool.bitcoin.address import donation_address
from p2pool.bitcoin.data import bits_to_target, target_to_average_attempts, target_to_difficulty
from p2pool.sharechain.share import Share
from p2pool.web import WebService, build_web_root
from p2pool.web.openapi import ENDPOINTS
from p2pool.testing.web_testnode import FixedNode, demo_node, fetch, listen
from p2pool.sharechain.tracker import Tracker
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)

NOW = 1_800_000_000.0


@pytest.fixture(scope='module')
def served(reactor):  # noqa: F811 (the fixture from twisted_helpers)
    node = demo_node(now=NOW)
    service = WebService(node, clock=lambda: NOW)
    port = run_in_reactor(lambda: listen(node, service, reactor))
    base = 'http://127.0.0.1:%d' % port.getHost().port
    yield node, service, base
    run_in_reactor(port.stopListening)


def get_json(base, path):
    status, headers, body = fetch(base + path)
    assert status == 200, (path, status, body)
    assert headers['content-type'] == 'application/json'
    assert headers['access-control-allow-origin'] == '*'
    return json.loads(body)


def refused(base, path):
    status, headers, body = fetch(base + path)
    text = body.decode()
    assert text.endswith('\n') and '\n' not in text[:-1], text     # one line of reason
    return status, text.strip()


def chain_of(node):
    return node.demo_chain.shares      # oldest first; the best share is the last


def works_between(shares, newest, oldest_excluded):
    return sum(share.work for share in shares[oldest_excluded + 1:newest + 1])


def test_rate_difficulty_and_stale_rates(served):
    node, _service, base = served
    shares = chain_of(node)
    stales = sum(1 for share in shares if share.stale_info is not None)
    stale_prop = stales / (150 + stales)
    rate = works_between(shares, 149, 0) / (shares[-1].timestamp - shares[0].timestamp)
    assert get_json(base, '/rate') == pytest.approx(rate / (1 - stale_prop))
    assert get_json(base, '/difficulty') == pytest.approx(target_to_difficulty(shares[-1].max_target))
    span = shares[-1].timestamp - shares[0].timestamp
    expected = {'good': sum(s.work for s in shares[1:]) / span}
    for kind in ('orphan', 'doa'):
        expected[kind] = sum(s.work for s in shares[1:] if s.stale_info == kind) / span
    assert get_json(base, '/stale_rates') == pytest.approx(expected)


def test_users_and_user_stales(served):
    node, _service, base = served
    shares = chain_of(node)
    weights, total = {}, 0
    for share in shares:
        weights[share.payout_address] = weights.get(share.payout_address, 0) + share.work * (65535 - share.donation)
        total += share.work * 65535
    users = get_json(base, '/users')
    assert users == pytest.approx({address: weight / total for address, weight in weights.items()})
    assert sum(users.values()) < 1     # the donations are not listed
    stale, counted = {}, {}
    for share in shares:
        is_stale = share.stale_info is not None
        stale[share.payout_address] = stale.get(share.payout_address, 0) + is_stale
        counted[share.payout_address] = counted.get(share.payout_address, 0) + 1 + is_stale
    assert get_json(base, '/user_stales') == pytest.approx({k: stale[k] / counted[k] for k in counted})


def test_current_payouts_sum_to_the_block_value(served):
    node, _service, base = served
    shares = chain_of(node)
    subsidy = node.work['coinbasevalue']
    weights, total = {}, 0
    for share in shares:       # the window covers the whole 150-share chain here
        weights[share.payout_address] = weights.get(share.payout_address, 0) + share.work * (65535 - share.donation)
        total += share.work * 65535
    expected = {address: subsidy * weight // total for address, weight in weights.items()}
    donation = donation_address(node.net.PARENT)
    expected[donation] = subsidy - sum(expected.values())
    payouts = get_json(base, '/current_payouts')
    assert payouts == pytest.approx({address: amount * 1e-8 for address, amount in expected.items()})
    assert round(sum(payouts.values()) * 1e8) == subsidy


def test_global_stats(served):
    node, _service, base = served
    shares = chain_of(node)
    window = shares[-120:]                              # L = min(150, 3600 // 30) = 120
    nonstale = sum(s.work for s in window[1:]) / (window[-1].timestamp - window[0].timestamp)
    stales = sum(1 for s in window if s.stale_info is not None)
    stale_prop = stales / (120 + stales)
    block_difficulty = target_to_difficulty(bits_to_target(node.work['bits']))
    assert get_json(base, '/global_stats') == pytest.approx({
        'pool_nonstale_hash_rate': nonstale,
        'pool_hash_rate': nonstale / (1 - stale_prop),
        'pool_stale_prop': stale_prop,
        'min_difficulty': target_to_difficulty(shares[-1].max_target),
        'network_block_difficulty': block_difficulty,
        'network_hashrate': block_difficulty * 2**32 // 600,
    }, rel=1e-6)


def test_local_stats(served):
    node, _service, base = served
    shares, chain = chain_of(node), node.demo_chain
    stats = get_json(base, '/local_stats')
    window = shares[-120:]
    mine = [s for s in window if s.hash in chain.mine]
    orphan = sum(1 for s in mine if s.stale_info == 'orphan')
    doa = sum(1 for s in mine if s.stale_info == 'doa')
    assert stats['my_share_counts_in_last_hour'] == {
        'shares': len(mine) + orphan + doa, 'unstale_shares': len(mine), 'stale_shares': orphan + doa,
        'orphan_stale_shares': orphan, 'doa_stale_shares': doa}
    my_work = sum(s.work for s in window[1:] if s.hash in chain.mine)
    span = window[-1].timestamp - window[0].timestamp
    assert stats['my_hash_rates_in_last_hour']['nonstale'] == pytest.approx(my_work / span)
    assert stats['my_hash_rates_in_last_hour']['note'] == 'DEPRECATED'
    # 23 own shares: 21 in the chain, one orphan and one dead share beside it (sharechain.md §7)
    assert stats['shares'] == {'total': 23, 'orphan': 1, 'dead': 1}
    stales = sum(1 for s in window if s.stale_info is not None)
    stale_prop = stales / (120 + stales)
    assert stats['efficiency'] == pytest.approx((1 - 2 / 23) / (1 - stale_prop))
    assert stats['efficiency_if_miner_perfect'] == pytest.approx((1 - 1 / 23) / (1 - stale_prop))
    assert stats['peers'] == {'incoming': 1, 'outgoing': 2}
    assert stats['uptime'] == pytest.approx(3600)
    assert stats['attempts_to_share'] == target_to_average_attempts(shares[-1].max_target)
    assert stats['attempts_to_block'] == target_to_average_attempts(bits_to_target(node.work['bits']))
    assert stats['block_value'] == pytest.approx(node.work['coinbasevalue'] * 1e-8)
    assert stats['miner_hash_rates'] == node.local.miner_hash_rates
    assert stats['miner_last_difficulties'] == node.local.miner_last_difficulties
    assert stats['donation_proportion'] == pytest.approx(0.005)
    assert stats['protocol_version'] == 3501 and stats['fee'] == 1.5
    assert stats['warnings'] == []


def test_peer_endpoints(served):
    _node, _service, base = served
    assert get_json(base, '/peer_addresses') == '10.0.0.1 10.0.0.2:19333 10.0.0.3'
    assert get_json(base, '/pings') == {'10.0.0.1:9333': 12.5, '10.0.0.2:19333': None, '10.0.0.3:9333': 40.0}
    assert get_json(base, '/peer_versions')['10.0.0.2:19333'] == '/p2pool:17.0/'
    assert get_json(base, '/peer_txpool_sizes') == {'10.0.0.1:9333': 1000, '10.0.0.2:19333': 0,
                                                     '10.0.0.3:9333': 250}


def test_node_endpoints(served):
    node, _service, base = served
    assert get_json(base, '/fee') == 1.5
    assert get_json(base, '/payout_addr') == node.payout_address
    assert get_json(base, '/payout_addrs') == [node.payout_address]
    assert get_json(base, '/uptime') == pytest.approx(3600)
    assert get_json(base, '/web/version') == get_json(base, '/local_stats')['version']
    assert get_json(base, '/web/currency_info') == {
        'symbol': 'BTC', 'block_explorer_url_prefix': node.net.PARENT.BLOCK_EXPLORER_URL_PREFIX,
        'address_explorer_url_prefix': node.net.PARENT.ADDRESS_EXPLORER_URL_PREFIX,
        'tx_explorer_url_prefix': node.net.PARENT.TX_EXPLORER_URL_PREFIX, 'chain': 'main'}
    # the chain starts at the pool's first share: complete, so in sync below CHAIN_LENGTH (8640)
    assert get_json(base, '/web/sync_progress') == {
        'downloaded': 150, 'verified': 150, 'needed': 150, 'synced': True, 'shares_in_memory': 152,
        'verified_in_memory': 152}


def test_recent_blocks(served):
    node, _service, base = served
    shares = chain_of(node)
    blocks = get_json(base, '/recent_blocks')
    assert [block['number'] for block in blocks] == [119, 79, 39]       # BIP34-style push of the share index
    for block in blocks:
        share = shares[block['number']]
        assert block == {'ts': share.timestamp, 'hash': '%064x' % share.hash, 'number': block['number'],
                         'share': '%064x' % share.hash}


def test_heads_tails_and_my_shares(served):
    node, _service, base = served
    shares, chain = chain_of(node), node.demo_chain
    heads = sorted([shares[-1].hash] + [s.hash for s in chain.side_shares])
    assert get_json(base, '/web/heads') == ['%064x' % h for h in heads]
    assert get_json(base, '/web/verified_heads') == ['%064x' % h for h in heads]
    assert get_json(base, '/web/tails') == ['%064x' % shares[0].hash]
    assert get_json(base, '/web/verified_tails') == ['%064x' % shares[0].hash]
    assert get_json(base, '/web/best_share_hash') == '%064x' % shares[-1].hash
    mine = ['%064x' % h for h in sorted(chain.mine)]
    assert get_json(base, '/web/my_share_hashes') == mine
    assert get_json(base, '/web/my_share_hashes50') == mine[:50]


def test_share_page(served):
    node, _service, base = served
    shares, chain = chain_of(node), node.demo_chain
    parent, share = shares[-5], shares[-4]
    info = get_json(base, '/web/share/%064x' % parent.hash)
    side = chain.side_shares[1]          # the dead own share, a child of shares[-5]
    assert info['children'] == sorted(['%064x' % share.hash, '%064x' % side.hash],
                                      key=lambda h: (h != '%064x' % share.hash, h))   # most children first
    assert info['parent'] == '%064x' % shares[-6].hash
    assert info['type_name'] == 'PaddingBugfixShare'
    assert info['local'] == {'verified': True, 'time_first_seen': node.start_time, 'peer_first_received_from': None}
    data = info['share_data']
    assert data == {'timestamp': parent.timestamp, 'target': parent.target, 'max_target': parent.max_target,
                    'payout_address': parent.payout_address, 'donation': parent.donation / 65535,
                    'stale_info': parent.stale_info, 'nonce': 145, 'desired_version': 35,
                    'absheight': parent.absheight, 'abswork': parent.abswork}
    block = info['block']
    assert block['hash'] == '%064x' % parent.hash
    assert block['header']['merkle_root'] == '%064x' % parent.header['merkle_root']
    assert block['gentx']['hash'] == '%064x' % parent.gentx_hash
    assert block['gentx']['value'] == pytest.approx(parent.subsidy * 1e-8)
    assert block['gentx']['last_txout_nonce'] == '%016x' % parent.last_txout_nonce
    assert block['gentx']['coinbase'] == parent.share_data['coinbase'].hex()
    assert block['other_transaction_hashes'] == []
    from p2pool.bitcoin.hashes import hash256
    raw = bytes.fromhex(block['gentx']['raw'])
    assert hash256(raw) == parent.gentx_hash              # the regenerated gentx is the share's
    first = get_json(base, '/web/share/%064x' % shares[0].hash)
    assert first['parent'] == 'None' and first['far_parent'] == 'None'
    assert get_json(base, '/web/payout_address/%064x' % share.hash) == share.payout_address


def test_share_data_is_the_wire_wrapper(served):
    node, _service, base = served
    share = chain_of(node)[42]
    status, headers, body = fetch(base + '/web/share_data/%064x' % share.hash)
    assert status == 200 and headers['content-type'] == 'application/octet-stream'
    assert body == share.to_wire()
    assert Share.from_wire(node.net, body).hash == share.hash


@pytest.mark.parametrize('path, code, reason', [
    ('/web/share/xyz', 400, 'hex'),
    ('/web/share/' + 'ab' * 40, 400, 'up to 64 hex digits'),
    ('/web/payout_address/' + '12' * 32, 404, 'unknown share'),
    ('/web/share', 404, 'path argument'),
    ('/web/graph_data/no_such_source/last_hour', 404, "unknown graph source 'no_such_source'"),
    ('/web/graph_data/local_hash_rate/last_century', 404, "unknown graph view 'last_century'"),
    ('/web/graph_data/local_hash_rate', 404, 'path argument'),
    ('/patron_sendmany/abc', 400, 'TOTAL must be a number'),
    ('/patron_sendmany/-1', 400, 'TOTAL must not be negative'),
    ('/patron_sendmany/nan', 400, 'finite'),
    ('/patron_sendmany/1/-0.5', 400, 'TRUNC must not be negative'),
    ('/no_such_endpoint', 404, 'no such endpoint'),
    ('/static/no_such_file.html', 404, 'no such file'),
    ('/rate/extra', 404, 'path argument'),
])
def test_bad_arguments_get_a_one_line_reason(served, path, code, reason):
    _node, _service, base = served
    status, text = refused(base, path)
    assert status == code and reason in text


def test_root_redirects_and_static_files(served):
    _node, _service, base = served
    status, _headers, body = fetch(base + '/static/')
    assert status == 200 and b'<title>P2Pool node</title>' in body
    for name in ('index.html', 'graphs.html', 'share.html', 'favicon.ico', 'style.css', 'common.js'):
        assert fetch(base + '/static/' + name)[0] == 200
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(base + '/', timeout=10)
        raise AssertionError('GET / should redirect')
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 302 and redirect.headers['Location'] == '/static/'


def test_openapi_lists_exactly_the_served_endpoints(served):
    node, _service, base = served
    document = get_json(base, '/openapi.json')
    assert document['openapi'].startswith('3.') and set(document['paths']) == set(ENDPOINTS)
    share_hash = '%064x' % chain_of(node)[-1].hash
    for path in document['paths']:
        concrete = (path.replace('{hash}', share_hash).replace('{total}', '1.5').replace('{trunc}', '0.1')
                    .replace('{source}', 'peers').replace('{view}', 'last_day'))
        status, _headers, body = fetch(base + concrete)
        assert status == 200, (concrete, status, body)
    root = build_web_root(node, static_dir=None)
    served_paths = {'/' + name.decode() for name in root.children if name not in (b'web', b'static')}
    served_paths |= {'/web/' + name.decode() for name in root.children[b'web'].children}
    documented = {path.split('/{')[0] for path in ENDPOINTS}
    assert served_paths == documented


def test_a_node_without_shares_or_work(reactor):  # noqa: F811
    net = demo_node(count=1).net
    node = FixedNode(net, Tracker(), start_time=NOW - 5)
    port = run_in_reactor(lambda: listen(node, WebService(node, clock=lambda: NOW), reactor))
    base = 'http://127.0.0.1:%d' % port.getHost().port
    try:
        assert get_json(base, '/global_stats') is None and get_json(base, '/local_stats') is None
        assert get_json(base, '/web/best_share_hash') is None
        assert get_json(base, '/recent_blocks') == [] and get_json(base, '/web/heads') == []
        assert get_json(base, '/uptime') == pytest.approx(5)
        assert get_json(base, '/web/sync_progress')['downloaded'] == 0
        for path in ('/rate', '/current_payouts', '/patron_sendmany/1', '/users', '/stale_rates'):
            status, text = refused(base, path)
            assert status == 503 and 'no best share yet' in text, path
        assert fetch(base + '/metrics')[0] == 200
    finally:
        run_in_reactor(port.stopListening)


def test_v17_share_lists_its_transactions(reactor):  # noqa: F811
    from p2pool.bitcoin.data import tx_key
    from p2pool.bitcoin.hashes import hash256
    from p2pool.testing import testchain
    net = demo_node(count=1).net
    txs = [{'version': 1, 'tx_ins': [{'previous_output': {'hash': 1000 + i, 'index': 0}, 'script': b'\x51',
                                      'sequence': None}],
            'tx_outs': [{'value': 1000 + i, 'script': b'\x51'}], 'lock_time': 0} for i in range(6)]
    tracker = Tracker()
    shares = testchain.mine_chain(net, 4, version=17, tracker=tracker,
                                  transactions=lambda i: [txs[i]] + ([txs[0]] if i else []))
    for share in shares[:3]:          # the newest share stays unverified
        tracker.verified.add(share)
    node = FixedNode(net, tracker, best=shares[-1].hash, start_time=NOW)
    port = run_in_reactor(lambda: listen(node, None, reactor))
    base = 'http://127.0.0.1:%d' % port.getHost().port
    try:
        info = get_json(base, '/web/share/%064x' % shares[2].hash)
        assert info['type_name'] == 'Share' and info['local']['verified'] is True
        assert info['block']['other_transaction_hashes'] == ['%064x' % tx_key(txs[2]), '%064x' % tx_key(txs[0])]
        assert hash256(bytes.fromhex(info['block']['gentx']['raw'])) == shares[2].gentx_hash
        newest = get_json(base, '/web/share/%064x' % shares[3].hash)
        assert newest['local']['verified'] is False and newest['block']['gentx']['raw'] == 'unknown'
        assert newest['block']['other_transaction_hashes'] == ['%064x' % tx_key(txs[3]), '%064x' % tx_key(txs[0])]
    finally:
        run_in_reactor(port.stopListening)


def test_mounted_on_the_worker_port_with_getwork(reactor):  # noqa: F811
    """The way main wires it: getwork attached to this root, served by the worker port's switch."""
    from twisted.internet import protocol

    from p2pool.app.resources import web_static_dir
    from p2pool.work.getwork import attach_getwork
    from p2pool.work.switch import listen_worker_port
    node = demo_node(now=NOW)
    root = build_web_root(node, web_static_dir(), service=WebService(node, clock=lambda: NOW))
    attach_getwork(root, server=None)           # GET requests never reach the getwork server
    port = run_in_reactor(lambda: listen_worker_port(root, protocol.ServerFactory(), 0, interface='127.0.0.1',
                                                     reactor=reactor))
    base = 'http://127.0.0.1:%d' % port.getHost().port
    try:
        assert get_json(base, '/web/best_share_hash') == '%064x' % node.best
        status, _headers, body = fetch(base + '/')          # redirected to the dashboard
        assert status == 200 and b'<title>P2Pool node</title>' in body
        assert fetch(base + '/web/graph_data/peers/last_week')[0] == 200
        assert refused(base, '/web/share/zz')[0] == 400
    finally:
        run_in_reactor(port.stopListening)
