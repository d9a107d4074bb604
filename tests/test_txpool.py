"""The known-transaction pool (p2pool.bitcoin.txpool): one changed event per add or remove."""
from p2pool.bitcoin.template import Template
from p2pool.bitcoin.txpool import KnownTxPool


def tx(n):
    return {'version': 1, 'tx_ins': [], 'tx_outs': [{'value': n, 'script': b'\x51'}], 'lock_time': 0}


def template(keys, fees=None):
    return Template(version=0x20000000, previous_block=1, height=10, bits=0x207fffff, time=0, subsidy=50,
                    coinbaseflags=b'', transactions=[tx(key) for key in keys], transaction_keys=list(keys),
                    transaction_fees=list(fees or [None] * len(keys)), rules=[], last_update=0)


def watched():
    pool, changes = KnownTxPool(), []
    pool.changed.watch(lambda added, removed: changes.append((sorted(added), sorted(removed))))
    return pool, changes


def test_add_and_remove_fire_once_with_what_changed():
    pool, changes = watched()
    assert pool.add({1: tx(1), 2: tx(2)}, fees={1: 10}) == {1: tx(1), 2: tx(2)}
    assert pool.add({2: tx(2)}) == {}                       # known already: no event
    assert pool.remove([2, 3]) == {2: tx(2)}                 # 3 was never known
    assert pool.remove([3]) == {}
    assert changes == [([1, 2], []), ([], [2])]
    assert dict(pool) == {1: tx(1)} and pool.get(2) is None and 1 in pool and len(pool) == 1
    assert pool.fees == {1: 10}
    pool.remove([1])
    assert pool.fees == {}                                   # a fee leaves with its transaction


def test_follow_template_keeps_the_template_transactions_and_fees_only():
    pool, changes = watched()
    pool.add({9: tx(9)})                                     # from a peer: the template does not own it
    pool.follow_template(template([1, 2], fees=[100, None]))
    assert sorted(pool) == [1, 2, 9] and pool.fees == {1: 100}
    pool.follow_template(template([2, 3], fees=[5, 7]))
    assert sorted(pool) == [2, 3, 9] and pool.fees == {2: 5, 3: 7}
    pool.follow_template(None)                               # no template yet: nothing changes
    assert changes == [([9], []), ([1, 2], []), ([], [1]), ([3], [])]
