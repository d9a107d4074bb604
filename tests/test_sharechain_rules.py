"""The share forest and best-chain policy (sharechain.md §2-§9) as the running
node's ShareChain drives it: error handling, the injected clock, block-weight punishment."""
import dataclasses
import logging
import random
import types

import pytest

from p2pool.sharechain import chain as node_module
from p2pool.bitcoin.data import tx_key
from p2pool.sharechain.chain import ShareChain
from p2pool.sharechain import verify
from p2pool.testing import testchain
from p2pool.sharechain.chooser import Chooser
from p2pool.store.sharestore import ShareStore
from p2pool.sharechain.tracker import Tracker
from chain_helpers import NET, Clock, fresh, reparsed

PEER = ('10.0.0.7', 9333)


@pytest.fixture(scope='module')
def chain_shares():
    return testchain.mine_chain(NET, NET.CHAIN_LENGTH + 10)


# --- node.py: a share whose check raises unexpectedly -------------------------------------------

def test_unexpected_verification_error_is_logged_and_the_share_treated_as_invalid(
        chain_shares, monkeypatch, caplog):
    real_check = verify.check_share
    broken = chain_shares[-1].hash

    def check_share(tracker, share, now, **kwargs):
        if share.hash == broken:
            raise ZeroDivisionError('a bug in the checker')
        return real_check(tracker, share, now, **kwargs)

    monkeypatch.setattr(verify, 'check_share', check_share)
    chain = fresh(chain_shares)
    reported = []
    chain.bad_peer.watch(lambda peer, reason: reported.append(peer))
    with caplog.at_level(logging.ERROR, logger='p2pool.sharechain.chain'):
        chain.add_shares(reparsed(chain_shares), peer_addr=PEER)   # must not raise
    assert broken not in chain.tracker.items                       # removed as a bad share
    assert reported == [PEER]
    assert chain.best_share_hash.value == chain_shares[-2].hash
    assert 'a bug in the checker' in chain.verification_failures[broken]
    assert any('ZeroDivisionError' in record.getMessage() or record.exc_info for record in caplog.records)


# --- node.py never reads the clock itself ----------------------------------------------------------

class NoClock:
    """Stands in for the time module: any clock read fails the test."""

    def __getattr__(self, name):
        raise AssertionError('node.py read the clock directly (time.%s)' % name)


def test_the_node_uses_only_its_injected_clock(tmp_path, chain_shares, monkeypatch):
    path = str(tmp_path / 'shares.sqlite3')
    chain = fresh(chain_shares, ShareStore(path))
    monkeypatch.setattr(node_module, 'time', NoClock())
    chain.add_shares(reparsed(chain_shares), peer_addr=PEER)
    chain.think()
    chain.prune()
    best = chain.best_share_hash.value
    chain.close()
    again = fresh(chain_shares, ShareStore(path))
    assert again.load() == len(chain_shares)
    assert again.best_share_hash.value == best
    again.close()


# --- node.py: a failing store flush ------------------------------------------------------------------

def test_a_failing_store_flush_does_not_stop_the_chain(tmp_path, chain_shares, monkeypatch):
    store = ShareStore(str(tmp_path / 'shares.sqlite3'))
    chain = fresh(chain_shares, store)
    real_flush = store.flush
    failures = []

    def failing_flush():
        failures.append(1)
        raise OSError('disk full')

    monkeypatch.setattr(store, 'flush', failing_flush)
    chain.add_shares(reparsed(chain_shares), peer_addr=PEER)
    assert failures and chain.best_share_hash.value == chain_shares[-1].hash
    monkeypatch.setattr(store, 'flush', real_flush)
    chain.close()                                    # the retried batch reaches the disk
    again = fresh(chain_shares, ShareStore(str(tmp_path / 'shares.sqlite3')))
    assert again.load() == len(chain_shares)
    again.close()


# --- §5.1 [jt] rule 3 in the running node: block weight / size of VERSION < 34 shares ------------

BIG_TX = {'version': 1,
          'tx_ins': [{'previous_output': {'hash': 7, 'index': 0}, 'script': b'\x00' * 10000,
                      'sequence': None}],
          'tx_outs': [{'value': 1, 'script': b'\x51'}], 'lock_time': 0}


@pytest.fixture(scope='module')
def old_version_shares():
    """A VERSION 17 chain whose newest share includes BIG_TX (mined with roomy block limits)."""
    count = NET.CHAIN_LENGTH + 5
    return testchain.mine_chain(NET, count, version=17,
                                transactions=lambda index: [BIG_TX] if index == count - 1 else [])


@pytest.mark.parametrize('limit', ['BLOCK_MAX_WEIGHT', 'BLOCK_MAX_SIZE'])
def test_old_version_share_over_the_block_limits_is_punished(old_version_shares, limit):
    # 10 kB of stripped transaction: over a 40 000 weight / 10 000 byte block, while the
    # coinbase-only shares below it stay well inside.
    small = dataclasses.replace(NET, **{limit: 40000 if limit == 'BLOCK_MAX_WEIGHT' else 10000})
    head = old_version_shares[-1]
    assert head.VERSION == 17 and head.new_transaction_hashes == [tx_key(BIG_TX)]

    chain = fresh(old_version_shares, net=small)
    chain.known_txs.add({tx_key(BIG_TX): BIG_TX})
    chain.add_shares(reparsed(old_version_shares, small), peer_addr=PEER)
    assert head.hash in chain.tracker.verified.items
    result = chain.think()
    key, top = result.decorated_heads[-1]
    assert top == head.hash and key[1] == -1            # ranked as punished
    assert key[0] == chain.tracker.verified.get_work(old_version_shares[-6].hash) - head.work
    assert result.punish_aggressively and chain.punish_aggressively.value is True
    # the step back lands on the parent, whose best clean descendant is the head again
    assert result.best_hash == head.hash

    # without the transaction known the rule does not apply
    roomy = fresh(old_version_shares, net=small)
    roomy.add_shares(reparsed(old_version_shares, small), peer_addr=PEER)
    assert roomy.think().punish_aggressively is False


