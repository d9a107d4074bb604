"""The dashboard in a real browser: Debian's headless Chromium against a running Site.

Chromium is driven with its own command-line switches (--dump-dom and --screenshot
after a virtual-time budget), no extra Python packages. Every page writes a report
into <pre id="page-report">: the JavaScript errors it saw and the raw API value behind
each number it shows (common.js). The test compares those, and the visible text of a
few elements, with the JSON API, and saves a screenshot of each page under
test-artifacts/.
"""
import html
import json
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from p2pool.app.resources import web_static_dir
from p2pool.web import WebService
from p2pool.testing.web_testnode import demo_node, fetch, listen
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parent.parent / 'test-artifacts'
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--hide-scrollbars', '--virtual-time-budget=10000']
INSTALL = 'apt-get update && apt-get install -y chromium chromium-driver'


@pytest.fixture(scope='session')
def chromium():
    """Path of Debian's chromium, installed with apt-get if it is missing."""
    path = shutil.which('chromium')
    if path is None:
        result = subprocess.run(INSTALL, shell=True, capture_output=True, text=True, timeout=1200,
                                env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'))
        path = shutil.which('chromium')
        if result.returncode != 0 or path is None:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            pytest.fail('the browser test needs Debian\'s chromium; `%s` failed (exit %d): %s'
                        % (INSTALL, result.returncode, ' | '.join(detail)), pytrace=False)
    return path


@pytest.fixture(scope='module')
def site(reactor):  # noqa: F811
    now = float(int(time.time()))
    node = demo_node(now=now)
    node.local.networkinfo = {'version': 210000, 'warnings': 'Disk space is low!'}   # shown as a warning
    service = WebService(node, clock=lambda: now)
    for step in range(700):       # an hour of pseudoshares from three miners, some dead
        service.on_pseudoshare(2.0e7 * (1 + step % 5), step % 17 == 0, node.demo_chain.addresses[step % 3],
                               now=now - 3500 + 5 * step)
    for step in range(12):
        service.sample(now - 55 + 5 * step)
    service.on_local_share(node.demo_chain.shares[-3], False, now=now - 100)
    port = run_in_reactor(lambda: listen(node, service, reactor, static_dir=web_static_dir()))
    yield node, 'http://127.0.0.1:%d' % port.getHost().port
    run_in_reactor(port.stopListening)


class ElementsById(HTMLParser):
    """Text content and attributes of every element with an id (nested text included)."""

    VOID = {'meta', 'link', 'input', 'br', 'img', 'hr'}

    def __init__(self):
        super().__init__()
        self.elements = {}
        self._open = []       # stack of (tag, id or None)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if 'id' in attributes:
            self.elements[attributes['id']] = {'text': '', 'attrs': attributes, 'links': []}
        if tag == 'a' and attributes.get('href'):
            for _tag, open_id in self._open:
                if open_id is not None:
                    self.elements[open_id]['links'].append(attributes['href'])
        if tag not in self.VOID:
            self._open.append((tag, attributes.get('id')))

    def handle_endtag(self, tag):
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data):
        for _tag, open_id in self._open:
            if open_id is not None:
                self.elements[open_id]['text'] += data


def load_page(chromium, base, page, name, tmp_path_factory):
    """Open the page in headless Chromium; (report, elements). Saves test-artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / ('%s.png' % name)
    command = [chromium, *CHROMIUM_FLAGS, '--user-data-dir=%s' % tmp_path_factory.mktemp('chromium-profile'),
               '--window-size=1280,1700', '--screenshot=%s' % screenshot, '--dump-dom', base + '/static/' + page]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, 'chromium failed on %s: %s' % (page, result.stderr[-2000:])
    dom = result.stdout
    assert screenshot.exists() and screenshot.stat().st_size > 10000, 'no screenshot of ' + page
    assert re.search(r'<body[^>]*data-ready="1"', dom), '%s did not finish loading:\n%s' % (page, dom[-3000:])
    match = re.search(r'<pre id="page-report"[^>]*>(.*?)</pre>', dom, re.S)
    assert match, 'no page report in ' + page
    report = json.loads(html.unescape(match.group(1)))
    assert report['errors'] == [], 'JavaScript errors on %s: %s' % (page, report['errors'])
    parser = ElementsById()
    parser.feed(dom)
    return report['shown'], parser.elements


def api(base, path):
    status, _headers, body = fetch(base + path)
    assert status == 200, path
    return json.loads(body)


def si_text(value, digits=2):
    """The page's P2.siNumber, for comparing visible text."""
    if value != 0 and abs(value) < 0.01:
        return '%s ' % float('%.3g' % value)
    prefixes = ['', 'k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y']
    index, scaled = 0, abs(value)
    while scaled >= 1000 and index < len(prefixes) - 1:
        scaled /= 1000
        index += 1
    return '%s%.*f %s' % ('-' if value < 0 else '', digits, scaled, prefixes[index])


