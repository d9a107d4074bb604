"""WorkBridge: work records, the caching bridge, refusals, targets and solution handling."""
import dataclasses
import logging
import struct

import pytest

from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.address import DONATION_SCRIPT
from p2pool.bitcoin.data import bits_to_target, difficulty_to_target, target_to_average_attempts
from p2pool.testing.testchain import make_addresses
from p2pool.work import bridge as bridge_module
from p2pool.work import targets
from p2pool.work.bridge import GETWORK_PREFIX_LIMIT, WorkRefused
from worker_helpers import header_for, make_bridge, make_template, solve

ZERO4 = b'\x00' * 4


@pytest.fixture
def env():
    return make_bridge()


def miner(env, index=0):
    return make_addresses(env.net, index + 1, seed=b'miner')[index]


def test_work_record_fields(env):
    record, _ = env.bridge.get_work(miner(env))
    template = env.source.current
    assert record.previous_block == template.previous_block
    assert record.bits == template.bits and record.timestamp == template.time
    assert record.version == 0x20000000
    assert record.coinb2 == b'\x00' * 4
    assert record.coinb1.endswith(ZERO4)      # the caching bridge's counter n = 0
    assert record.min_share_target <= env.net.MAX_TARGET
    assert record.share_target >= record.min_share_target
    low, high = env.net.PARENT.SANE_TARGET_RANGE
    assert low <= record.share_target <= high
    gentx = bitcoin_data.tx_id_type.unpack(record.coinb1 + ZERO4 + record.coinb2)
    assert gentx['tx_ins'][0]['script'][:3] == bytes([2, 200, 0])   # BIP34 height push of 200
    assert record.payee == miner(env)


def test_each_getwork_request_gets_its_own_coinbase(env):
    records = [env.bridge.get_work(miner(env))[0] for _ in range(3)]
    assert [r.coinb1[-4:] for r in records] == [struct.pack('<I', n) for n in range(3)]
    assert len({r.coinb1[:-4] for r in records}) == 1   # one generated gentx, three prefixes
    roots = {header_for(r, ZERO4)['merkle_root'] for r in records}
    assert len(roots) == 3


def test_stratum_extranonce1_never_collides_with_getwork_prefixes(env):
    values = [struct.unpack('<I', env.bridge.reserve_extranonce1())[0] for _ in range(5)]
    assert len(set(values)) == 5
    assert all(value >= GETWORK_PREFIX_LIMIT for value in values)


def test_getwork_counter_exhaustion_regenerates(env, monkeypatch):
    monkeypatch.setattr(bridge_module, 'GETWORK_PREFIX_LIMIT', 2)
    first = [env.bridge.get_work(miner(env))[0] for _ in range(2)]
    third, _ = env.bridge.get_work(miner(env))
    assert third.coinb1[-4:] == ZERO4 and third.coinb1 != first[0].coinb1


def test_cache_is_per_payee_and_cleared_by_new_work(env):
    a, _ = env.bridge.get_work(miner(env, 0))
    b, _ = env.bridge.get_work(miner(env, 1))
    assert a.coinb1[:-4] != b.coinb1[:-4]
    env.bridge.bump('test')
    c, _ = env.bridge.get_work(miner(env, 0))
    assert c.coinb1[-4:] == ZERO4 and c.coinb1 != a.coinb1
    assert c.identifier == a.identifier + 1


# --- the new-work event ------------------------------------------------------------

def test_new_work_event_triggers(env):
    fired = []
    env.bridge.new_work.watch(fired.append)
    template = env.source.current
    env.source.set(dataclasses.replace(template, time=template.time + 5, last_update=template.last_update + 5))
    assert fired == []                                   # same block: no new work
    env.source.set(dataclasses.replace(template, previous_block=0x5678))
    assert len(fired) == 1
    tx = {'version': 1, 'tx_ins': [{'previous_output': {'hash': 7, 'index': 0}, 'script': b'\x51',
                                    'sequence': None}], 'tx_outs': [{'value': 1, 'script': b'\x51'}],
          'lock_time': 0}
    env.source.set(make_template(previous_block=0x5678, transactions=[tx]))
    assert len(fired) == 2                               # transactions appeared
    env.source.set(make_template(previous_block=0x5678, transactions=[tx, tx]))
    assert len(fired) == 2
    env.node.new_work()
    assert fired == [1, 2, 3]


# --- refusals -------------------------------------------------------------------------

def test_refusals(env):
    bridge = env.bridge
    assert bridge.refusal() is None
    env.source.current = dataclasses.replace(env.source.current, rules=['csv', '!bip65', ''])
    assert bridge.refusal() is None
    env.source.current = dataclasses.replace(env.source.current, rules=['!segwit'])
    assert bridge.refusal() == 'unknown rule activated'
    env.source.current = dataclasses.replace(env.source.current, rules=[], last_update=0)
    assert bridge.refusal() == 'lost contact with bitcoind'
    env.source.current = None
    with pytest.raises(WorkRefused) as info:
        bridge.get_work(miner(env))
    assert info.value.message == 'lost contact with bitcoind' and info.value.code == -12345


