"""Share generation: retarget, transaction selection, amounts, outputs, gentx, share_info (shares.md §6, §7, §11)."""
import random
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.data import bits_to_target, target_to_average_attempts, target_to_bits
from p2pool.config import load_network
from p2pool.sharechain import generate, verify
from p2pool.testing import testchain
from p2pool.sharechain.generate import GenerateError
from p2pool.sharechain.outputs import compute_amounts, order_payouts
from p2pool.sharechain.share import GENTX_BEFORE_REFHASH, ref_hash_of
from p2pool.sharechain.tracker import Tracker

BTC = testchain.easy_network(load_network('bitcoin'), CHAIN_LENGTH=20, REAL_CHAIN_LENGTH=20, TARGET_LOOKBEHIND=10)
DONATION = bitcoin_address.donation_address(BTC.PARENT)
EMPTY_LINK = {'branch': [], 'index': 0}


def make_tx(tag, segwit=False):
    tx = {'version': 1, 'tx_ins': [{'previous_output': {'hash': 1000 + tag, 'index': 0}, 'script': b'\x51',
                                    'sequence': None}],
          'tx_outs': [{'value': 1000 + tag, 'script': b'\x51'}], 'lock_time': 0}
    if segwit:
        tx.update(marker=0, flag=1, witness=[[bytes([tag % 256]) * 5]])
    return tx


def share_data_for(previous_hash, address, subsidy=625000000, **extra):
    data = {'previous_share_hash': previous_hash, 'coinbase': b'\x03abc', 'nonce': 7, 'address': address,
            'subsidy': subsidy, 'donation': 0, 'stale_info': None, 'desired_version': 35}
    data.update(extra)
    return data


def generate_on(tracker, previous_hash, net=BTC, version=35, txs=(), fees=None, known=True, address=None,
                desired_timestamp=None, **kwargs):
    known_txs = {bitcoin_data.tx_key(tx): tx for tx in txs}
    desired = [(key, (fees or {}).get(key, 0)) for key in known_txs]
    prev = tracker.items.get(previous_hash)
    timestamp = desired_timestamp if desired_timestamp is not None else (prev.timestamp + 30 if prev else 10**9)
    return generate.generate_transaction(
        tracker, share_data_for(previous_hash, address or testchain.make_addresses(net, 1)[0]),
        net.MAX_TARGET // 1000, timestamp, net.MAX_TARGET, EMPTY_LINK, desired, net,
        known_txs=known_txs if known else None, version=version, **kwargs)


@pytest.fixture(scope='module')
def chain():
    tracker = Tracker()
    shares = testchain.mine_chain(BTC, 30, addresses=testchain.make_addresses(BTC, 4), tracker=tracker)
    return tracker, shares


# --- gentx structure (§6, §7) ----------------------------------------------------------

def test_gentx_layout_segwit_v35(chain):
    tracker, shares = chain
    share_info, gentx, other_keys, _ = generate_on(tracker, shares[-1].hash, last_txout_nonce=0x1122334455667788)
    outs = gentx['tx_outs']
    commitment = bitcoin_data.witness_commitment_hash(share_info['segwit_data']['wtxid_merkle_root'])
    assert outs[0] == {'value': 0, 'script': bitcoin_data.witness_commitment_script(commitment)}
    assert share_info['segwit_data'] == {'txid_merkle_link': EMPTY_LINK, 'wtxid_merkle_root': 0}
    assert gentx['witness'] == [[b'[P2Pool][P2Pool][P2Pool][P2Pool]']] and gentx['marker'] == 0
    assert gentx['flag'] == 1 and gentx['version'] == 1 and gentx['lock_time'] == 0
    assert gentx['tx_ins'] == [{'previous_output': None, 'script': b'\x03abc', 'sequence': None}]
    assert outs[-2]['script'] == bitcoin_address.DONATION_SCRIPT
    ref_hash = ref_hash_of(share_info, EMPTY_LINK, 35, BTC)
    assert outs[-1] == {'value': 0, 'script': b'\x6a\x28' + ref_hash.to_bytes(32, 'little')
                        + (0x1122334455667788).to_bytes(8, 'little')}
    payouts = outs[1:-2]
    keys = [bitcoin_address.script_to_address(out['script'], BTC.PARENT) for out in payouts]
    assert [(out['value'], key) for out, key in zip(payouts, keys)] == sorted(
        (out['value'], key) for out, key in zip(payouts, keys))
    assert all(out['value'] > 0 for out in payouts)
    assert sum(out['value'] for out in outs) == 625000000
    assert other_keys == []
    stripped = bitcoin_data.tx_id_type.pack(gentx)
    assert stripped[:-44].endswith(GENTX_BEFORE_REFHASH)
    coinb1, coinb2 = generate.coinbase_parts(stripped)
    assert coinb1 + (0x1122334455667788).to_bytes(8, 'little') + coinb2 == stripped and coinb2 == bytes(4)


