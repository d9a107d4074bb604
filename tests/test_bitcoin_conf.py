"""bitcoin.conf and .cookie discovery (p2pool.bitcoin.conf)."""
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pool.bitcoin import conf
from p2pool.config import load_network

CONF_TEXT = """
# a comment
rpcuser=alice
rpcpassword=top # trailing comment
rpcport=1111
server
main.port=2222

[test]
rpcport=18332
rpcpassword=testpass

[regtest]
rpcuser=reg
rpcport=3333
port=4444
"""


def test_top_level_network_options_only_apply_to_main():
    main = conf.parse_conf(CONF_TEXT, 'main')
    assert (main['rpcuser'], main['rpcpassword'], main['rpcport'], main['server'], main['port']) == (
        'alice', 'top', '1111', '1', '2222')
    test = conf.parse_conf(CONF_TEXT, 'test')
    assert (test['rpcuser'], test['rpcpassword'], test['rpcport']) == ('alice', 'testpass', '18332')
    assert 'port' not in test
    regtest = conf.parse_conf(CONF_TEXT, 'regtest')
    assert (regtest['rpcuser'], regtest['rpcpassword'], regtest['rpcport'], regtest['port']) == (
        'reg', 'top', '3333', '4444')


def test_malformed_section_is_a_conf_error():
    with pytest.raises(conf.ConfError, match='line 2'):
        conf.parse_conf('a=1\n[regtest\n')


@given(st.dictionaries(st.sampled_from(['rpcuser', 'rpcpassword', 'rpcport', 'datadir']),
                       st.text(alphabet='abcdefghijklmnopqrstuvwxyz0123456789_-./', min_size=1), min_size=1),
       st.sampled_from(['main', 'test', 'regtest']))
def test_a_section_value_wins_over_the_top(values, chain):
    text = ''.join('%s=top-%s\n' % (key, value) for key, value in values.items())
    text += '[%s]\n' % chain + ''.join('%s=%s\n' % item for item in values.items())
    assert conf.parse_conf(text, chain) == values


def parent(chain='regtest', rpc_port=18332, p2p_port=18444):
    return SimpleNamespace(CHAIN=chain, RPC_PORT=rpc_port, P2P_PORT=p2p_port, CONF_FILE_NAME='bitcoin.conf')


def test_command_line_wins(tmp_path):
    (tmp_path / 'bitcoin.conf').write_text('[regtest]\nrpcuser=x\nrpcpassword=y\nrpcport=9\n')
    access = conf.resolve_access(parent(), user='u', password='p', rpc_port=5, datadir=str(tmp_path))
    assert (access.user, access.password, access.rpc_port, access.p2p_port, access.credentials_source) == (
        'u', 'p', 5, 18444, 'command line')


def test_conf_file_supplies_credentials_and_ports(tmp_path):
    path = tmp_path / 'bitcoin.conf'
    path.write_text('rpcport=1\n[regtest]\nrpcuser=x\nrpcpassword=y\nrpcport=9\nport=10\n')
    access = conf.resolve_access(parent(), datadir=str(tmp_path))
    assert (access.user, access.password, access.rpc_port, access.p2p_port) == ('x', 'y', 9, 10)
    assert access.credentials_source == str(path)


def test_cookie_is_the_last_resort(tmp_path):
    (tmp_path / 'regtest').mkdir()
    (tmp_path / 'regtest' / '.cookie').write_text('__cookie__:s3cret\n')
    access = conf.resolve_access(parent(), datadir=str(tmp_path))
    assert (access.user, access.password, access.rpc_port) == ('__cookie__', 's3cret', 18332)
    assert access.credentials_source.endswith('.cookie')


def test_cookie_folder_follows_the_chain(tmp_path):
    (tmp_path / 'testnet3').mkdir()
    (tmp_path / 'testnet3' / '.cookie').write_text('__cookie__:t')
    (tmp_path / '.cookie').write_text('__cookie__:m')
    assert conf.resolve_access(parent('test'), datadir=str(tmp_path)).password == 't'
    assert conf.resolve_access(parent('main'), datadir=str(tmp_path)).password == 'm'


def test_datadir_in_conf_locates_the_cookie(tmp_path):
    elsewhere = tmp_path / 'chaindata'
    (elsewhere / 'regtest').mkdir(parents=True)
    (elsewhere / 'regtest' / '.cookie').write_text('__cookie__:far')
    conf_path = tmp_path / 'my.conf'
    conf_path.write_text('datadir=%s\n' % elsewhere)
    access = conf.resolve_access(parent(), conf_path=str(conf_path))
    assert access.password == 'far'


def test_no_credentials_anywhere_explains_the_options(tmp_path):
    with pytest.raises(conf.ConfError, match='rpcuser/rpcpassword'):
        conf.resolve_access(parent(), datadir=str(tmp_path))


def test_missing_explicit_conf_and_bad_values(tmp_path):
    with pytest.raises(conf.ConfError, match='does not exist'):
        conf.resolve_access(parent(), conf_path=str(tmp_path / 'nope.conf'))
    (tmp_path / 'bitcoin.conf').write_text('[regtest]\nrpcport=abc\nrpcpassword=x\n')
    with pytest.raises(conf.ConfError, match='not a number'):
        conf.resolve_access(parent(), datadir=str(tmp_path))
    (tmp_path / 'regtest').mkdir()
    (tmp_path / 'bitcoin.conf').write_text('')
    (tmp_path / 'regtest' / '.cookie').write_text('no colon here')
    with pytest.raises(conf.ConfError, match='user:password'):
        conf.resolve_access(parent(), datadir=str(tmp_path))


def test_real_network_definitions_pick_their_section(tmp_path):
    net = load_network('bsv_regtest')
    assert conf.chain_of(net.PARENT) == 'regtest'
    (tmp_path / 'bitcoin.conf').write_text('[regtest]\nrpcuser=a\nrpcpassword=b\n')
    access = conf.resolve_access(net.PARENT, datadir=str(tmp_path))
    assert (access.rpc_port, access.p2p_port, access.user) == (net.PARENT.RPC_PORT, net.PARENT.P2P_PORT, 'a')


def test_chain_guess_without_chain_attribute():
    assert conf.chain_of(SimpleNamespace(SYMBOL='rBTC')) == 'regtest'
    assert conf.chain_of(SimpleNamespace(SYMBOL='tBTC')) == 'test'
    assert conf.chain_of(SimpleNamespace(SYMBOL='BTC')) == 'main'


def test_default_datadir_per_platform():
    assert conf.default_datadir('bitcoin.conf', 'linux', {}, '/home/a') == '/home/a/.bitcoin'
    assert conf.default_datadir('litecoin.conf', 'darwin', {}, '/Users/a') == (
        '/Users/a/Library/Application Support/Litecoin')
    assert conf.default_datadir('bitcoin.conf', 'win32', {'APPDATA': 'C:/AppData'}, 'C:/') == (
        'C:/AppData/Bitcoin')