def test_old_version_share_within_the_block_limits_is_not_punished(old_version_shares):
    chain = fresh(old_version_shares)
    chain.known_txs.add({tx_key(BIG_TX): BIG_TX})
    chain.add_shares(reparsed(old_version_shares), peer_addr=PEER)
    result = chain.think()
    assert result.decorated_heads[-1][0][1] == 0 and result.punish_aggressively is False


def test_gentx_sizes_are_forgotten_with_their_shares(old_version_shares):
    chain = fresh(old_version_shares)
    chain.add_shares(reparsed(old_version_shares), peer_addr=PEER)
    head = old_version_shares[-1].hash
    assert head in chain.gentx_sizes
    chain.tracker.remove(head)
    assert head not in chain.gentx_sizes


# --- §5.3 quirk: punish_aggressively is also set when the traditional top is a block solution -------

def _fake(share_hash, previous_hash, time_seen, pow_hash=2**255):
    return types.SimpleNamespace(
        hash=share_hash, previous_hash=previous_hash, work=10, min_work=1, target=2**256 // 10 - 1,
        timestamp=10**6, time_seen=time_seen, peer_addr=None, naughty=0, pow_hash=pow_hash,
        header={'previous_block': 1, 'bits': 0x207fffff}, VERSION=35, transaction_hash_refs=[],
        new_transaction_hashes=[], stale_info=None)


def test_punish_aggressively_quirk_for_an_earliest_seen_block_solution():
    tracker = Tracker()
    parent = None
    for share_hash in range(1, 11):
        tracker.add(_fake(share_hash, parent, 0))
        parent = share_hash
    tracker.add(_fake(100, 10, time_seen=1, pow_hash=0))    # block solution, seen first
    tracker.add(_fake(101, 10, time_seen=2))
    net = types.SimpleNamespace(CHAIN_LENGTH=32, PARENT=types.SimpleNamespace(BLOCK_PERIOD=600))
    result = Chooser(tracker, net, lambda share: True, lambda block: 0, rng=random.Random(0)).think(10**6)
    assert result.best_hash == 100
    assert result.punish_aggressively is True


# --- node.py serves sharereq walks of up to p + 1 shares (p2p.md §4.7: p = min(parents, 1000 // n)) ---

def test_share_requests_walk_the_full_allowance():
    chain = ShareChain(NET, None, clock=Clock(10**6))
    parent = None
    for share_hash in range(1, 1101):
        chain.tracker.add(types.SimpleNamespace(hash=share_hash, previous_hash=parent, work=1, min_work=1))
        parent = share_hash
    got = chain.get_shares_for_request([1100], 999, [])
    assert [share.hash for share in got] == list(range(1100, 100, -1))        # p + 1 = 1000 shares
    got = chain.get_shares_for_request([1100, 5], 500, [1000])
    assert [share.hash for share in got] == list(range(1100, 1000, -1)) + [5, 4, 3, 2, 1]
    assert chain.get_shares_for_request([12345], 10, []) == []


def test_known_tx_sizes_measures_and_skips_what_it_cannot_size():
    txs = {tx_key(BIG_TX): BIG_TX, 5: {'not': 'a transaction'}}
    sizes = node_module.KnownTxSizes(lambda: txs)
    full, stripped = sizes[tx_key(BIG_TX)]
    assert full == stripped > 10000
    assert 5 not in sizes and 6 not in sizes
    with pytest.raises(KeyError):
        sizes[5]


def test_the_store_forgets_bad_and_pruned_shares(tmp_path, chain_shares, monkeypatch):
    """sharechain.md §3 step 2 and §6: shares removed from memory are forgotten on disk."""
    real_check = verify.check_share
    broken = chain_shares[-1].hash

    def check_share(tracker, share, now, **kwargs):
        if share.hash == broken:
            raise verify.ShareInvalid('bad')
        return real_check(tracker, share, now, **kwargs)

    monkeypatch.setattr(verify, 'check_share', check_share)
    path = str(tmp_path / 'shares.sqlite3')
    chain = fresh(chain_shares, ShareStore(path))
    chain.add_shares(reparsed(chain_shares), peer_addr=PEER)
    side = testchain.mine_chain(NET, 1, tracker=Tracker(), start_time=chain_shares[0].timestamp,
                                addresses=testchain.make_addresses(NET, 1, seed=b'side'))
    chain.add_shares(reparsed(side), peer_addr=PEER)      # an old one-share side chain: eaten by prune
    assert side[0].hash in chain.tracker.items and broken not in chain.tracker.items
    chain.clock.now += 1000
    chain.prune()
    assert broken not in chain.tracker.items and side[0].hash not in chain.tracker.items
    chain.close()
    again = fresh(chain_shares, ShareStore(path))
    assert again.load() == len(chain_shares) - 1
    assert broken not in again.tracker.items and side[0].hash not in again.tracker.items
    again.close()