def test_gentx_layout_v17_on_bitcoin_has_no_commitment():
    tracker = Tracker()
    shares = testchain.mine_chain(BTC, 3, version=17, tracker=tracker)
    share_info, gentx, _, _ = generate_on(tracker, shares[-1].hash, version=17)
    assert 'segwit_data' not in share_info and 'marker' not in gentx
    assert not gentx['tx_outs'][0]['script'].startswith(b'\x6a\x24')
    assert share_info['share_data']['pubkey_hash'] == bitcoin_address.address_to_pubkey_hash(
        testchain.make_addresses(BTC, 1)[0], BTC.PARENT)


def test_plan_bytes_match_the_gentx_dict(chain):
    tracker, shares = chain
    plan = generate.plan_share(tracker, BTC, generate.ShareTerms(
        share_data_for(shares[-1].hash, DONATION), BTC.MAX_TARGET // 1000, 10**9, BTC.MAX_TARGET, known_txs={},
        version=35))
    for nonce in (0, 1, 2**64 - 1):
        raw, txid = plan.stripped_gentx(12345, nonce)
        assert raw == bitcoin_data.tx_id_type.pack(plan.gentx(12345, nonce))
        assert txid == bitcoin_data.txid(plan.gentx(12345, nonce))


def test_get_share_builds_the_solved_share(chain):
    tracker, shares = chain
    share_info, gentx, other_keys, get_share = generate_on(tracker, shares[-1].hash)
    header = {'version': 0x20000000, 'previous_block': 5, 'timestamp': share_info['timestamp'],
              'bits': target_to_bits(BTC.MAX_TARGET // 1000), 'nonce': 0,
              'merkle_root': bitcoin_data.check_merkle_link(bitcoin_data.txid(gentx),
                                                          share_info['segwit_data']['txid_merkle_link'])}
    header['nonce'] = testchain.solve_nonce(header, bits_to_target(share_info['bits']), BTC.PARENT.pow_hash)
    share = get_share(header)
    assert share.header == header and share.share_info == share_info
    assert share.gentx_hash == bitcoin_data.txid(gentx)
    assert share.hash_link['extra_data'] == b''
    tracker2 = Tracker()
    for old in shares:
        tracker2.add(old)
    tracker2.add(share)
    verify.check_share(tracker2, share, now=share.timestamp)
    wrong_root = header['merkle_root'] ^ 1
    for nonce in range(200):     # a nonce that meets the PoW of the real header, not of the given one
        try:
            get_share(dict(header, merkle_root=wrong_root, nonce=nonce))
        except GenerateError as e:
            if 'PoW' in str(e):
                continue
            assert 'does not match' in str(e)
            return
    pytest.fail('no nonce found')


# --- §11.4-§11.6 amounts and ordering ----------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(['1A', '1B', '1C', '3D', 'bc1e', DONATION]), st.integers(1, 2**90), max_size=6),
       st.integers(0, 2**64 - 1), st.sampled_from(['1A', '1Z', DONATION]), st.integers(0, 2**80))
def test_amounts_sum_to_subsidy(weights, subsidy, finder, donation_weight):
    total = sum(weights.values()) + donation_weight
    amounts = compute_amounts(weights, total, subsidy, finder, DONATION)
    assert sum(amounts.values()) == subsidy
    assert min(amounts.values()) >= 0
    for key, weight in weights.items():
        expected = subsidy * 199 * weight // (200 * total) + (subsidy // 200 if key == finder else 0)
        if key != DONATION:
            assert amounts[key] == expected
    if finder != DONATION:
        assert amounts[finder] >= subsidy // 200


def test_amounts_without_window():
    assert compute_amounts({}, 0, 1001, '1A', DONATION) == {'1A': 5, DONATION: 996}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text('abcdef', min_size=1, max_size=3), st.integers(0, 5), min_size=1, max_size=40))
def test_order_payouts(amounts):
    amounts[DONATION] = 3
    ordered = order_payouts(dict(amounts), DONATION)
    expected = sorted((amount, key) for key, amount in amounts.items() if key != DONATION)
    assert ordered == [pair for pair in expected if pair[0]]


