"""Merged mining (p2pool.work.merged) against the merged-mining TEST DOUBLE daemon."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pool.bitcoin import data
from p2pool.bitcoin.hashes import hash256
from p2pool.bitcoin.template import parse_template
from p2pool.testing import block_builder
from p2pool.testing.fake_merged_daemon import EASY_TARGET, FakeMergedDaemon, check_auxpow
from p2pool.work import merged
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)

OTHER_TX = {'version': 1, 'tx_ins': [{'previous_output': {'hash': 9, 'index': 1}, 'script': b'\x00',
                                      'sequence': None}],
            'tx_outs': [{'value': 1, 'script': b'\x51'}], 'lock_time': 0}
TEMPLATE = parse_template({
    'version': 0x20000000, 'previousblockhash': '%064x' % 0x42, 'height': 300, 'bits': '207fffff',
    'curtime': 1700000000, 'coinbasevalue': 5000000000, 'coinbaseaux': {'flags': ''},
    'transactions': [{'data': data.tx_type.pack(OTHER_TX).hex(), 'fee': 0}] * 3})


# --- aux tree (vectors.md B) ------------------------------------------------------------

def test_make_auxpow_tree_known_answers():
    assert merged.make_auxpow_tree([1]) == ({0: 1}, 1)
    assert merged.make_auxpow_tree([1, 2, 3]) == ({0: 2, 1: 3, 3: 1}, 4)


@given(st.integers(0, 2**31), st.integers(0, 30))
def test_chain_slot_is_the_spec_formula_at_nonce_zero(chain_id, height):
    size = 2**height
    assert merged.chain_slot(chain_id, size) == (1103515245 * chain_id + 1103515245 * 12345 + 12345) % size


@given(st.sets(st.integers(0, 2**20), min_size=1, max_size=12))
def test_tree_has_distinct_slots_at_the_smallest_size(chain_ids):
    tree, size = merged.make_auxpow_tree(chain_ids)
    assert sorted(tree.values()) == sorted(chain_ids) and all(slot < size for slot in tree)
    assert all(tree[merged.chain_slot(c, size)] == c for c in chain_ids)
    smaller = size // 2
    if size > 1 and smaller >= len(chain_ids):
        assert len({merged.chain_slot(c, smaller) for c in chain_ids}) < len(chain_ids)


def test_duplicate_chain_ids_cannot_share_a_tree():
    with pytest.raises(merged.MergedMiningError):
        merged.make_auxpow_tree([5, 5])


def test_commitment_bytes():
    works = {1: merged.AuxWork(1, 0x1111, 'p2pool'), 2: merged.AuxWork(2, 0x2222, 5),
             3: merged.AuxWork(3, 0x3333, 5)}
    commitment = merged.build_commitment(works)
    assert commitment.size == 4 and commitment.mm_hashes == [0x2222, 0x3333, 0, 0x1111]
    assert len(commitment.data) == 44 and commitment.data[:4] == bytes.fromhex('fabe6d6d')
    assert commitment.data[4:36] == data.merkle_hash(commitment.mm_hashes).to_bytes(32, 'big')
    assert commitment.data[36:] == (4).to_bytes(4, 'little') + bytes(4)
    assert merged.build_commitment({}) is None


def test_parse_aux_block_reads_the_target_little_endian():
    work = merged.parse_aux_block({'target': 'aa' * 32, 'chainid': 1,
                                   'hash': '2756ea0315d46dc3d8d974f34380873fc88863845ac01a658ef11bc3b368af52'})
    assert work.target == int('aa' * 32, 16) and work.chain_id == 1
    assert work.hash == 0x2756ea0315d46dc3d8d974f34380873fc88863845ac01a658ef11bc3b368af52
    le_target = merged.parse_aux_block({'_target': '00' * 31 + '7f', 'chainid': 2, 'hash': '01'})
    assert le_target.target == 0x7f << 248
    assert merged.parse_aux_block({'target': 'p2pool', 'chainid': 3, 'hash': 'ff'}).target == 'p2pool'


@pytest.mark.parametrize('reply', [None, [], {'chainid': 1, 'hash': 'zz', 'target': 'p2pool'},
                                   {'chainid': -1, 'hash': '01', 'target': 'p2pool'},
                                   {'chainid': 1, 'hash': '01', 'target': 'abcd'}, {'hash': '01'}])
def test_malformed_aux_block_replies(reply):
    with pytest.raises(merged.MergedMiningError):
        merged.parse_aux_block(reply)


# --- auxpow construction vs the strict checker ---------------------------------------------

def mine_parent(commitment, target=EASY_TARGET, extra=()):
    """A parent block whose coinbase commits to `commitment`, solved to `target`."""
    coinbase = block_builder.build_coinbase(TEMPLATE, extra_pushes=[commitment.data, *extra])
    block = block_builder.build_block(TEMPLATE, coinbase)
    block['header'] = block_builder.solve(block['header'], target)
    return block


def three_chain_commitment():
    return merged.build_commitment({c: merged.AuxWork(c, 0x1000 + c, EASY_TARGET) for c in (1, 2, 3)})


def test_built_auxpow_passes_the_strict_checker_for_every_chain():
    commitment = three_chain_commitment()
    block = mine_parent(commitment)
    for chain_id in (1, 2, 3):
        aux_pow = merged.build_aux_pow(commitment, chain_id, block['header'], block['txs'][0],
                                       block_builder.coinbase_branch(block))
        assert check_auxpow(aux_pow, 0x1000 + chain_id, chain_id, EASY_TARGET) is None


def tampered(field):
    commitment = three_chain_commitment()
    block = mine_parent(commitment)
    branch = block_builder.coinbase_branch(block)
    record = data.aux_pow_type.unpack(merged.build_aux_pow(commitment, 2, block['header'], block['txs'][0],
                                                           branch))
    if field == 'block_hash':
        record['merkle_tx']['block_hash'] ^= 1
    elif field == 'coinbase_branch':
        record['merkle_tx']['merkle_link']['branch'][0] ^= 1
    elif field == 'chain_branch':
        record['merkle_link']['branch'][1] ^= 1
    elif field == 'header_nonce':
        record['parent_block_header']['nonce'] += 1
    return data.aux_pow_type.pack(record)


@pytest.mark.parametrize('field, reason', [
    ('block_hash', 'block_hash is not the parent header hash'),
    ('coinbase_branch', 'does not reach the parent merkle root'),
    ('chain_branch', 'root is not in the parent coinbase'),
    ('header_nonce', 'block_hash is not the parent header hash'),
])
def test_checker_refuses_each_kind_of_tampering(field, reason):
    assert reason in check_auxpow(tampered(field), 0x1002, 2, EASY_TARGET)


def test_checker_refuses_a_consistent_proof_in_the_wrong_slot():
    mm_hashes = [0, 0, 0x1002, 0]  # chain 2 belongs in slot 0 of a 4-slot tree
    record = data.aux_pow_coinbase_type.pack({'merkle_root': data.merkle_hash(mm_hashes), 'size': 4, 'nonce': 0})
    wrong = merged.AuxCommitment(works={}, slots={2: 2}, size=4, mm_hashes=mm_hashes,
                                 data=data.MERGED_MINING_MAGIC + record)
    block = mine_parent(wrong)
    aux_pow = merged.build_aux_pow(wrong, 2, block['header'], block['txs'][0], block_builder.coinbase_branch(block))
    assert 'chain 2 belongs in slot 0' in check_auxpow(aux_pow, 0x1002, 2, EASY_TARGET)


def test_checker_refuses_weak_pow_bad_bytes_and_doubled_magic():
    commitment = three_chain_commitment()
    block = mine_parent(commitment, target=2**256 - 1)
    args = (commitment, 1, block['header'], block['txs'][0], block_builder.coinbase_branch(block))
    header_hash = data.header_hash(block['header'])
    assert 'does not meet the aux target' in check_auxpow(merged.build_aux_pow(*args), 0x1001, 1, header_hash - 1)
    assert 'does not decode' in check_auxpow(merged.build_aux_pow(*args) + b'\x00', 0x1001, 1, EASY_TARGET)
    doubled = mine_parent(commitment, extra=[commitment.data])
    aux_pow = merged.build_aux_pow(commitment, 1, doubled['header'], doubled['txs'][0],
                                   block_builder.coinbase_branch(doubled))
    assert 'more than one merged-mining magic' in check_auxpow(aux_pow, 0x1001, 1, EASY_TARGET)


def test_single_chain_tree_has_an_empty_branch():
    commitment = merged.build_commitment({7: merged.AuxWork(7, 0xabc, EASY_TARGET)})
    block = mine_parent(commitment)
    aux_pow = data.aux_pow_type.unpack(merged.build_aux_pow(commitment, 7, block['header'], block['txs'][0],
                                                            block_builder.coinbase_branch(block)))
    assert aux_pow['merkle_link'] == {'branch': [], 'index': 0}
    assert commitment.merkle_root == 0xabc


# --- polling and submitting against the test double ------------------------------------------

@pytest.fixture
def fake_daemon():
    with FakeMergedDaemon(chain_id=1) as double:
        yield double


def start_mining(url, **kwargs):
    """(daemon, mining) started in the reactor; returns once the first aux block is known."""
    def start():
        daemon = merged.MergedDaemon(url, poll_interval=0.05, submit_retry_delay=0.05, **kwargs)
        return daemon, merged.MergedMining([daemon]).start()
    daemon, mining = run_in_reactor(start)
    wait_for(lambda: daemon.work is not None)
    return daemon, mining


@pytest.mark.parametrize('payout_address', [None, 'mzBc4XEFSdzCDcTxAgf6EZXgsZWpztRhef'])
def test_round_trip_with_the_test_double(reactor, fake_daemon, payout_address):
    daemon, mining = start_mining(fake_daemon.url, payout_address=payout_address)
    try:
        first_hash = daemon.work.hash
        assert first_hash == fake_daemon.current_hash and daemon.work.target == EASY_TARGET
        commitment = run_in_reactor(mining.commitment)
        block = mine_parent(commitment)
        pow_hash = hash256(data.header_type.pack(block['header']))
        answers = run_in_reactor(lambda: mining.submit_solution(
            commitment, block['header'], block['txs'][0], block_builder.coinbase_branch(block), pow_hash, 0))
        assert [run_in_reactor(lambda: d) for d in answers] == [True]
        assert fake_daemon.accepted == [first_hash] and fake_daemon.rejections == []
        wait_for(lambda: daemon.work.hash == fake_daemon.current_hash != first_hash)
        if payout_address:
            assert fake_daemon.addresses[0] == payout_address
            assert any(method == 'submitauxblock' for method, _ in fake_daemon.server.calls)
    finally:
        run_in_reactor(mining.stop)


def test_solution_missing_the_aux_target_is_not_submitted(reactor, fake_daemon):
    fake_daemon.target = 1  # practically unreachable
    daemon, mining = start_mining(fake_daemon.url)
    try:
        commitment = run_in_reactor(mining.commitment)
        block = mine_parent(commitment)
        pow_hash = hash256(data.header_type.pack(block['header']))
        assert run_in_reactor(lambda: mining.submit_solution(
            commitment, block['header'], block['txs'][0], [], pow_hash, share_target=2**256 - 1)) == []
    finally:
        run_in_reactor(mining.stop)


def test_bad_auxpow_is_refused_with_a_reason(reactor, fake_daemon):
    daemon, mining = start_mining(fake_daemon.url)
    try:
        commitment = run_in_reactor(mining.commitment)
        block = mine_parent(commitment)
        aux_pow = merged.build_aux_pow(commitment, 1, block['header'], block['txs'][0], [12345])
        assert run_in_reactor(daemon.submit, daemon.work.hash, aux_pow, timeout=15) is False
        assert 'merkle' in fake_daemon.rejections[0][1]
    finally:
        run_in_reactor(mining.stop)


def test_unreachable_daemon_clears_its_work_and_backs_off(reactor, fake_daemon, caplog):
    daemon, mining = start_mining(fake_daemon.url)
    daemon.error_delay = 0.2
    changes = []
    run_in_reactor(mining.changed.watch, lambda: changes.append(daemon.work))
    fake_daemon.stop()
    wait_for(lambda: daemon.work is None)
    assert None in changes and 'merged-mining daemon at' in caplog.text
    fake_daemon.start()
    wait_for(lambda: daemon.work is not None, timeout=10)
    run_in_reactor(mining.stop)


def test_url_must_carry_credentials():
    with pytest.raises(merged.MergedMiningError, match='credentials'):
        merged.MergedDaemon('http://127.0.0.1:8336/')


# --- merged mining on top of the real regtest bitcoind ------------------------------------------

@pytest.mark.bitcoind
def test_merged_round_trip_with_a_real_parent_block(reactor, regtest_node, fake_daemon):
    from p2pool.config import load_network
    from p2pool.bitcoin.daemon import BitcoindBridge
    node = regtest_node
    bridge = BitcoindBridge('127.0.0.1', node.rpc_port, node.p2p_port, node.user, node.password,
                            load_network('bsv_regtest'), reactor=reactor)
    run_in_reactor(bridge.start, timeout=30)
    daemon, mining = start_mining(fake_daemon.url)
    try:
        tip = int(node.rpc('getbestblockhash'), 16)
        wait_for(lambda: bridge.source.current.previous_block == tip, timeout=20)
        template, commitment = bridge.source.current, run_in_reactor(mining.commitment)
        block = block_builder.solved_block(template, extra_pushes=[commitment.data], tag=b'merged')
        pow_hash = hash256(data.header_type.pack(block['header']))
        assert run_in_reactor(bridge.submitter.submit, block, timeout=30).accepted
        answers = run_in_reactor(lambda: mining.submit_solution(
            commitment, block['header'], block['txs'][0], block_builder.coinbase_branch(block), pow_hash,
            template.block_target))
        assert [run_in_reactor(lambda: d, timeout=15) for d in answers] == [True]
        assert node.rpc('getbestblockhash') == '%064x' % data.header_hash(block['header'])
        assert fake_daemon.accepted == [commitment.works[1].hash] and not fake_daemon.rejections
    finally:
        run_in_reactor(mining.stop)
        run_in_reactor(bridge.stop)
