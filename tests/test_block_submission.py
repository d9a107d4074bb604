"""Block submission over RPC and P2P, and parent block heights (p2pool.bitcoin.blocks).

Doubles: a loopback JSON-RPC server for bitcoind's RPC and a recording stand-in for
the P2P connection; the tests marked `bitcoind` submit real blocks to the regtest node.
"""
import pytest

from p2pool.bitcoin import data, rpc
from p2pool.bitcoin.blocks import BlockSubmitter, ParentHeights, SubmitResult, classify_submitblock
from p2pool.events import Event
from p2pool.testing.jsonrpc_server import JsonRpcFault, JsonRpcTestServer
from twisted_helpers import reactor, run_in_reactor, wait_for  # noqa: F401 (fixture)

COINBASE = {'version': 1, 'tx_ins': [{'previous_output': None, 'script': b'\x01\x02', 'sequence': None}],
            'tx_outs': [{'value': 50, 'script': b'\x51'}], 'lock_time': 0,
            'marker': 0, 'flag': 1, 'witness': [[b'[P2Pool]' * 4]]}
BLOCK = {'header': {'version': 0x20000000, 'previous_block': 7, 'merkle_root': data.txid(COINBASE),
                    'timestamp': 1700000000, 'bits': 0x207fffff, 'nonce': 3},
         'txs': [COINBASE]}


class RecordingP2P:
    """Stands in for BitcoindP2P: refuses the first `offline` sends, then records blocks."""

    def __init__(self, offline=0):
        self.offline, self.sent = offline, []
        self.new_headers = Event()

    def send_block(self, block):
        if self.offline:
            self.offline -= 1
            return False
        self.sent.append(block)
        return True


def submitter(server, p2p=None, **kwargs):
    client = rpc.RpcClient('127.0.0.1', server.port, server.user, server.password, timeout=2)
    kwargs.setdefault('retry_delay', 0.05)
    return BlockSubmitter(client, p2p, **kwargs)


@pytest.mark.parametrize('answer, expected', [
    (None, SubmitResult('accepted')),
    ('inconclusive', SubmitResult('accepted', 'inconclusive')),
    ('duplicate', SubmitResult('duplicate', 'duplicate')),
    ('duplicate-invalid', SubmitResult('rejected', 'duplicate-invalid')),
    ('bad-txnmrklroot', SubmitResult('rejected', 'bad-txnmrklroot')),
])
def test_classify_bip22_answers(answer, expected):
    assert classify_submitblock(answer) == expected


def test_both_paths_are_used_and_segwit_selects_the_serialization(reactor):
    with JsonRpcTestServer({'submitblock': lambda block_hex: None}) as server:
        p2p = RecordingP2P()
        result = run_in_reactor(submitter(server, p2p).submit, BLOCK, segwit=True)
        assert result == SubmitResult('accepted') and p2p.sent == [BLOCK]
        run_in_reactor(submitter(server).submit, BLOCK, segwit=False)
    assert [params[0] for _, params in server.calls] == [data.block_type.pack(BLOCK).hex(),
                                                         data.stripped_block_type.pack(BLOCK).hex()]


def test_rejection_reason_and_pow_disagreement_are_logged(reactor, caplog):
    with JsonRpcTestServer({'submitblock': lambda block_hex: 'high-hash'}) as server:
        result = run_in_reactor(submitter(server).submit, BLOCK, expect_valid=True)
    assert result == SubmitResult('rejected', 'high-hash')
    assert 'rejected (high-hash)' in caplog.text and 'disagrees with our proof-of-work' in caplog.text


def test_rpc_error_answer_is_retried_then_a_rejection(reactor):
    def refuse(block_hex):
        raise JsonRpcFault(-22, 'Block decode failed')
    with JsonRpcTestServer({'submitblock': refuse}) as server:
        result = run_in_reactor(submitter(server, retries=3).submit, BLOCK)
    assert result == SubmitResult('rejected', 'Block decode failed')
    assert [method for method, _ in server.calls] == ['submitblock'] * 3     # §10.3: retried on errors


def test_missing_submitblock_falls_back_to_getblocktemplate_submit(reactor):
    with JsonRpcTestServer({'getblocktemplate': lambda request: 'duplicate'}) as server:
        assert run_in_reactor(submitter(server).submit, BLOCK).status == 'duplicate'
    assert server.calls[-1] == ('getblocktemplate', [{'mode': 'submit',
                                                      'data': data.stripped_block_type.pack(BLOCK).hex()}])


def test_legacy_getmemorypool_submission(reactor):
    with JsonRpcTestServer({'getmemorypool': lambda block_hex: True}) as server:
        assert run_in_reactor(submitter(server).submit, BLOCK, legacy=True) == SubmitResult('accepted')


def test_unreachable_bitcoind_is_retried_until_it_answers(reactor):
    with JsonRpcTestServer({'submitblock': lambda block_hex: None}) as server:
        server.delays['submitblock'] = 3  # longer than the client's 2 s timeout: first tries fail
        sub = submitter(server, retries=20, retry_delay=0.1)
        pending = []
        run_in_reactor(lambda: pending.append(sub.submit(BLOCK)))
        wait_for(lambda: len(server.calls) >= 1, timeout=5)
        server.delays.clear()
        assert run_in_reactor(lambda: pending[0], timeout=20) == SubmitResult('accepted')


def test_gives_up_after_the_retries(reactor, caplog):
    with JsonRpcTestServer({}) as server:
        port = server.port
    client = rpc.RpcClient('127.0.0.1', port, 'u', 'p')
    result = run_in_reactor(BlockSubmitter(client, retries=3, retry_delay=0.01).submit, BLOCK)
    assert result.status == 'failed' and 'refused' in result.reason
    assert caplog.text.count('attempt') == 3