def test_output_cut_keeps_the_largest_3999():
    amounts = {'k%05d' % i: i // 3 for i in range(5000)}
    amounts[DONATION] = 10**9
    ordered = order_payouts(amounts, DONATION)
    expected = sorted((amount, key) for key, amount in amounts.items() if key != DONATION)[-3999:]
    assert ordered == [pair for pair in expected if pair[0]] and len(ordered) == 3999


# --- §11.1 retarget ----------------------------------------------------------------------

def retarget_chain(spacings, max_target, min_work=None):
    tracker = Tracker()
    timestamp = 10**9
    for index, spacing in enumerate(spacings):
        timestamp += spacing
        work = min_work or target_to_average_attempts(max_target)
        tracker.add(SimpleNamespace(hash=index + 1, previous_hash=index or None, work=work, min_work=work,
                                    timestamp=timestamp, max_target=max_target))
    return tracker


RETARGET_NET = SimpleNamespace(TARGET_LOOKBEHIND=10, SHARE_PERIOD=30, MIN_TARGET=2**200, MAX_TARGET=2**250)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-50, 500), min_size=1, max_size=15), st.integers(2**190, 2**252),
       st.integers(1, 2**256 - 1))
def test_retarget_clips(spacings, prev_max_target, desired_target):
    net = RETARGET_NET
    tracker = retarget_chain(spacings, prev_max_target)
    height = len(spacings)
    pre3 = generate.pool_target(tracker, height, height, net)
    if height < net.TARGET_LOOKBEHIND:
        assert pre3 == net.MAX_TARGET
    else:
        assert net.MIN_TARGET <= pre3 <= net.MAX_TARGET
        low, high = prev_max_target * 9 // 10, prev_max_target * 11 // 10
        if net.MIN_TARGET <= low and high <= net.MAX_TARGET:
            assert low <= pre3 <= high
    max_bits, bits = generate.retarget(tracker, height, height, desired_target, net)
    assert max_bits == target_to_bits(pre3)
    assert bits == target_to_bits(generate.clip(desired_target, pre3 // 30, pre3))
    assert bits_to_target(bits) <= pre3
    assert target_to_average_attempts(bits_to_target(bits)) <= 31 * target_to_average_attempts(pre3)


def test_retarget_follows_the_rate():
    net = RETARGET_NET
    # Shares twice as fast as SHARE_PERIOD: the pool target gets 10 % harder (the clip).
    fast = retarget_chain([15] * 12, 2**240)
    assert generate.pool_target(fast, 12, 12, net) == 2**240 * 9 // 10
    steady = retarget_chain([30] * 12, 2**240)
    assert abs(generate.pool_target(steady, 12, 12, net) - 2**240) < 2**240 // 1000
    # All timestamps equal: dt is taken as 1 second.
    assert generate.pool_target(retarget_chain([0] * 12, 2**240), 12, 12, net) == 2**240 * 9 // 10


# --- §11.2/§11.3 transactions and subsidy ------------------------------------------------

def test_v17_transaction_references():
    tracker = Tracker()
    txs = [make_tx(i) for i in range(12)]
    keys = [bitcoin_data.tx_key(tx) for tx in txs]
    # share i includes tx i (new) and tx i-1 (first listed by share i-1) and tx 0 (first listed by share 0)
    shares = testchain.mine_chain(BTC, 6, version=17, tracker=tracker,
                                  transactions=lambda i: ([txs[i]] + ([txs[i - 1]] if i else [])
                                                          + ([txs[0]] if i > 1 else [])))
    assert shares[0].new_transaction_hashes == [keys[0]]
    assert shares[3].new_transaction_hashes == [keys[3]]
    assert shares[3].transaction_hash_refs == [(0, 0), (1, 0), (3, 0)]
    for share in shares:
        verify.check_share(tracker, share, now=share.timestamp)
    assert shares[5].merkle_link == bitcoin_data.calculate_merkle_link([None, keys[5], keys[4], keys[0]], 0)


def test_segwit_transaction_before_activation_is_refused():
    tracker = Tracker()
    shares = testchain.mine_chain(BTC, 2, version=17, tracker=tracker)
    with pytest.raises(GenerateError, match='segwit'):
        generate_on(tracker, shares[-1].hash, version=17, txs=[make_tx(1, segwit=True)])


def test_segwit_data_with_transactions(chain):
    tracker, shares = chain
    txs = [make_tx(1, segwit=True), make_tx(2)]
    share_info, gentx, other_keys, _ = generate_on(tracker, shares[-1].hash, txs=txs)
    assert other_keys == [bitcoin_data.tx_key(tx) for tx in txs]
    segwit_data = share_info['segwit_data']
    assert segwit_data['txid_merkle_link'] == bitcoin_data.calculate_merkle_link(
        [None] + [bitcoin_data.txid(tx) for tx in txs], 0)
    assert segwit_data['wtxid_merkle_root'] == bitcoin_data.merkle_hash([0] + [bitcoin_data.wtxid(tx) for tx in txs])
    assert 'transaction_hash_refs' not in share_info


def test_size_limit_removes_fees_from_the_subsidy(chain):
    tracker, shares = chain
    txs = [make_tx(i) for i in range(1, 6)]
    size = len(bitcoin_data.tx_id_type.pack(txs[0]))
    limited = testchain.easy_network(BTC, BLOCK_MAX_SIZE=80 + 50000 + 500 + 2 * size)
    fees = {bitcoin_data.tx_key(tx): 10 + i for i, tx in enumerate(txs)}
    share_info, _, other_keys, _ = generate_on(tracker, shares[-1].hash, net=limited, txs=txs, fees=fees)
    assert other_keys == [bitcoin_data.tx_key(tx) for tx in txs[:2]]
    assert share_info['share_data']['subsidy'] == 625000000 - (12 + 13 + 14)
    unknown = dict(fees)
    unknown[bitcoin_data.tx_key(txs[4])] = None
    share_info, _, _, _ = generate_on(tracker, shares[-1].hash, net=limited, txs=txs, fees=unknown,
                                      base_subsidy=5 * 10**8)
    assert share_info['share_data']['subsidy'] == 5 * 10**8 + 10 + 11
    with pytest.raises(GenerateError, match='base subsidy'):
        generate_on(tracker, shares[-1].hash, net=limited, txs=txs, fees=unknown)


# --- §11.8 share_info fields ---------------------------------------------------------------

def test_timestamp_rules():
    tracker = Tracker()
    v17 = testchain.mine_chain(BTC, 2, version=17, tracker=tracker)
    prev = v17[-1].timestamp
    for desired, expected in ((prev - 100, prev + 1), (prev + 10, prev + 10), (prev + 1000, prev + 59)):
        info = generate_on(tracker, v17[-1].hash, version=17, desired_timestamp=desired)[0]
        assert info['timestamp'] == expected
    for desired, expected in ((prev - 100, prev + 1), (prev + 1000, prev + 1000)):
        info = generate_on(tracker, v17[-1].hash, version=32, desired_timestamp=desired)[0]
        assert info['timestamp'] == expected
    assert generate_on(Tracker(), None, desired_timestamp=12345)[0]['timestamp'] == 12345


def test_far_share_hash_absheight_abswork():
    net = testchain.easy_network(BTC, CHAIN_LENGTH=120, REAL_CHAIN_LENGTH=120)
    tracker = Tracker()
    shares = testchain.mine_chain(net, 101, tracker=tracker)
    assert all(s.far_share_hash is None for s in shares[:100])
    assert shares[100].far_share_hash == shares[0].hash
    info = generate_on(tracker, shares[-1].hash, net=net)[0]
    assert info['far_share_hash'] == shares[1].hash
    assert info['absheight'] == 102
    assert info['abswork'] == shares[-1].abswork + target_to_average_attempts(bits_to_target(info['bits']))
    assert shares[0].abswork == shares[0].work


def test_unknown_parent_and_short_history():
    with pytest.raises(GenerateError, match='unknown'):
        generate_on(Tracker(), 12345)
    net = testchain.easy_network(BTC, CHAIN_LENGTH=105, REAL_CHAIN_LENGTH=105)
    tracker = Tracker()
    shares = testchain.mine_chain(net, 107, tracker=tracker)
    tracker.remove(shares[0].hash)
    tracker.remove(shares[1].hash)
    generate_on(tracker, shares[-1].hash, net=net)          # 105 shares above the tail: enough
    tracker.remove(shares[2].hash)
    with pytest.raises(GenerateError, match='history'):
        generate_on(tracker, shares[-1].hash, net=net)
    short = testchain.easy_network(BTC, CHAIN_LENGTH=5, REAL_CHAIN_LENGTH=5)
    for old in shares[3:12]:
        tracker.remove(old.hash)
    with pytest.raises(GenerateError, match='history'):   # far_share_hash needs 99 ancestors
        generate_on(tracker, shares[-1].hash, net=short)


def test_version_defaults_to_the_generator_choice():
    share_info, gentx, _, _ = generate.generate_transaction(
        Tracker(), share_data_for(None, testchain.make_addresses(BTC, 1)[0]), BTC.MAX_TARGET, 10**9,
        BTC.MAX_TARGET, EMPTY_LINK, [], BTC, known_txs={})
    assert 'pubkey_hash' in share_info['share_data']     # a new chain starts at version 17


def test_payee_kinds_v35():
    tracker = Tracker()
    addresses = (testchain.make_addresses(BTC, 2, 'bech32') + testchain.make_addresses(BTC, 2, 'p2sh')
                 + testchain.make_addresses(BTC, 1))
    shares = testchain.mine_chain(BTC, 8, addresses=addresses, tracker=tracker)
    _, gentx, _, _ = generate_on(tracker, shares[-1].hash)
    scripts = {out['script'] for out in gentx['tx_outs']}
    for address in addresses:
        assert bitcoin_address.address_to_script(address, BTC.PARENT) in scripts
    assert any(s.startswith(b'\x00\x14') for s in scripts) and any(s.startswith(b'\xa9\x14') for s in scripts)
    for share in shares:
        verify.check_share(tracker, share, now=share.timestamp)


def test_random_chain_amounts_match_formula():
    rng = random.Random(1)
    tracker = Tracker()
    addresses = testchain.make_addresses(BTC, 6)
    previous = None
    for index in range(25):
        share = testchain.mine_share(tracker, BTC, previous, rng.choice(addresses), 10**9 + 30 * index, 35,
                                     target_to_bits(BTC.MAX_TARGET // 4), nonce=index,
                                     donation=rng.choice([0, 655, 65535]),
                                     desired_target=BTC.MAX_TARGET // rng.choice([1, 3, 20]))
        tracker.add(share)
        previous = share.hash
    checked = 0
    for share in tracker.items.values():
        gentx = verify.check_share(tracker, share, now=share.timestamp).tx()
        # payouts and the donation output; the witness commitment and the ref_hash OP_RETURN carry nothing
        paid = {out['script']: out['value'] for out in gentx['tx_outs'] if not out['script'].startswith(b'\x6a')}
        assert sum(out['value'] for out in gentx['tx_outs']) == share.subsidy
        assert paid == expected_payouts(tracker, share, BTC)
        checked += share.previous_hash is not None and tracker.items[share.previous_hash].previous_hash is not None
    assert checked == 23     # every share with a grandparent has a PPLNS window


def expected_payouts(tracker, share, net):
    """{output script: satoshis} of `share`'s gentx, from shares.md §11.4-§11.5 written out
    naively (a fresh walk of the chain, no caches, none of the generator's code)."""
    items = tracker.items
    parent = items.get(share.previous_hash) if share.previous_hash is not None else None
    height = tracker.get_height(share.previous_hash) if parent is not None else 0
    max_shares = max(0, min(height, net.REAL_CHAIN_LENGTH) - 1)
    desired_weight = 65535 * net.SPREAD * target_to_average_attempts(bits_to_target(share.header['bits']))
    weights, total, count = {}, 0, 0
    current = items.get(parent.previous_hash) if parent is not None and parent.previous_hash is not None else None
    while current is not None and count < max_shares and total < desired_weight:
        attempts = target_to_average_attempts(current.target)
        if total + attempts * 65535 > desired_weight:
            part = (desired_weight - total) // 65535
            weights[current.payout_address] = weights.get(current.payout_address, 0) + part * (65535 - current.donation)
            total = desired_weight
            break
        weights[current.payout_address] = weights.get(current.payout_address, 0) + attempts * (65535 - current.donation)
        total += attempts * 65535
        count += 1
        current = items.get(current.previous_hash) if current.previous_hash is not None else None
    subsidy = share.subsidy
    amounts = {key: subsidy * 199 * weight // (200 * total) for key, weight in weights.items() if weight}
    amounts[share.payout_address] = amounts.get(share.payout_address, 0) + subsidy // 200
    donation = subsidy - sum(amounts.values())
    padding = bitcoin_address.padding_for_share_version(share.VERSION)
    payouts = {bitcoin_address.address_to_script(key, net.PARENT, padding=padding): amount
               for key, amount in amounts.items() if amount}
    payouts[bitcoin_address.DONATION_SCRIPT] = payouts.get(bitcoin_address.DONATION_SCRIPT, 0) + donation
    return payouts
