"""The miner interface and the bitcoind link against worker.md (one test per deviation found)."""
import struct

from p2pool.bitcoin import data as bitcoin_data
from p2pool.testing.testchain import make_addresses
from twisted_helpers import reactor  # noqa: F401 (fixture)
from worker_helpers import header_for, make_bridge, solve

ZERO4 = b'\x00' * 4


def _miner(env):
    return make_addresses(env.net, 1, seed=b'miner')[0]


# --- §8: order of solved-header handling ----------------------------------------------------

def test_block_is_submitted_before_the_sanity_check():
    """§8 step 3 before step 4: a block-meeting header goes to bitcoind even if it does not match its job."""
    env = make_bridge()
    record, handler = env.bridge.get_work(_miner(env))
    wrong = dict(header_for(record, ZERO4), previous_block=record.previous_block + 1)
    header = solve(wrong, env.net.PARENT.pow_hash, target=record.block_target)
    result = handler(header)
    assert result.pseudoshare == 'mismatch' and not result.on_time and result.block
    (block, _), = env.blocks
    assert block['header'] == header
    assert env.shares == []


def test_a_resubmitted_block_goes_to_bitcoind_again_but_makes_one_share():
    """§8: the block is submitted on every submission; duplicates only affect steps 7 and 8."""
    env = make_bridge()
    record, handler = env.bridge.get_work(_miner(env))
    header = solve(header_for(record, ZERO4), env.net.PARENT.pow_hash, target=record.min_share_target)
    first, second = handler(header), handler(header)
    assert first.block and second.block
    assert len(env.blocks) == 2 and len(env.shares) == 1
    assert first.pseudoshare == 'accepted' and second.pseudoshare == 'duplicate'
    assert second.on_time and second.share is None


def test_a_header_missing_the_pseudoshare_target_is_not_remembered():
    """§8 step 8: only an accepted pseudoshare's header hash is remembered; resubmitting a
    too-weak header is logged as "hash > target" again, not as a duplicate."""
    env = make_bridge()
    record, handler = env.bridge.get_work(_miner(env) + '+1000000')
    header = solve(header_for(record, ZERO4), env.net.PARENT.pow_hash, above=record.block_target)
    assert handler(header).pseudoshare == 'low-difficulty'
    result = handler(header)
    assert result.pseudoshare == 'low-difficulty' and result.on_time


# --- §12: bitcoind credentials --------------------------------------------------------------

def test_a_password_given_alone_on_the_command_line_is_used(tmp_path):
    """`p2pool RPCPASS` (one positional argument) is the password; the conf file must not override it."""
    from types import SimpleNamespace

    from p2pool.bitcoin import conf
    parent = SimpleNamespace(CHAIN='regtest', RPC_PORT=18332, P2P_PORT=18444, CONF_FILE_NAME='bitcoin.conf')
    (tmp_path / 'bitcoin.conf').write_text('[regtest]\nrpcuser=x\nrpcpassword=y\n')
    access = conf.resolve_access(parent, password='p', datadir=str(tmp_path))
    assert (access.user, access.password, access.credentials_source) == ('x', 'p', 'command line')
    (tmp_path / 'bitcoin.conf').write_text('')
    (tmp_path / 'regtest').mkdir()
    (tmp_path / 'regtest' / '.cookie').write_text('__cookie__:s3cret')
    access = conf.resolve_access(parent, password='p', datadir=str(tmp_path))
    assert (access.user, access.password) == ('', 'p')


# --- §5: username modifiers -------------------------------------------------------------------

def test_zero_and_infinite_difficulties_are_parsed_not_ignored():
    """§5: values are parsed as floats and only unparsable ones are ignored; difficulty_to_target(0)
    is 2**256 - 1 (serialization.md §5), so "+0" asks for the easiest pseudoshares."""
    from p2pool.work.username import parse_username
    name = parse_username('addr+0/0')
    assert name.desired_pseudoshare_target == name.desired_share_target == 2**256 - 1
    assert parse_username('addr+inf').desired_pseudoshare_target == 0
    assert parse_username('addr+-1/nan').desired_pseudoshare_target is None


def test_username_plus_zero_gets_the_easiest_sane_pseudoshare_target():
    env = make_bridge()
    record, _ = env.bridge.get_work(_miner(env) + '+0')
    assert record.share_target == env.net.PARENT.SANE_TARGET_RANGE[1]
    record, _ = env.bridge.get_work(_miner(env) + '+inf')     # target 0: raised to the share target
    assert record.share_target == max(record.min_share_target, env.net.PARENT.SANE_TARGET_RANGE[0])


# --- §1.1: getblocktemplate <-> getmemorypool -------------------------------------------------

def test_getmemorypool_mode_switches_back_to_getblocktemplate(reactor):
    """§1.1: a -32601 from getblocktemplate tries getmemorypool "and vice versa"."""
    from p2pool.bitcoin import rpc
    from p2pool.bitcoin.template import TemplateSource
    from p2pool.config import load_network
    from p2pool.testing.jsonrpc_server import JsonRpcTestServer
    from twisted_helpers import run_in_reactor
    legacy = {'version': 0x20000000, 'previousblockhash': '00' * 31 + 'ab', 'height': 102, 'bits': '207fffff',
              'curtime': 1700000000, 'coinbasevalue': 5000000000, 'transactions': []}
    with JsonRpcTestServer({'getmemorypool': lambda: legacy}) as server:
        source = TemplateSource(rpc.RpcClient('127.0.0.1', server.port, server.user, server.password),
                                load_network('bsv_regtest'), longpoll=False)
        assert run_in_reactor(source.start).height == 102
        del server.handlers['getmemorypool']              # the daemon is replaced by a modern one
        server.handlers['getblocktemplate'] = lambda request: dict(legacy, height=103)
        assert run_in_reactor(source.refresh).height == 103
        run_in_reactor(source.stop)
    assert [c[0] for c in server.calls] == ['getblocktemplate', 'getmemorypool', 'getmemorypool',
                                            'getblocktemplate']


