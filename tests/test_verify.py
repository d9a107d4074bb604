"""Full validation (shares.md §12), version voting and succession (§13), naughty shares (§14)."""
import copy

import pytest

from p2pool.bitcoin import data as bitcoin_data
from p2pool.config import load_network
from p2pool.sharechain import generate, verify, voting
from p2pool.testing import testchain
from p2pool.sharechain.share import Share, ShareDecodeError, ShareInvalid, ShareMisbehaviour
from p2pool.sharechain.tracker import Tracker

BTC = testchain.easy_network(load_network('bitcoin'), CHAIN_LENGTH=20, REAL_CHAIN_LENGTH=20, TARGET_LOOKBEHIND=10)
TESTNET = testchain.easy_network(load_network('bitcoin_testnet'), CHAIN_LENGTH=20, REAL_CHAIN_LENGTH=20,
                                 TARGET_LOOKBEHIND=10)
BLOCK_BITS = bitcoin_data.target_to_bits(BTC.MAX_TARGET // 1000)


def make_tx(tag):
    return {'version': 1, 'tx_ins': [{'previous_output': {'hash': 7000 + tag, 'index': 1}, 'script': b'\x52',
                                      'sequence': None}],
            'tx_outs': [{'value': tag, 'script': b'\x51'}], 'lock_time': 0}


TXS = [make_tx(i) for i in range(40)]
KEYS = [bitcoin_data.tx_key(tx) for tx in TXS]


def txs_for(index):
    return [TXS[index]] + ([TXS[index - 1]] if index else []) + ([TXS[0]] if index > 2 else [])


@pytest.fixture(scope='module')
def v35_chain():
    tracker = Tracker()
    shares = testchain.mine_chain(BTC, 25, addresses=testchain.make_addresses(BTC, 3), tracker=tracker)
    return tracker, shares


@pytest.fixture(scope='module')
def v17_chain():
    tracker = Tracker()
    shares = testchain.mine_chain(BTC, 25, version=17, tracker=tracker, transactions=txs_for)
    return tracker, shares


def plan_on(tracker, net, previous_hash, version=35, txs=(), timestamp=None, **data):
    known = {bitcoin_data.tx_key(tx): tx for tx in txs}
    prev = tracker.items[previous_hash]
    share_data = {'previous_share_hash': previous_hash, 'coinbase': b'\x02ok', 'nonce': 1,
                  'address': testchain.make_addresses(net, 1)[0], 'subsidy': 625000000, 'donation': 0,
                  'stale_info': None, 'desired_version': 35}
    share_data.update(data)
    return generate.plan_share(tracker, net, generate.ShareTerms(
        share_data, bitcoin_data.bits_to_target(BLOCK_BITS), timestamp or prev.timestamp + 30, net.MAX_TARGET,
        tuple((k, 0) for k in known), known_txs=known, version=version))


def forge(plan, **kwargs):
    return testchain.solve_plan(plan, BLOCK_BITS, plan.share_info['timestamp'], **kwargs)


# --- valid chains ---------------------------------------------------------------------------

@pytest.mark.parametrize('net, version', [(BTC, 35), (BTC, 34), (BTC, 33), (BTC, 32), (BTC, 17), (TESTNET, 17)])
def test_generated_chains_verify(net, version):
    tracker = Tracker()
    transactions = txs_for if version < 34 else None
    shares = testchain.mine_chain(net, 24, version=version, tracker=tracker, transactions=transactions,
                                  addresses=testchain.make_addresses(net, 5))
    loaded = Tracker()
    for share in shares:
        copy_ = Share.from_wire(net, share.to_wire())
        loaded.add(copy_)
        regenerated = verify.check_share(loaded, copy_, now=copy_.timestamp)
        gentx = regenerated.tx()
        assert bitcoin_data.txid(gentx) == regenerated.txid == copy_.gentx_hash and copy_.naughty == 0
        assert bitcoin_data.tx_id_type.pack(gentx) == regenerated.stripped


def test_v17_references_resolve(v17_chain):
    tracker, shares = v17_chain
    assert shares[5].transaction_hash_refs == [(0, 0), (1, 0), (5, 0)]
    block_keys = [KEYS[5], KEYS[4], KEYS[0]]
    assert verify._referenced_tx_keys(tracker, shares[5]) == block_keys


def test_non_empty_ref_merkle_link_is_accepted(v35_chain):
    tracker, shares = v35_chain
    share = forge(plan_on(tracker, BTC, shares[-1].hash), ref_merkle_link={'branch': [11, 22], 'index': 0})
    assert share.ref_merkle_link['branch'] == [11, 22]
    verify.check_share(tracker, share, now=share.timestamp)


# --- every single-byte change is caught ------------------------------------------------------

def assert_every_byte_matters(tracker, net, share):
    """Each changed byte makes the share undecodable, changes its hash, or makes check_share fail.

    (Not so for the merkle_link of a v34/v35 share that includes transactions: nothing commits
    to it and no rule checks it, shares.md §9/§12; the shares tested here have none.)
    """
    outcomes = {'decode': 0, 'hash': 0, 'check': 0}
    wire = share.to_wire()
    for position in range(len(wire)):
        for mask in (0xff, 0x01):
            if position == 0 and mask == 0x01:
                continue   # type 35 -> 34: see test_share_type_is_not_committed
            changed = bytearray(wire)
            changed[position] ^= mask
            try:
                other = Share.from_wire(net, bytes(changed))
            except ShareDecodeError:
                outcomes['decode'] += 1
                continue
            if other.hash != share.hash:
                outcomes['hash'] += 1
                continue
            with pytest.raises(ShareMisbehaviour):
                verify.check_share(tracker, other, now=other.timestamp)
            outcomes['check'] += 1
    return outcomes


def test_byte_flips_v35(v35_chain):
    tracker, shares = v35_chain
    for share in (shares[3], shares[-1]):
        assert_every_byte_matters(tracker, BTC, share)


def test_byte_flips_v17_with_transactions(v17_chain):
    tracker, shares = v17_chain
    for share in (shares[4], shares[-1]):
        assert share.transaction_hash_refs
        assert_every_byte_matters(tracker, BTC, share)


def test_byte_flips_segwit_v17_with_transactions():
    # On a segwit-layout network the v17 merkle_link is outside the header: only check_share catches it.
    tracker = Tracker()
    shares = testchain.mine_chain(TESTNET, 4, version=17, tracker=tracker, transactions=txs_for)
    assert len(shares[-1].merkle_link['branch']) == 2
    outcomes = assert_every_byte_matters(tracker, TESTNET, shares[-1])
    assert outcomes['check'] >= 64 * 2


def test_share_type_is_not_committed(v35_chain):
    # v34 and v35 share one layout; the type byte is outside every hash. With full history the
    # succession rule refuses the changed share.
    tracker, shares = v35_chain
    wire = shares[-1].to_wire()
    as_v34 = Share.from_wire(BTC, bytes([34]) + wire[1:])
    assert as_v34.hash == shares[-1].hash
    with pytest.raises(ShareMisbehaviour, match="can't follow"):
        verify.check_share(tracker, as_v34, now=as_v34.timestamp)


# --- §12 failures --------------------------------------------------------------------------------

def test_future_timestamp(v35_chain):
    tracker, shares = v35_chain
    share = shares[-1]
    verify.check_share(tracker, share, now=share.timestamp - 600)
    with pytest.raises(ShareInvalid, match='future'):
        verify.check_share(tracker, share, now=share.timestamp - 601)


def test_unknown_parent(v35_chain):
    tracker, shares = v35_chain
    lone = Tracker()
    with pytest.raises(ShareInvalid, match='parent'):
        verify.check_share(lone, shares[-1], now=shares[-1].timestamp)


def altered(tracker, net, previous_hash, change, version=35, **kwargs):
    plan = plan_on(tracker, net, previous_hash, version=version, **kwargs)
    change(plan)
    return forge(plan)


@pytest.mark.parametrize('field, change', [
    ('timestamp', lambda info, prev: info.update(timestamp=prev.timestamp)),
    ('far_share_hash', lambda info, prev: info.update(far_share_hash=prev.hash)),
    ('max_bits', lambda info, prev: info.update(max_bits=info['max_bits'] - 1)),
    ('bits', lambda info, prev: info.update(bits=bitcoin_data.target_to_bits(BTC.MAX_TARGET // 31))),
    ('absheight', lambda info, prev: info.update(absheight=info['absheight'] + 1)),
    ('abswork', lambda info, prev: info.update(abswork=info['abswork'] + 1)),
])
def test_share_info_mismatch(v35_chain, field, change):
    tracker, shares = v35_chain
    prev = shares[-1]
    share = altered(tracker, BTC, prev.hash, lambda plan: change(plan.share_info, prev))
    with pytest.raises(ShareInvalid, match='share_info invalid: %s' % field):
        verify.check_share(tracker, share, now=share.timestamp)


def test_v17_timestamp_window(v17_chain):
    tracker, shares = v17_chain
    prev = shares[-1]
    for offset, ok in ((59, True), (60, False)):
        share = altered(tracker, BTC, prev.hash, lambda plan: plan.share_info.update(timestamp=prev.timestamp + offset),
                        version=17)
        if ok:
            verify.check_share(tracker, share, now=share.timestamp)
        else:
            with pytest.raises(ShareInvalid, match='timestamp'):
                verify.check_share(tracker, share, now=share.timestamp)


def test_outputs_must_match(v35_chain):
    tracker, shares = v35_chain

    def pay_donation_more(plan):
        plan.donation_amount += 1
    share = altered(tracker, BTC, shares[-1].hash, pay_donation_more)
    with pytest.raises(ShareInvalid, match="gentx doesn't match hash_link"):
        verify.check_share(tracker, share, now=share.timestamp)

    def claim_more_subsidy(plan):
        plan.share_info['share_data']['subsidy'] += 1
    share = altered(tracker, BTC, shares[-1].hash, claim_more_subsidy)
    with pytest.raises(ShareInvalid, match="gentx doesn't match hash_link"):
        verify.check_share(tracker, share, now=share.timestamp)


def test_transactions_must_be_referenced_by_first_occurrence(v17_chain):
    tracker, shares = v17_chain
    prev = shares[-1]

    def list_as_new(plan):       # TXS[24] was first listed by the parent: it must be referenced as (1, 0)
        info = plan.share_info
        assert info['transaction_hash_refs'][:4] == [0, 0, 1, 0]
        info['new_transaction_hashes'] = info['new_transaction_hashes'] + [KEYS[24]]
        info['transaction_hash_refs'][2:4] = [0, 1]
    share = altered(tracker, BTC, prev.hash, list_as_new, version=17, txs=[TXS[25], TXS[24]])
    with pytest.raises(ShareInvalid, match='share_info invalid: new_transaction_hashes'):
        verify.check_share(tracker, share, now=share.timestamp)


@pytest.mark.parametrize('refs, message', [([0, 0, 30, 0], 'not known'), ([0, 0, 1, 5], 'past the end')])
def test_bad_references(v17_chain, refs, message):
    tracker, shares = v17_chain

    def refer(plan):
        plan.share_info['transaction_hash_refs'] = refs
    share = altered(tracker, BTC, shares[-1].hash, refer, version=17, txs=[TXS[30]])
    with pytest.raises(ShareInvalid, match=message):
        verify.check_share(tracker, share, now=share.timestamp)


@pytest.mark.parametrize('net', [BTC, TESTNET])
def test_merkle_link_must_match_the_references(net):
    tracker = Tracker()
    shares = testchain.mine_chain(net, 3, version=17, tracker=tracker, transactions=txs_for)

    def extra_tx(plan):
        plan.other_tx_keys = plan.other_tx_keys + [KEYS[39]]
    share = altered(tracker, net, shares[-1].hash, extra_tx, version=17, txs=[TXS[30]])
    with pytest.raises(ShareInvalid, match='merkle_link'):
        verify.check_share(tracker, share, now=share.timestamp)


# --- §13 versions ----------------------------------------------------------------------------------

def vote_chain(net, votes, version=17):
    """A chain whose share i votes votes[i]."""
    tracker = Tracker()
    previous = None
    for index, vote in enumerate(votes):
        share = testchain.mine_share(tracker, net, previous, testchain.make_addresses(net, 1)[0],
                                     10**9 + 30 * index, version, BLOCK_BITS, nonce=index, desired_version=vote)
        tracker.add(share)
        previous = share.hash
    return tracker, previous


def next_share(tracker, net, previous_hash, version):
    return forge(plan_on(tracker, net, previous_hash, version=version))


VOTE_NET = testchain.easy_network(BTC, CHAIN_LENGTH=50, REAL_CHAIN_LENGTH=50)


@pytest.mark.parametrize('votes_for_35, ok', [(5, True), (3, True), (2, False), (0, False)])
def test_switch_needs_60_percent(votes_for_35, ok):
    # The vote window of a share on top of share 49 is shares 4..0 (CHAIN_LENGTH 50: start 45 above, 5 long).
    votes = [35] * votes_for_35 + [17] * (5 - votes_for_35) + [35] * 45
    tracker, head = vote_chain(VOTE_NET, votes)
    assert voting.vote_window_counts(tracker, head, VOTE_NET).get(35, 0) == votes_for_35 * 2
    share = next_share(tracker, VOTE_NET, head, 35)
    if ok:
        verify.check_share(tracker, share, now=share.timestamp)
    else:
        with pytest.raises(ShareMisbehaviour, match='enough hash power'):
            verify.check_share(tracker, share, now=share.timestamp)


def test_succession_rules():
    tracker, head = vote_chain(VOTE_NET, [35] * 50)
    with pytest.raises(ShareMisbehaviour, match="can't follow"):
        share = next_share(tracker, VOTE_NET, head, 34)
        verify.check_share(tracker, share, now=share.timestamp)
    short, short_head = vote_chain(VOTE_NET, [35] * 10)
    with pytest.raises(ShareMisbehaviour, match='enough history'):
        share = next_share(short, VOTE_NET, short_head, 35)
        verify.check_share(short, share, now=share.timestamp)
    quirk = next_share(short, VOTE_NET, short_head, 34)      # not the successor: allowed with short history
    verify.check_share(short, quirk, now=quirk.timestamp)
    same = next_share(tracker, VOTE_NET, head, 17)
    verify.check_share(tracker, same, now=same.timestamp)


@pytest.mark.parametrize('against, version', [(0, 35), (1, 17), (3, 17)])
def test_generator_switches_above_95_percent(against, version):
    net = testchain.easy_network(BTC, CHAIN_LENGTH=200, REAL_CHAIN_LENGTH=200)
    votes = [17] * against + [35] * (20 - against) + [35] * 180      # window: shares 19..0
    tracker, head = vote_chain(net, votes)
    assert voting.choose_share_version(tracker, head, net) == version
    successor, support = voting.successor_support(tracker, head, net)
    assert successor == 35 and support == (20 - against) / 20
    assert voting.choose_share_version(Tracker(), None, net) == 17


def test_minimum_protocol_version():
    net = testchain.easy_network(BTC, CHAIN_LENGTH=200, REAL_CHAIN_LENGTH=200)
    # The window of the share on top of share 199 is shares 19..0; 18 of 20 votes are not enough.
    tracker, head = vote_chain(net, [17, 17] + [35] * 199, version=35)
    share = tracker.items[head]
    assert voting.updated_minimum_protocol_version(tracker, share, 3301, net) == 3301
    tracker, head = vote_chain(net, [17] + [35] * 200, version=35)       # 19 of 20: exactly 95 %
    assert voting.updated_minimum_protocol_version(tracker, tracker.items[head], 3301, net) == 3500
    tracker2, head2 = vote_chain(net, [35] * 201, version=35)
    share2 = tracker2.items[head2]
    assert voting.updated_minimum_protocol_version(tracker2, share2, 3301, net) == 3500
    assert voting.updated_minimum_protocol_version(tracker2, share2, 3600, net) == 3600
    first = tracker2.items[tracker2.get_nth_parent_hash(head2, 195)]
    assert voting.updated_minimum_protocol_version(tracker2, first, 3301, net) == 3301   # no full window yet


def test_startup_minimum_protocol_version():
    net = testchain.easy_network(BTC, CHAIN_LENGTH=200, REAL_CHAIN_LENGTH=200)
    tracker, head = vote_chain(net, [35] * 201, version=35)
    assert voting.startup_minimum_protocol_version(tracker, head, 201, 3301, net) == 3500
    assert voting.startup_minimum_protocol_version(tracker, head, 200, 3301, net) == 3301   # not more than CL
    assert voting.startup_minimum_protocol_version(tracker, None, 201, 3301, net) == 3301
    mixed, mixed_head = vote_chain(net, [35] + [17] * 2 + [35] * 198, version=35)   # window of the best: 20..1
    assert voting.startup_minimum_protocol_version(mixed, mixed_head, 201, 3301, net) == 3301


def test_desired_version_counts_matches_a_walk():
    tracker, head = vote_chain(VOTE_NET, [17, 35, 35, 16, 35, 17] * 5)
    voting._counts_cache.clear()
    chain = list(tracker.get_chain(head, 30))[::-1]       # oldest first
    for index in range(4, 30):
        start = chain[index]
        expected = {}
        for share in chain[index - 4:index + 1]:
            expected[share.desired_version] = expected.get(share.desired_version, 0) + share.work
        assert voting.desired_version_counts(tracker, start.hash, 5) == expected
    assert voting.desired_version_counts(tracker, chain[1].hash, 5) == {35: chain[1].work, 17: chain[0].work}
    assert voting.desired_version_counts(tracker, None, 5) == {}


# --- §14 naughty shares ------------------------------------------------------------------------------

def test_naughty_shares_and_their_descendants():
    tracker = Tracker()
    base = testchain.mine_chain(BTC, 2, version=17, tracker=tracker)
    for share in base:
        verify.check_share(tracker, share, now=share.timestamp, fee_cache={}, block_height=lambda h: 100)
        assert share.naughty == 0
    greedy = testchain.mine_share(tracker, BTC, base[-1].hash, testchain.make_addresses(BTC, 1)[0],
                                  base[-1].timestamp + 30, 17, BLOCK_BITS, nonce=99, subsidy=50 * 10**8 + 1)
    tracker.add(greedy)
    verify.check_share(tracker, greedy, now=greedy.timestamp, fee_cache={}, block_height=lambda h: 100)
    assert greedy.naughty == 1
    levels = []
    for share in testchain.mine_chain(BTC, 7, version=17, tracker=tracker, previous_hash=greedy.hash):
        verify.check_share(tracker, share, now=share.timestamp, fee_cache={}, block_height=lambda h: 100)
        levels.append(share.naughty)
    assert levels == [2, 3, 4, 5, 6, 0, 0]
    # Without a fee for every referenced transaction, or without a block height, nothing is judged.
    lenient = Tracker()
    for share in base:
        lenient.add(share)
    lenient.add(greedy)
    verify.check_share(lenient, greedy, now=greedy.timestamp, fee_cache=None, block_height=lambda h: 100)
    assert greedy.naughty == 0
    verify.check_share(lenient, greedy, now=greedy.timestamp, fee_cache={}, block_height=lambda h: None)
    assert greedy.naughty == 0


def test_fees_raise_the_allowed_subsidy():
    tracker = Tracker()
    base = testchain.mine_chain(BTC, 2, version=17, tracker=tracker)
    share = testchain.mine_share(tracker, BTC, base[-1].hash, testchain.make_addresses(BTC, 1)[0],
                                 base[-1].timestamp + 30, 17, BLOCK_BITS, nonce=5, subsidy=50 * 10**8 + 10,
                                 transactions=[TXS[1]])
    tracker.add(share)
    verify.check_share(tracker, share, now=share.timestamp, fee_cache={KEYS[1]: 10}, block_height=lambda h: 5)
    assert share.naughty == 0
    verify.check_share(tracker, share, now=share.timestamp, fee_cache={KEYS[1]: 9}, block_height=lambda h: 5)
    assert share.naughty == 1
    verify.check_share(tracker, share, now=share.timestamp, fee_cache={}, block_height=lambda h: 5)
    assert share.naughty == 0     # fee of a referenced transaction unknown: not judged


def test_check_does_not_change_the_share_otherwise(v35_chain):
    tracker, shares = v35_chain
    share = shares[-1]
    before = copy.deepcopy(share.contents)
    verify.check_share(tracker, share, now=share.timestamp)
    assert share.contents == before
