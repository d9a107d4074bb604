"""ShareCache.parse_records (a message's records in one call) answers as parse() of each record does."""
import pytest

from p2pool.p2p.txrelay import share_wrapper
from p2pool.sharechain.share import ShareDecodeError
from p2pool.sim.caches import ShareCache
from p2pool.sim.world import Scenario, Simulation


@pytest.fixture(scope='module')
def shares():
    sim = Simulation(Scenario(nodes=3, hours=0.1, share_period=10, seed=3))
    sim.run()
    found = [share for node in sim.nodes for share in node.chain.tracker.items.values()]
    assert len({share.hash for share in found}) >= 3
    return sim.net, list({share.hash: share for share in found}.values())[:3]


def test_held_shares_come_back_as_the_nodes_own_and_new_ones_as_copies(shares):
    net, (held, new, other) = shares
    cache = ShareCache()
    wrappers = [share_wrapper(share) for share in (held, new, other)]
    cache.parse(net, wrappers[2]['type'], bytes(wrappers[2]['contents']), 0.0, None)   # known to the run
    known = {held.hash: held}
    parsed = cache.parse_records(net, wrappers, 123.0, ('1.2.3.4', 9333), known,
                                 lambda wrapper, peer_addr: pytest.fail('only dict records here'))
    assert parsed[0] is held
    assert [share.hash for share in parsed] == [held.hash, new.hash, other.hash]
    assert all(share.time_seen == 123.0 and share.peer_addr == ('1.2.3.4', 9333) for share in parsed[1:])
    assert (cache.parse_hits, cache.parse_misses) == (1, 3)   # the same counts as parse() of each


def test_a_bad_record_raises_after_the_records_before_it_were_parsed(shares):
    net, (held, _, _) = shares
    cache = ShareCache()
    bad = {'type': held.VERSION, 'contents': b'\x00'}
    with pytest.raises(ShareDecodeError):
        cache.parse_records(net, [share_wrapper(held), bad], 0.0, None, {}, lambda wrapper, peer_addr: None)
    with pytest.raises(ShareDecodeError):   # remembered: raised again from the memo
        cache.parse_records(net, [bad], 0.0, None, {}, lambda wrapper, peer_addr: None)
    assert (cache.parse_hits, cache.parse_misses) == (1, 2)


def test_other_wrappers_go_to_the_fallback(shares):
    net, (held, _, _) = shares
    seen = []
    parsed = ShareCache().parse_records(net, [b'raw'], 0.0, 'peer', {},
                                        lambda wrapper, peer_addr: seen.append((wrapper, peer_addr)) or held)
    assert parsed == [held] and seen == [(b'raw', 'peer')]
