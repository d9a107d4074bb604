"""JSON-RPC client (p2pool.bitcoin.rpc) against a loopback test server, and the start-up checks."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pool.bitcoin import rpc
from p2pool.config import load_network
from p2pool.testing.regtest import free_port
from p2pool.testing.jsonrpc_server import JsonRpcFault, JsonRpcTestServer
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)

REGTEST_GENESIS = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206'


@pytest.fixture
def server():
    with JsonRpcTestServer({'echo': lambda *args: list(args), 'getblockcount': lambda: 42}) as srv:
        yield srv


def client_for(srv, password=None, **kwargs):
    return rpc.RpcClient('127.0.0.1', srv.port, srv.user, srv.password if password is None else password,
                         **kwargs)


def call(client, method, *params, **kwargs):
    return run_in_reactor(client.call, method, *params, **kwargs)


def test_call_returns_the_result_through_a_worker_thread(reactor, server):
    client = client_for(server)
    assert call(client, 'getblockcount') == 42
    assert call(client, 'echo', 1, 'two', {'three': [3]}) == [1, 'two', {'three': [3]}]
    run_in_reactor(client.close)


def test_call_blocking_is_safe_from_many_threads(server):
    import concurrent.futures
    client = client_for(server)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: client.call_blocking('echo', n), range(40)))
    assert answers == [[n] for n in range(40)]


def test_json_rpc_error_keeps_code_and_message(server):
    def fail(block_hex):
        raise JsonRpcFault(-25, 'bad-prevblk')
    server.handlers['submitblock'] = fail
    with pytest.raises(rpc.RpcError) as info:
        client_for(server).call_blocking('submitblock', '00')
    assert (info.value.code, info.value.message) == (-25, 'bad-prevblk')


def test_unknown_method_is_method_not_found(server):
    with pytest.raises(rpc.RpcError) as info:
        client_for(server).call_blocking('nosuchmethod')
    assert info.value.code == rpc.METHOD_NOT_FOUND


def test_wrong_password_is_an_auth_error_naming_http_401(server):
    with pytest.raises(rpc.RpcAuthError, match='HTTP 401') as info:
        client_for(server, password='wrong').call_blocking('getblockcount')
    assert isinstance(info.value, rpc.RpcConnectionError)


def test_connection_refused_names_host_and_port():
    port = free_port()
    client = rpc.RpcClient('127.0.0.1', port, 'u', 'p')
    with pytest.raises(rpc.RpcConnectionError, match='127.0.0.1:%d.*refused' % port):
        client.call_blocking('getblockcount')


def test_malformed_answer_is_a_bad_reply(server):
    server.raw_replies['getblockcount'] = b'{"result": 1, "err'
    with pytest.raises(rpc.RpcBadReply):
        client_for(server).call_blocking('getblockcount')
    server.raw_replies['getblockcount'] = b'[1, 2]'
    with pytest.raises(rpc.RpcBadReply):
        client_for(server).call_blocking('getblockcount')


def test_missing_result_is_a_bad_reply(server):
    server.raw_replies['getblockcount'] = b'{"error": null, "id": 1}'
    with pytest.raises(rpc.RpcBadReply):
        client_for(server).call_blocking('getblockcount')


def test_slow_answer_times_out(server):
    server.delays['getblockcount'] = 1.0
    with pytest.raises(rpc.RpcConnectionError, match='did not answer'):
        client_for(server, timeout=0.2).call_blocking('getblockcount')


def test_failure_reaches_the_deferred_errback(reactor, server):
    with pytest.raises(rpc.RpcError):
        call(client_for(server), 'nosuchmethod')


def test_server_restart_on_the_same_port_is_survived(server):
    client = client_for(server)
    assert client.call_blocking('getblockcount') == 42
    server.stop()  # the kept-alive connection is now dead
    with pytest.raises(rpc.RpcConnectionError):
        client.call_blocking('getblockcount')
    server.start()
    assert client.call_blocking('getblockcount') == 42


def test_from_url_requires_credentials_and_decodes_them():
    client = rpc.RpcClient.from_url('http://us%40er:p%3Ass@127.0.0.1:8336/', timeout=5)
    assert (client.user, client.password, client.port, client.endpoint) == ('us@er', 'p:ss', 8336,
                                                                            '127.0.0.1:8336')
    with pytest.raises(ValueError, match='credentials'):
        rpc.RpcClient.from_url('http://127.0.0.1:8336/')
    with pytest.raises(ValueError):
        rpc.RpcClient.from_url('ftp://a:b@host/')


def test_clone_keeps_the_daemon_and_overrides_settings(server):
    clone = client_for(server).clone(timeout=99, max_threads=1, name='longpoll')
    assert (clone.port, clone.timeout, clone.name) == (server.port, 99, 'longpoll')
    assert clone.call_blocking('getblockcount') == 42


# --- soft forks and rules ------------------------------------------------------------

def test_softfork_ids_reads_lists_and_dicts():
    assert rpc.softfork_ids({'softforks': [{'id': 'bip34'}, {'id': 'csv'}, {'no': 'id'}],
                             'bip9_softforks': {'segwit': {}}}) == {'bip34', 'csv', 'segwit'}
    assert rpc.softfork_ids({'softforks': {'bip65': {}, 'taproot': {}}}) == {'bip65', 'taproot'}
    assert rpc.softfork_ids({}) == set()


@given(st.lists(st.sampled_from(['bip34', 'bip65', 'csv', 'segwit', 'taproot'])))
def test_softfork_ids_list_and_dict_forms_agree(names):
    assert (rpc.softfork_ids({'softforks': [{'id': n} for n in names]})
            == rpc.softfork_ids({'softforks': {n: {} for n in names}}) == set(names))


def test_gbt_rules_ask_for_segwit_only_where_required():
    assert rpc.gbt_rules(load_network('bitcoin')) == ['segwit']
    assert rpc.gbt_rules(load_network('bsv_regtest')) == []


# --- start-up checks -------------------------------------------------------------------

def bitcoind_double(**overrides):
    info = {'chain': 'regtest', 'blocks': 101, 'headers': 101, 'initialblockdownload': False,
            'softforks': [{'id': 'bip34'}, {'id': 'bip66'}, {'id': 'bip65'}, {'id': 'csv'}]}
    info.update(overrides.pop('chain_info', {}))
    handlers = {
        'getnetworkinfo': lambda: {'version': overrides.get('version', 101300)},
        'getblockchaininfo': lambda: info,
        'getblockhash': lambda height: overrides.get('genesis', REGTEST_GENESIS),
        'getblockheader': lambda block_hash: {'hash': block_hash, 'height': 0},
    }
    return JsonRpcTestServer(handlers)


def run_check(srv, net_name='bsv_regtest', password=None, **kwargs):
    return run_in_reactor(rpc.check_bitcoind, client_for(srv, password), load_network(net_name), **kwargs)


def test_check_passes_on_a_matching_daemon(reactor):
    with bitcoind_double() as srv:
        assert run_check(srv)['chain'] == 'regtest'


@pytest.mark.parametrize('overrides, message', [
    ({'genesis': '00' * 32}, 'wrong chain: .*genesis'),
    ({'chain_info': {'chain': 'main'}}, 'wrong chain: .*"main" but network bsv_regtest needs "regtest"'),
    ({'version': 90000}, 'too old \\(version 90000\\): Bitcoin version too old'),
    ({'chain_info': {'softforks': [{'id': 'bip65'}]}}, 'required soft forks csv'),
])
def test_check_failures_are_one_plain_line(reactor, overrides, message):
    with bitcoind_double(**overrides) as srv:
        with pytest.raises(rpc.BitcoindCheckError, match=message) as info:
            run_check(srv)
    assert '\n' not in str(info.value)


def test_check_refuses_a_syncing_mainnet_daemon(reactor):
    with bitcoind_double(chain_info={'chain': 'main', 'initialblockdownload': True,
                                     'softforks': {'bip65': {}, 'csv': {}, 'segwit': {}}},
                         genesis='000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f') as srv:
        with pytest.raises(rpc.BitcoindCheckError, match='still syncing'):
            run_check(srv, 'bitcoin')


def test_check_names_an_unknown_required_block(reactor):
    srv = bitcoind_double(chain_info={'chain': 'main', 'softforks': {'bip65': {}, 'csv': {}, 'segwit': {}}},
                          genesis='000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f')

    def header(block_hash):
        if block_hash.startswith('00000000000000000019f112'):
            raise JsonRpcFault(-5, 'Block not found')
        return {'height': 1}
    srv.handlers['getblockheader'] = header
    with srv:
        with pytest.raises(rpc.BitcoindCheckError, match='does not know block 00000000000000000019f112'):
            run_check(srv, 'bitcoin')


def test_check_allows_missing_softforks_when_told(reactor):
    with bitcoind_double(chain_info={'softforks': []}) as srv:
        assert run_check(srv, allow_obsolete=True)['chain'] == 'regtest'


def test_check_reports_wrong_password_and_refused_connection(reactor):
    with bitcoind_double() as srv:
        with pytest.raises(rpc.BitcoindCheckError, match='user name or password \\(HTTP 401\\)'):
            run_check(srv, password='nope')
    port = free_port()
    with pytest.raises(rpc.BitcoindCheckError, match='127.0.0.1:%d: .*connection refused' % port):
        run_in_reactor(rpc.check_bitcoind, rpc.RpcClient('127.0.0.1', port, 'u', 'p'),
                       load_network('bsv_regtest'))


# --- the real regtest bitcoind ------------------------------------------------------------------

@pytest.mark.bitcoind
def test_real_bitcoind_passes_the_checks_for_its_network(reactor, regtest_node):
    client = rpc.RpcClient('127.0.0.1', regtest_node.rpc_port, regtest_node.user, regtest_node.password)
    info = run_in_reactor(rpc.check_bitcoind, client, load_network('bsv_regtest'), timeout=30)
    assert info['chain'] == 'regtest'
    with pytest.raises(rpc.BitcoindCheckError, match='wrong chain'):
        run_in_reactor(rpc.check_bitcoind, client, load_network('bitcoin'), timeout=30)
    wrong = rpc.RpcClient('127.0.0.1', regtest_node.rpc_port, regtest_node.user, 'not-the-password')
    with pytest.raises(rpc.BitcoindCheckError, match='HTTP 401'):
        run_in_reactor(rpc.check_bitcoind, wrong, load_network('bsv_regtest'), timeout=30)
    run_in_reactor(client.close)