def test_refusals_on_persistent_networks():
    env = make_bridge()
    env.bridge.net = dataclasses.replace(env.net, PERSIST=True)
    env.node.peers = 0
    assert env.bridge.refusal() == 'p2pool is not connected to any peers'
    env.node.peers = 3
    assert env.bridge.refusal() == 'p2pool is downloading shares'


# --- solutions ----------------------------------------------------------------------------

def test_block_share_and_pseudoshare(env):
    record, handler = env.bridge.get_work(miner(env))
    pow_hash = env.net.PARENT.pow_hash
    header = solve(header_for(record, ZERO4), pow_hash, target=record.min_share_target)
    received = []
    env.bridge.pseudoshare_received.watch(lambda *args: received.append(args))
    result = handler(header)
    assert result.on_time and result.block and result.pseudoshare == 'accepted'
    (block, segwit), = env.blocks
    assert block['header'] == header and segwit is False
    assert bitcoin_data.merkle_hash([bitcoin_data.txid(tx) for tx in block['txs']]) == header['merkle_root']
    (share, dead), = env.shares
    assert not dead and share.hash == bitcoin_data.header_hash(header)
    assert share.payout_address == miner(env) and share.last_txout_nonce == 0
    assert received == [(target_to_average_attempts(record.share_target), False, miner(env))]


def test_share_nonce_is_prefix_then_miner_bytes(env):
    record, base = env.bridge.get_stratum_work(miner(env))
    extranonce1, extranonce2 = env.bridge.reserve_extranonce1(), bytes.fromhex('01020304')
    header = solve(header_for(record, extranonce1 + extranonce2), env.net.PARENT.pow_hash,
                   target=record.min_share_target)
    result = base.solve(header, extranonce1 + extranonce2, record.share_target, 'w')
    assert result.share.last_txout_nonce == struct.unpack('<Q', extranonce1 + extranonce2)[0]


def test_duplicate_low_difficulty_and_mismatch(env):
    record, handler = env.bridge.get_work(miner(env) + '+1000000')   # pseudoshare difficulty far above
    pow_hash = env.net.PARENT.pow_hash
    header = solve(header_for(record, ZERO4), pow_hash, above=record.block_target)   # not even a block
    result = handler(header)
    assert result.pseudoshare == 'low-difficulty' and result.on_time and not result.block
    assert handler(header).pseudoshare == 'low-difficulty'   # a too-weak header is not remembered (§8)
    wrong = solve(dict(header, previous_block=header['previous_block'] + 1), pow_hash, above=record.block_target)
    result = handler(wrong)
    assert result.pseudoshare == 'mismatch' and not result.on_time
    assert env.blocks == [] and env.shares == []


def test_dead_on_arrival_share(env):
    record, handler = env.bridge.get_work(miner(env))
    header = solve(header_for(record, ZERO4), env.net.PARENT.pow_hash, target=record.min_share_target)
    env.bridge.bump('a new block arrived')
    result = handler(header)
    assert not result.on_time and result.share is not None
    assert env.shares == [(result.share, True)]


def test_next_work_builds_on_the_best_share(env):
    record, handler = env.bridge.get_work(miner(env))
    header = solve(header_for(record, ZERO4), env.net.PARENT.pow_hash, target=record.min_share_target)
    share = handler(header).share
    env.node.best_share_hash = share.hash
    env.node.new_work()
    record2, handler2 = env.bridge.get_work(miner(env, 1))
    header2 = solve(header_for(record2, ZERO4), env.net.PARENT.pow_hash, target=record2.min_share_target)
    child = handler2(header2).share
    assert child.previous_hash == share.hash and child.absheight == 2


def test_segwit_block_carries_witness_and_commitment():
    env = make_bridge('bitcoin_regtest')
    tx = {'version': 2, 'marker': 0, 'flag': 1,
          'tx_ins': [{'previous_output': {'hash': 99, 'index': 1}, 'script': b'', 'sequence': None}],
          'tx_outs': [{'value': 5, 'script': b'\x00\x14' + b'\x11' * 20}],
          'witness': [[b'\x30' * 71, b'\x02' * 33]], 'lock_time': 0}
    env.source.set(make_template(transactions=[tx], rules=['segwit']))
    address = make_addresses(env.net, 1, seed=b'miner')[0]
    record, handler = env.bridge.get_work(address)
    header = solve(header_for(record, ZERO4), env.net.PARENT.pow_hash, target=record.block_target)
    assert handler(header).block
    (block, segwit), = env.blocks
    assert segwit is True
    gentx = block['txs'][0]
    assert gentx['witness'] == [[bitcoin_data.P2POOL_WITNESS_RESERVED_VALUE]]
    assert gentx['tx_outs'][0]['script'].startswith(bitcoin_data.WITNESS_COMMITMENT_HEADER)
    assert bitcoin_data.merkle_hash([bitcoin_data.txid(t) for t in block['txs']]) == header['merkle_root']
    wtxid_root = bitcoin_data.merkle_hash([0, bitcoin_data.wtxid(tx)])
    expected = bitcoin_data.witness_commitment_script(bitcoin_data.witness_commitment_hash(wtxid_root))
    assert gentx['tx_outs'][0]['script'] == expected


