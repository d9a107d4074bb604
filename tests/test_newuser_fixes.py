"""Fixes found as a new user (issue 12): sync of a young pool, one key for per-miner numbers,
the network hash rate, the dashboard address at start-up."""
from types import SimpleNamespace

import pytest

from p2pool.app.main import dashboard_url
from p2pool.sharechain.tracker import Tracker
from p2pool.web.api import WebContext, sync_progress
from p2pool.web.service import address_of_user


def _chain(tracker, first_parent, count):
    previous = first_parent
    for number in range(1, count + 1):
        share = SimpleNamespace(hash=(first_parent or 0) * 1000 + number, previous_hash=previous, work=1, min_work=1)
        tracker.add(share)
        tracker.verified.add(share)
        previous = share.hash


def _progress(tracker, chain_length=100):
    node = SimpleNamespace(net=SimpleNamespace(CHAIN_LENGTH=chain_length), tracker=tracker)
    return sync_progress(WebContext(node))


def test_a_young_pool_whose_chain_starts_at_its_first_share_is_in_sync():
    tracker = Tracker()
    _chain(tracker, None, 67)
    progress = _progress(tracker)
    assert (progress['downloaded'], progress['verified'], progress['needed'], progress['synced']) == (67, 67, 67, True)


def test_a_chain_with_a_missing_parent_still_needs_chain_length():
    tracker = Tracker()
    _chain(tracker, 5, 67)                  # the parent of its first share is not known
    progress = _progress(tracker)
    assert (progress['downloaded'], progress['needed'], progress['synced']) == (67, 100, False)
    _chain(tracker, 7, 120)
    assert _progress(tracker)['synced'] is True and _progress(tracker)['needed'] == 100


def test_a_node_with_no_shares_is_not_in_sync():
    assert _progress(Tracker())['synced'] is False


def test_per_miner_keys_map_to_their_address():
    assert address_of_user('mq2Y5SnjzcEU5FhWqLrmBzxpGxe2LfQuib.rig7') == 'mq2Y5SnjzcEU5FhWqLrmBzxpGxe2LfQuib'
    assert address_of_user('mq2Y5SnjzcEU5FhWqLrmBzxpGxe2LfQuib') == 'mq2Y5SnjzcEU5FhWqLrmBzxpGxe2LfQuib'


@pytest.mark.parametrize('endpoint, port, url', [
    (None, 9332, 'http://127.0.0.1:9332/static/'),
    (('', 19332), 19332, 'http://127.0.0.1:19332/static/'),
    (('0.0.0.0', 5), 5, 'http://127.0.0.1:5/static/'),
    (('192.0.2.4', 7), 7, 'http://192.0.2.4:7/static/'),
    (('::1', 7), 7, 'http://[::1]:7/static/'),
])
def test_dashboard_url(endpoint, port, url):
    assert dashboard_url(endpoint, port) == url
