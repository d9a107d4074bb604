"""A fast miner on bsv_regtest (issue 16 finding 12): every share is a block there and every block
is new work, so a miner that keeps hashing while its submissions are in flight is always a job
behind. Nearly all its submissions must still be accepted."""
import pytest

from p2pool.testing.fast_miner import FastStratumMiner
from p2pool.testing.testchain import make_addresses
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)
from worker_helpers import make_bridge, make_template, start_worker_server, stop_worker_server

#: a fixed pseudoshare difficulty of one share (256 hashes on bsv_regtest): the submission rate
#: of a miner some 40 times faster than this Python one, whose shares are 30 times harder
SHARE_DIFFICULTY = '+0.0000000596'


@pytest.fixture
def every_block_is_new_work(reactor):  # noqa: F811
    """A worker port whose template moves to a new parent block on every block submitted."""
    env = run_in_reactor(make_bridge)
    env.block_count = 0

    def on_block(block, segwit):
        env.block_count += 1
        height = 200 + env.block_count
        reactor.callLater(0, env.source.set, make_template(previous_block=0x1234 + env.block_count, height=height))
    env.bridge.on_block = on_block
    env.server = run_in_reactor(start_worker_server, env)
    yield env
    run_in_reactor(stop_worker_server, env.server)


@pytest.mark.parametrize('suffix', ['', SHARE_DIFFICULTY])
def test_a_fast_miner_has_nearly_all_its_submissions_accepted(every_block_is_new_work, suffix):
    env = every_block_is_new_work
    address = make_addresses(env.net, 1, seed=b'miner')[0]
    miner = FastStratumMiner('127.0.0.1', env.server.number, address + suffix).connect()
    try:
        # at most 50 in flight: the stale-work rule is under test here, not how fast this machine's
        # node takes a flood of blocks (each submission here is one)
        outcome = miner.run(seconds=2.0, max_outstanding=50)
    finally:
        miner.close()
    assert outcome['submitted'] >= 20 and env.block_count >= 10, outcome
    assert outcome['accepted_pct'] >= 90, outcome


def test_the_dashboard_says_why_the_work_is_stale():
    from dataclasses import replace

    from p2pool.testing.web_testnode import demo_node
    from p2pool.web.api import WebContext
    from p2pool.web.localstats import warnings
    node = demo_node()
    now = node.tracker.items[node.best].timestamp + 10
    ctx = WebContext(node, None, lambda: now)
    assert not [text for text in warnings(ctx) if 'stale' in text]          # 5 % dead: nothing to say
    node.local = replace(node.local, pseudoshares=400, dead_pseudoshares=240, new_work_per_minute=900)
    (text,) = [text for text in warnings(ctx) if 'stale' in text]
    assert text.startswith('60% of the work your miners sent in the last 600 s was stale') and '900 times' in text
    node.work = dict(node.work, bits=0x207fffff)                            # regtest: blocks easier than shares
    (text,) = [text for text in warnings(ctx) if 'stale' in text]
    assert 'every share is also a block' in text
