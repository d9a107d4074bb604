"""The litecoind harness (p2pool.testing.regtest_litecoin) and the Litecoin Core facts it records.

Marked `litecoind`: they run Debian's Litecoin Core 0.21.2.1 in regtest mode.
"""
import pytest

from p2pool.bitcoin import address
from p2pool.config import load_network
from p2pool.testing import regtest, regtest_litecoin

pytestmark = pytest.mark.litecoind


def test_missing_litecoind_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setattr(regtest_litecoin.shutil, 'which', lambda name: None)
    with pytest.raises(regtest.RegtestError) as caught:
        regtest_litecoin.litecoind_path(install=False)
    assert '\n' not in str(caught.value)
    assert 'apt-get install litecoind' in str(caught.value)


def test_chain_facts_match_the_network_file(litecoind_node):
    net = load_network('litecoin_regtest')
    assert litecoind_node.rpc('getblockhash', 0) == regtest_litecoin.LTC_REGTEST_GENESIS_HASH
    assert int(regtest_litecoin.LTC_REGTEST_GENESIS_HASH, 16) == net.PARENT.GENESIS_HASH
    assert net.PARENT.P2P_PREFIX == regtest_litecoin.LTC_REGTEST_P2P_MAGIC
    assert litecoind_node.rpc('getnetworkinfo')['version'] >= regtest_litecoin.MINIMUM_VERSION
    softforks = litecoind_node.rpc('getblockchaininfo')['softforks']
    assert softforks['segwit']['active'] and softforks['taproot']['active']
    for kind in ('legacy', 'p2sh-segwit', 'bech32'):
        text = litecoind_node.new_address(kind)
        script = address.address_to_script(text, net.PARENT)   # each kind parses on this network
        assert script
    assert litecoind_node.new_address('bech32').startswith('rltc1')
    assert litecoind_node.new_address('p2sh-segwit').startswith('Q')


def test_getblocktemplate_demands_the_mweb_and_segwit_rules(litecoind_node):
    with pytest.raises(regtest.RegtestRpcError) as caught:
        litecoind_node.rpc('getblocktemplate', {'rules': ['segwit']})
    assert caught.value.code == -8
    assert '"rules": ["mweb", "segwit"]' in caught.value.rpc_message
    template = litecoind_node.rpc('getblocktemplate', {'rules': ['mweb', 'segwit']})
    assert template['default_witness_commitment'].startswith('6a24aa21a9ed')


def test_node_stops_by_pid_and_keeps_its_wallet(litecoind_bin, tmp_path):
    node = regtest_litecoin.RegtestLitecoind(litecoind_bin)
    node.start(datadir=tmp_path / 'lone')
    try:
        first_address = node.wallet_address()
        pid = node.pid
        node.restart()
        assert node.pid != pid
        assert regtest_litecoin.WALLET_NAME in node.rpc('listwallets')
        assert node.rpc('getaddressinfo', first_address)['ismine']
    finally:
        node.stop()
    assert not node.running