# --- §4.3: Stratum vardiff counts every submission ---------------------------------------------

def test_vardiff_counts_low_difficulty_submissions_too(reactor):
    """§4.3: "After each submission (not fixed): append now to recent" - a miner flooding the
    node with too-weak submissions has its difficulty raised like any other fast miner."""
    import random

    from p2pool.work.cpuminer import StratumMiner, sha256d_int
    from twisted_helpers import run_in_reactor
    from worker_helpers import start_worker_server, stop_worker_server
    env = run_in_reactor(make_bridge)
    server = run_in_reactor(start_worker_server, env, share_rate=3.0)
    miner = StratumMiner('127.0.0.1', server.number, _miner(env) + '.rig').connect()
    try:
        start_jobs = miner.jobs_received
        job = miner.job
        for _ in range(13):
            extranonce2 = struct.pack('<I', random.getrandbits(32))
            prefix = miner.header_prefix(job, extranonce2)
            nonce = next(n for n in range(2**32) if sha256d_int(prefix + struct.pack('<I', n)) > 2**255)
            assert miner.submit(job, extranonce2, nonce)[1]['code'] == 23
        miner.poll()
        assert miner.jobs_received == start_jobs + 1     # the vardiff step sent new work
        assert [m for m, _ in miner.notifications[-2:]] == ['mining.set_difficulty', 'mining.notify']
    finally:
        miner.close()
        run_in_reactor(stop_worker_server, server)


# --- §7.3: ntime / nonce / version_bits are exactly 8 hex digits ---------------------------------

def test_hex_fields_refuse_signs_spaces_and_prefixes():
    import pytest

    from p2pool.work import jsonrpc
    from p2pool.work.stratum import _hex_u32
    assert _hex_u32('0000abcd', 'nonce') == 0xabcd
    for bad in ('-0000001', ' 1234567', '0x123456', '+1234567', '1_234567', '12 34 56', 'zzzzzzzz'):
        with pytest.raises(jsonrpc.JsonRpcError) as caught:
            _hex_u32(bad, 'nonce')
        assert caught.value.code == jsonrpc.STRATUM_OTHER


# --- §10.3: block submission retries JSON-RPC errors too ------------------------------------------

def test_submitblock_error_answers_are_retried(reactor):
    """§10.3 "Retried 10 x 10 s on errors": a daemon still warming up (-28) takes the block later."""
    from p2pool.bitcoin import rpc
    from p2pool.bitcoin.blocks import BlockSubmitter, SubmitResult
    from p2pool.testing.jsonrpc_server import JsonRpcFault, JsonRpcTestServer
    from twisted_helpers import run_in_reactor
    answers = [JsonRpcFault(-28, 'Loading block index...'), None]

    def submitblock(block_hex):
        answer = answers.pop(0)
        if answer is not None:
            raise answer
    coinbase = {'version': 1, 'tx_ins': [{'previous_output': None, 'script': b'\x01\x02', 'sequence': None}],
                'tx_outs': [{'value': 50, 'script': b'\x51'}], 'lock_time': 0}
    block = {'header': {'version': 0x20000000, 'previous_block': 7, 'merkle_root': bitcoin_data.txid(coinbase),
                        'timestamp': 1700000000, 'bits': 0x207fffff, 'nonce': 3}, 'txs': [coinbase]}
    with JsonRpcTestServer({'submitblock': submitblock}) as server:
        client = rpc.RpcClient('127.0.0.1', server.port, server.user, server.password, timeout=2)
        result = run_in_reactor(BlockSubmitter(client, retry_delay=0.05).submit, block)
    assert result == SubmitResult('accepted') and len(server.calls) == 2


# --- §2.1 / §6: the "not connected" refusal is for work requests, not for solutions ---------------

def test_getwork_solution_is_taken_while_no_peer_is_connected(reactor):
    """§2.1: the peers check comes before parsing a *work request*; a solution (a block!) is
    still handled when the last peer has just gone."""
    import dataclasses

    from p2pool.work.cpuminer import GetworkMiner
    from twisted_helpers import run_in_reactor
    from worker_helpers import start_worker_server, stop_worker_server
    env = run_in_reactor(make_bridge)
    server = run_in_reactor(start_worker_server, env)
    try:
        miner = GetworkMiner('127.0.0.1', server.number, _miner(env) + '.gw')
        work, _ = miner.getwork()
        data = miner.solve(work)

        def lose_peers():
            env.bridge.net = dataclasses.replace(env.net, PERSIST=True)
            env.node.peers = 0
        run_in_reactor(lose_peers)
        assert miner.submit(data) == (True, None, None)
        assert len(env.blocks) == 1
        reply, _ = miner.call('getwork', [])
        assert reply['error'] == {'code': -12345, 'message': 'p2pool is not connected to any peers', 'data': None}
    finally:
        run_in_reactor(stop_worker_server, server)
