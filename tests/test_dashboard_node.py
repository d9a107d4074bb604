"""The dashboard of a real node on the real regtest bitcoind, in headless Chromium: a worker
named ADDRESS.rig7 fills the Miners table's Last difficulty column and the "Expected payouts
of the local miners" graph, the Payouts panel lists the block that paid it, and the recent
blocks table marks a block bitcoind orphaned. Screenshots: test-artifacts/dashboard-node-*.png."""
import pytest

from node_processes import node_factory, wait_until  # noqa: F401 (fixture)
from test_dashboard_browser import chromium, load_page  # noqa: F401 (fixture)
from p2pool.work.cpuminer import StratumMiner

pytestmark = [pytest.mark.slow, pytest.mark.bitcoind]


def test_a_named_worker_fills_the_dashboard(chromium, node_factory, regtest_node, tmp_path_factory):  # noqa: F811
    address = regtest_node.wallet_address()
    worker = address + '.rig7'
    node = node_factory(regtest_node, name='dashboard', address=address).start().wait_ready()
    miner = StratumMiner('127.0.0.1', node.worker_port, worker).connect()

    def filled():
        miner.mine(seconds=0.3)
        graph = node.get('/web/graph_data/current_payouts/last_hour')
        graphed = any(worker in (bin_[1] or {}) for bin_ in graph)
        return node.get('/web/payouts') if graphed else None
    payouts = wait_until(filled, 90, 'a payout and a sample of the local miners\' payouts', interval=0)
    miner.mine(seconds=1)          # the 10-minute rate window covers the worker when the page loads

    in_chain = [block for block in node.get('/recent_blocks') if block['state'] == 'immature']
    orphan = in_chain[0]['hash']
    regtest_node.rpc('invalidateblock', orphan)
    try:
        wait_until(lambda: any(block['hash'] == orphan and block['state'] == 'orphaned'
                               for block in node.get('/recent_blocks')), 40, 'the invalidated block orphaned')
        shown, elements = load_page(chromium, node.url(''), 'index.html', 'dashboard-node-overview',
                                    tmp_path_factory)
        graphs, _graph_elements = load_page(chromium, node.url(''), 'graphs.html#last_hour',
                                            'dashboard-node-graphs', tmp_path_factory)
    finally:
        regtest_node.rpc('reconsiderblock', orphan)
        miner.close()

    difficulty = shown['miner-difficulties'][worker]
    assert isinstance(difficulty, float) and difficulty > 0, 'the Last difficulty column of %s is empty' % worker
    assert 'rig7' in elements['miners']['text']
    listed = next(row for row in payouts if row['hash'] in shown['payout-blocks'])
    assert listed['hash'][:24] in elements['payout-history']['text']
    assert shown['payout-count'] >= len(payouts)
    assert address in elements['payout-history']['text'] and 'immature' in elements['payout-history']['text']
    assert orphan in shown['orphaned-blocks'] and 'orphaned' in elements['blocks']['text']
    series = dict(graphs['series-current_payouts'])
    assert series.get(worker, 0) > 0, 'the local miners\' payouts graph has no points for %s: %s' % (worker, series)
    assert [name for name, _points in graphs['series-local_share_hash_rates']] == ['good', 'orphan', 'dead']
    assert [name for name, _points in graphs['series-pool_rates']] == ['good', 'orphan', 'dead']
    assert node.stop() == 0