# --- targets and usernames ----------------------------------------------------------------

def test_username_difficulties(env):
    record, _ = env.bridge.get_work(miner(env) + '+0.5')
    low, high = env.net.PARENT.SANE_TARGET_RANGE
    assert record.share_target == targets.clip(max(difficulty_to_target(0.5), record.min_share_target), low, high)
    hard, _ = env.bridge.get_work(miner(env) + '/1e9')
    easy, _ = env.bridge.get_work(miner(env))
    assert hard.min_share_target < easy.min_share_target   # clipped to pre_target3 // 30


def test_invalid_address_mines_to_node_with_one_warning(env, caplog):
    with caplog.at_level(logging.WARNING, logger='p2pool.work.username'):
        for _ in range(3):
            record, _ = env.bridge.get_work('not-an-address.rig1')
    assert record.payee == env.node_address
    assert sum('not a payable address' in message for message in caplog.messages) == 1


def test_worker_fee_and_donation():
    env = make_bridge(fee_percent=100, donation_percentage=100)
    record, _ = env.bridge.get_work(miner(env))
    assert record.payee == env.node_address
    gentx = bitcoin_data.tx_id_type.unpack(record.coinb1 + ZERO4 + record.coinb2)
    donation = [out for out in gentx['tx_outs'] if out['script'] == DONATION_SCRIPT]
    assert donation and donation[0]['value'] > 0


def test_local_hash_rate_after_fifty_pseudoshares(env):
    now = [1000.0]
    env.bridge.clock = lambda: now[0]
    env.source.current = dataclasses.replace(env.source.current, last_update=1000.0)
    record, handler = env.bridge.get_work(miner(env))
    header = header_for(record, ZERO4)
    for _ in range(50):
        now[0] += 1
        header = solve(header, env.net.PARENT.pow_hash, target=record.share_target, start=header['nonce'] + 1)
        assert handler(header).pseudoshare == 'accepted'
    work = target_to_average_attempts(record.share_target)
    assert env.bridge.hash_rate() == 49 * work // 49.0
    rates, dead = env.bridge.local_rates()
    assert rates == {miner(env): pytest.approx(work)} and dead == {}   # 49 datums after the first, 49 s


def test_pseudoshare_target_without_hash_rate_uses_dust_rule():
    net = make_bridge().net
    block_target = bits_to_target(0x1d00ffff)
    expected = 3000 * targets.dust_target(block_target, net.SPREAD, net.PARENT.DUST_THRESHOLD, 5000000000)
    low, high = net.PARENT.SANE_TARGET_RANGE
    assert targets.pseudoshare_target(net, None, None, block_target, 5000000000, 0) == targets.clip(
        expected, low, high)
    assert targets.pseudoshare_target(net, None, 10**9, block_target, 5000000000, 0) == targets.clip(
        bitcoin_data.average_attempts_to_target(10**8), low, high)


# --- merged mining -------------------------------------------------------------------------

class FakeMerged:
    def __init__(self, works):
        from p2pool.events import Event
        from p2pool.work.merged import build_commitment
        self.works, self.build = works, build_commitment
        self.changed = Event()
        self.submitted = []

    def commitment(self):
        return self.build(self.works)

    def submit_solution(self, commitment, header, coinbase_tx, coinbase_branch, pow_hash, share_target):
        self.submitted.append((commitment, header, coinbase_tx, coinbase_branch, pow_hash, share_target))
        return []


def test_merged_mining_commitment_and_submission():
    from p2pool.work.merged import AuxWork
    aux_target = 2**254
    merged = FakeMerged({7: AuxWork(chain_id=7, hash=0xabc, target=aux_target)})
    env = make_bridge(merged=merged)
    fired = []
    env.bridge.new_work.watch(fired.append)
    merged.changed.happened()
    assert fired == [1]
    record, handler = env.bridge.get_work(miner(env))
    gentx = bitcoin_data.tx_id_type.unpack(record.coinb1 + ZERO4 + record.coinb2)
    script = gentx['tx_ins'][0]['script']
    commitment = merged.commitment()
    assert script[3:4] == bytes([44]) and script[4:48] == commitment.data   # right after the height push
    assert record.share_target >= aux_target                                # pseudoshares cover aux blocks
    header = solve(header_for(record, ZERO4), env.net.PARENT.pow_hash, target=aux_target,
                   above=record.min_share_target)
    handler(header)
    (used, solved, coinbase_tx, branch, pow_hash, share_target), = merged.submitted
    assert used.data == commitment.data and solved == header and branch == record.merkle_link['branch']
    assert bitcoin_data.txid(coinbase_tx) == bitcoin_data.hash256(record.coinb1 + ZERO4 + record.coinb2)
    assert pow_hash <= aux_target and share_target == record.min_share_target