def test_overview_shows_the_api_numbers(chromium, site, tmp_path_factory):
    node, base = site
    shown, elements = load_page(chromium, base, 'index.html', 'dashboard-overview', tmp_path_factory)
    global_stats, local_stats = api(base, '/global_stats'), api(base, '/local_stats')
    payouts = api(base, '/current_payouts')
    assert shown['pool-rate'] == pytest.approx(global_stats['pool_hash_rate'])
    assert shown['pool-stale'] == pytest.approx(global_stats['pool_stale_prop'])
    assert shown['share-difficulty'] == pytest.approx(global_stats['min_difficulty'])
    assert shown['network-rate'] == global_stats['network_hashrate']
    assert shown['local-rate'] == pytest.approx(sum(local_stats['miner_hash_rates'].values()))
    assert [shown['shares-total'], shown['shares-orphan'], shown['shares-dead']] == [
        local_stats['shares']['total'], local_stats['shares']['orphan'], local_stats['shares']['dead']]
    assert shown['efficiency'] == pytest.approx(local_stats['efficiency'])
    assert shown['expected-payout'] == pytest.approx(payouts[node.payout_address])
    assert shown['peers-out'] == local_stats['peers']['outgoing'] and shown['peers-in'] == 1
    assert shown['block-value'] == pytest.approx(local_stats['block_value'])
    assert shown['uptime'] == api(base, '/uptime') and shown['fee'] == api(base, '/fee')
    assert shown['best-share'] == api(base, '/web/best_share_hash')
    assert shown['heads'] == len(api(base, '/web/heads'))
    assert shown['blocks'] == len(api(base, '/recent_blocks')) >= 3
    assert shown['payouts'] == len(payouts) and shown['payouts_total'] == pytest.approx(sum(payouts.values()))
    assert shown['sync-downloaded'] == api(base, '/web/sync_progress')['downloaded']
    assert shown['warnings'] == local_stats['warnings'] == ['(from bitcoind) Disk space is low!']
    assert 'Disk space is low!' in elements['warnings']['text']
    # the visible text, as formatted on the page
    assert elements['shares-total']['text'] == str(local_stats['shares']['total'])
    assert elements['pool-rate']['text'] == si_text(global_stats['pool_hash_rate']) + 'H/s'
    assert elements['local-rate']['text'] == si_text(sum(local_stats['miner_hash_rates'].values())) + 'H/s'
    assert elements['expected-payout']['text'] == '%.8f BTC' % payouts[node.payout_address]
    assert elements['efficiency']['text'] == '%.1f%%' % (100 * local_stats['efficiency'])
    assert json.loads(elements['pool-rate']['attrs']['data-raw']) == pytest.approx(global_stats['pool_hash_rate'])
    best = api(base, '/web/best_share_hash')
    assert 'share.html#' + best in elements['best-share']['links']
    for block in api(base, '/recent_blocks'):
        assert 'share.html#' + block['share'] in elements['blocks']['links']


def _newest_complete(bins):
    full = max(bin_[2] for bin_ in bins)
    for bin_ in bins:
        value = bin_[1]
        if value not in (None, {}) and bin_[2] >= full * 0.999:
            return value
    return None


@pytest.mark.parametrize('view, bins', [('last_hour', 150), ('last_day', 300)])
def test_graphs_draw_every_source_in_each_view(chromium, site, tmp_path_factory, view, bins):
    _node, base = site
    shown, elements = load_page(chromium, base, 'graphs.html#' + view, 'dashboard-graphs-' + view,
                                tmp_path_factory)
    sources = api(base, '/web/graph_sources')['sources']
    assert shown['view-name'] == view
    assert shown['sources'] == list(sources)
    for source in sources:
        data = api(base, '/web/graph_data/%s/%s' % (source, view))
        assert len(data) == bins and shown['bins-' + source] == bins
        assert shown['latest-' + source] == pytest.approx(_newest_complete(data)), source
        assert 'chart-' + source in elements
    assert shown['latest-local_hash_rate'] > 0
    if view == 'last_hour':      # the minute of 5-s samples fills complete 24-s bins only in this view
        assert shown['latest-peers'] == {'incoming': 1, 'outgoing': 2}


def test_share_page_links_parent_and_children(chromium, site, tmp_path_factory):
    node, base = site
    share = node.demo_chain.shares[-5]          # has two children: the next share and an orphaned one
    share_hash = '%064x' % share.hash
    shown, elements = load_page(chromium, base, 'share.html#' + share_hash, 'dashboard-share', tmp_path_factory)
    info = api(base, '/web/share/' + share_hash)
    assert shown['share-hash'] == share_hash
    assert shown['parent'] == info['parent'] and shown['children'] == info['children']
    assert len(info['children']) == 2
    assert elements['parent']['links'] == ['share.html#' + info['parent']]
    assert elements['children']['links'] == ['share.html#' + child for child in info['children']]
    assert shown['absheight'] == info['share_data']['absheight']
    assert shown['payout-address'] == info['share_data']['payout_address']
    assert shown['gentx-raw'] == info['block']['gentx']['raw'] and len(shown['gentx-raw']) > 100
    assert shown['gentx-value'] == info['block']['gentx']['value']
    assert shown['verified'] is True and elements['verified']['text'] == 'yes'
    assert elements['absheight']['text'] == str(info['share_data']['absheight'])


def test_share_page_defaults_to_the_best_share_and_reports_unknown_ones(chromium, site, tmp_path_factory):
    _node, base = site
    shown, _elements = load_page(chromium, base, 'share.html', 'dashboard-share-best', tmp_path_factory)
    assert shown['share-hash'] == api(base, '/web/best_share_hash')
    assert shown['children'] == []
    unknown = '12' * 32
    shown, elements = load_page(chromium, base, 'share.html#' + unknown, 'dashboard-share-unknown',
                                tmp_path_factory)
    assert shown['not-found'] == unknown and 'unknown share' in elements['not-found']['text']


def test_static_files_fetch_nothing_beyond_the_node():
    folder = Path(web_static_dir())
    for path in folder.iterdir():
        if path.suffix in ('.html', '.css', '.js'):
            text = path.read_text()
            assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text), path.name
            assert not re.search(r'url\(\s*["\']?(https?:)?//', text), path.name
            assert not re.search(r'fetch\(\s*["\']https?:', text), path.name
