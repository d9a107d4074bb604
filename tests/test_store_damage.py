"""A store damaged mid-file (issue 16 finding 2), with a real node process and the real regtest bitcoind.

64 random bytes are written at 30, 50 and 70 % of `p2pool.sqlite3` while the node is down.
The node starts, the damage is found (quick_check at open, or a failing page later), the
damaged file is kept aside, and the fresh store gets everything that could still be read
plus everything the node holds. Then `kill -9` and another start: the node loads the same
chain, and the bans, peers and stat log it had are still there.
"""
import random
import re
import time

import pytest

from node_processes import node_factory, wait_until  # noqa: F401 (fixture)
from p2pool.config import load_network
from p2pool.sharechain.share import Share
from p2pool.store.sharestore import ShareStore
from p2pool.testing.testchain import mine_chain

pytestmark = [pytest.mark.bitcoind, pytest.mark.slow]

BANNED = '10.9.9.9'
PEERS = [('10.0.%d.1' % n, 9333) for n in range(20)]


def build_store(path, net, now):
    """A node's store as a previous run left it: bans, peers and the stat log first (the
    first pages), then a chain of 150 shares with their verified marks."""
    chain = mine_chain(net, 150, start_time=int(now) - 160 * net.SHARE_PERIOD)
    with ShareStore(path) as store:
        list(store.load_shares(net, lambda raw: Share.from_wire(net, raw)))     # claims the network
        store.ban(BANNED, 'flooding: test', until=now + 10**6, score=2)
        store.save_peers([(host, port, 0, now - 100, now - 50, 0) for host, port in PEERS])
        store.history_put_many('stat_log', [(now - 600 + n, {'time': now - 600 + n, 'n': n}) for n in range(50)])
        for start in range(0, len(chain), 10):
            store.add_shares(chain[start:start + 10], added_at=now)
            store.mark_verified([share.hash for share in chain[start:start + 10]])
    return chain


def damage(path, seed=16):
    rng = random.Random(seed)
    size = path.stat().st_size
    with open(path, 'r+b') as handle:
        for fraction in (0.3, 0.5, 0.7):
            handle.seek(int(size * fraction))
            handle.write(bytes(rng.getrandbits(8) for _ in range(64)))


def loaded(node):
    found = re.findall(r'Loaded (\d+) shares \((\d+) verified\) from the store', node.console())
    assert found, node.tail()
    return tuple(int(n) for n in found[-1])


def stored(path, net):
    with ShareStore(path) as store:
        shares = list(store.load_shares(net, lambda raw: Share.from_wire(net, raw)))
        return (len(shares), sum(verified for _, verified in shares), store.get_ban(BANNED),
                {(peer.host, peer.port) for peer in store.get_peers()},
                len(store.history_get('stat_log', 0)))


def test_damaged_store_then_kill_9_loses_nothing_the_node_held(node_factory, regtest_node):  # noqa: F811
    net = load_network('bsv_regtest')
    node = node_factory(regtest_node, name='damaged', address=regtest_node.wallet_address(),
                        extra_args=['--outgoing-conns', '0'])
    node.net_dir.mkdir(parents=True)
    chain = build_store(node.store_path, net, time.time())
    damage(node.store_path)

    node.start().wait_ready()
    first = loaded(node)
    assert 'damaged' in node.console() or 'corrupt' in node.console(), node.tail()
    assert list(node.net_dir.glob('p2pool.sqlite3.corrupt-*')), 'the damaged file is kept aside'
    assert first[0] >= 100, ('most of the chain could still be read', first, node.tail())
    log_entries = len(node.get('/web/log'))
    assert log_entries >= 40                                             # what the damage left
    node.kill()

    after_kill = stored(node.store_path, net)
    assert after_kill[0] >= first[0] and after_kill[1] >= first[1], (after_kill, first)
    assert after_kill[2] is not None and after_kill[2].score == 2          # the ban and its score
    assert after_kill[3] >= set(PEERS) and after_kill[4] >= log_entries

    node.start().wait_ready()
    assert loaded(node) == first                                          # the same chain again
    assert len(node.get('/web/log')) >= log_entries
    assert node.stop() == 0
    assert len(chain) >= first[0]