def test_p2p_send_is_retried_while_disconnected(reactor):
    with JsonRpcTestServer({'submitblock': lambda block_hex: None}) as server:
        p2p = RecordingP2P(offline=2)
        run_in_reactor(submitter(server, p2p).submit, BLOCK)
        wait_for(lambda: p2p.sent == [BLOCK])


# --- parent block heights ----------------------------------------------------------------

def height_server():
    headers = {'%064x' % 0xaa: 10, '%064x' % 0xbb: 12}

    def getblockheader(block_hash):
        if block_hash not in headers:
            raise JsonRpcFault(-5, 'Block not found')
        return {'hash': block_hash, 'height': headers[block_hash]}
    return JsonRpcTestServer({'getblockheader': getblockheader})


def test_heights_are_fetched_once_and_cached(reactor):
    with height_server() as server:
        heights = ParentHeights(rpc.RpcClient('127.0.0.1', server.port, server.user, server.password))
        assert run_in_reactor(heights.get, 0xaa) == 10
        assert run_in_reactor(heights.get, 0xaa) == 10
        assert len(server.calls) == 1
        with pytest.raises(rpc.RpcError):
            run_in_reactor(heights.get, 0xcc)


def test_height_now_starts_a_lookup_and_rel_height_follows_the_highest(reactor):
    with height_server() as server:
        heights = ParentHeights(rpc.RpcClient('127.0.0.1', server.port, server.user, server.password))
        assert run_in_reactor(heights.height_now, 0xbb) is None
        wait_for(lambda: heights.known(0xbb) == 12)
        wait_for(lambda: heights.rel_height(0xaa, 0xbb) == -2)
        assert run_in_reactor(heights.rel_height, 0xbb) == 0


def test_getblock_is_used_when_getblockheader_is_missing(reactor):
    with JsonRpcTestServer({'getblock': lambda block_hash: {'height': 77}}) as server:
        heights = ParentHeights(rpc.RpcClient('127.0.0.1', server.port, server.user, server.password))
        assert run_in_reactor(heights.get, 0x1) == 77


def test_headers_over_p2p_extend_known_heights():
    p2p = RecordingP2P()
    heights = ParentHeights(p2p=p2p)
    heights.record(BLOCK['header']['previous_block'], 41)
    p2p.new_headers.happened([BLOCK['header']])
    assert heights.known(data.header_hash(BLOCK['header'])) == 42
    assert heights.best_height == 42


def test_cache_is_bounded():
    heights = ParentHeights(limit=3)
    for number in range(5):
        heights.record(number, number)
    assert [heights.known(n) for n in range(5)] == [None, None, 2, 3, 4]


# --- the real regtest bitcoind -----------------------------------------------------------------

@pytest.fixture
def real_bridge(reactor, regtest_node):
    from p2pool.config import load_network
    from p2pool.bitcoin.daemon import BitcoindBridge
    node = regtest_node
    b = BitcoindBridge('127.0.0.1', node.rpc_port, node.p2p_port, node.user, node.password,
                       load_network('bsv_regtest'), reactor=reactor)
    run_in_reactor(b.start, timeout=30)
    yield b
    run_in_reactor(b.stop)


def fresh_template(bridge, node):
    """The bridge's template once it is on bitcoind's current tip."""
    tip = int(node.rpc('getbestblockhash'), 16)
    wait_for(lambda: bridge.source.current.previous_block == tip, timeout=20)
    return bridge.source.current


@pytest.mark.bitcoind
@pytest.mark.parametrize('path', ['p2p', 'rpc', 'both'])
def test_block_built_from_a_template_is_accepted(real_bridge, regtest_node, path):
    from p2pool.testing.block_builder import solved_block
    template = fresh_template(real_bridge, regtest_node)
    block = solved_block(template, tag=('submit-' + path).encode())
    block_hash = data.header_hash(block['header'])
    if path == 'p2p':
        assert run_in_reactor(real_bridge.p2p.send_block, block)
    else:
        submitter = BlockSubmitter(real_bridge.rpc, real_bridge.p2p if path == 'both' else None)
        result = run_in_reactor(submitter.submit, block, segwit=template.segwit, timeout=30)
        # Over both paths the P2P copy may land first, making the RPC answer "duplicate".
        assert result.status == 'accepted' or (path == 'both' and result.status == 'duplicate')
    wait_for(lambda: regtest_node.rpc('getbestblockhash') == '%064x' % block_hash, timeout=20)
    wait_for(lambda: real_bridge.source.current.previous_block == block_hash, timeout=20)
    assert run_in_reactor(real_bridge.heights.get, block_hash) == template.height


@pytest.mark.bitcoind
def test_bad_block_is_rejected_with_bitcoinds_reason(real_bridge, regtest_node):
    from p2pool.testing.block_builder import solve, solved_block
    template = fresh_template(real_bridge, regtest_node)
    block = solved_block(template, tag=b'bad')
    block['header']['merkle_root'] ^= 1
    block['header'] = solve(block['header'], template.block_target)  # valid PoW, wrong merkle root
    submitter = BlockSubmitter(real_bridge.rpc)
    result = run_in_reactor(submitter.submit, block, expect_valid=False, timeout=30)
    assert result == SubmitResult('rejected', 'bad-txnmrklroot')
    assert regtest_node.rpc('getbestblockhash') == '%064x' % template.previous_block
