"""Network definitions (networks/*.toml) and their loader p2pool.config.

Expected numbers are copied from the spec (networks.md, [jt] column;
serialization.md §6.6 and vectors.md §B for the donation script).
"""
import dataclasses
import functools
import hashlib
import os
import struct

import pytest
from hypothesis import given, settings, strategies as st

from p2pool import config
from p2pool.app import resources
from p2pool.bitcoin import hashes
from p2pool.config import NetworkConfigError, load_network

SHIPPED = ['bitcoin', 'bitcoin_regtest', 'bitcoin_testnet', 'bitcoincash', 'bitcoinsv',
           'bsv_regtest', 'litecoin', 'litecoin_regtest', 'litecoin_testnet']

BTC_MAX = 2**256 // 2**32 - 1

# name: (SHARE_PERIOD, CHAIN_LENGTH, REAL_CHAIN_LENGTH, TARGET_LOOKBEHIND, SPREAD, IDENTIFIER,
#        PREFIX, P2P_PORT, WORKER_PORT, MIN_TARGET, MAX_TARGET, PERSIST, MINIMUM_PROTOCOL_VERSION,
#        SEGWIT_ACTIVATION_VERSION, SOFTFORKS_REQUIRED, BLOCK_MAX_SIZE, BLOCK_MAX_WEIGHT)
SHARECHAIN = {
    'bitcoin': (30, 8640, 8640, 200, 3, 'fc70035c7a81bc6f', '2472ef181efcd37b', 9333, 9332,
                0, BTC_MAX, True, 3301, 33, {'bip65', 'csv', 'segwit'}, 1000000, 4000000),
    'bitcoin_testnet': (30, 360, 360, 200, 3, '5fc2be2d4f0d6bfb', '3f6057a15036f441', 19333, 19332,
                        0, BTC_MAX, False, 3200, 15, {'bip65', 'csv', 'segwit'}, 1000000, 4000000),
    'bitcoin_regtest': (30, 360, 360, 200, 3, '5ad2c6ecbd7d9372', '8f2c8d54b3278bc8', 19444, 19443,
                        0, 2**256 // 2 - 1, False, 3200, 15, {'bip65', 'csv', 'segwit', 'segwit2x'},
                        1000000, 4000000),
    'litecoin': (15, 8640, 8640, 200, 3, 'e037d5b8c6923410', '7208c1a53ef629b0', 9326, 9327,
                 0, 2**256 // 2**20 - 1, True, 3301, 17, {'bip65', 'csv', 'segwit', 'taproot', 'mweb'},
                 1000000, 4000000),
    'litecoin_testnet': (4, 400, 400, 200, 3, 'cca5e24ec6408b1e', 'ad9614f6466a39cf', 19338, 19327,
                         0, 2**256 // 20 - 1, False, 3301, 17, {'bip65', 'csv', 'segwit', 'taproot', 'mweb'},
                         1000000, 4000000),
    'bitcoincash': (60, 4320, 4320, 200, 3, 'b826c0a51ddc2d2b', 'ac9a8fda9a911bce', 9349, 9348,
                    0, BTC_MAX, True, 3301, 0, set(), 32000000, 128000000),
    'bitcoinsv': (30, 2880, 2880, 200, 3, '1c051dec1abcd71d', '1c051dee6ec8bb1e', 6338, 6339,
                  0, BTC_MAX, True, 3301, 0, {'bip65', 'csv'}, 32000000, 128000000),
}
SHARECHAIN_KEYS = ('SHARE_PERIOD', 'CHAIN_LENGTH', 'REAL_CHAIN_LENGTH', 'TARGET_LOOKBEHIND',
                   'SPREAD', 'IDENTIFIER', 'PREFIX', 'P2P_PORT', 'WORKER_PORT', 'MIN_TARGET',
                   'MAX_TARGET', 'PERSIST', 'MINIMUM_PROTOCOL_VERSION',
                   'SEGWIT_ACTIVATION_VERSION', 'SOFTFORKS_REQUIRED', 'BLOCK_MAX_SIZE',
                   'BLOCK_MAX_WEIGHT')

# name: (P2P_PREFIX, P2P_PORT, RPC_PORT, ADDRESS_VERSION, ADDRESS_P2SH_VERSION,
#        HUMAN_READABLE_PART, POW_FUNC, BLOCK_PERIOD, SYMBOL, DUMB_SCRYPT_DIFF, DUST_THRESHOLD)
PARENTS = {
    'bitcoin': ('f9beb4d9', 8333, 8332, 0, 5, 'bc', 'sha256d', 600, 'BTC', 1, 100000),
    'bitcoin_testnet': ('0b110907', 18333, 18332, 111, 196, 'tb', 'sha256d', 600, 'tBTC', 1, 100000000),
    # [jt] btcregtest defines no P2SH version and no HRP: the optional keys load as None.
    'bitcoin_regtest': ('fabfb5da', 18444, 28332, 111, None, None, 'sha256d', 600, 'rBTC', 1, 100000000),
    'litecoin': ('fbc0b6db', 9333, 9332, 48, 50, 'ltc', 'scrypt', 150, 'LTC', 65536, 3000000),
    'litecoin_testnet': ('fdd2c8f1', 19335, 19332, 111, 58, 'tltc', 'scrypt', 150, 'tLTC', 65536, 100000000),
    'bitcoincash': ('e3e1f3e8', 8333, 8332, 0, 5, 'bitcoincash', 'sha256d', 600, 'BCH', 1, 100000),
    'bitcoinsv': ('e3e1f3e8', 8333, 8332, 0, 5, 'bitcoincash', 'sha256d', 600, 'BSV', 1, 100000),
    'bsv_regtest': ('dab5bffa', 18444, 18332, 111, 196, 'bchreg', 'sha256d', 600, 'tBSV', 1, 100000000),
    'litecoin_regtest': ('fabfb5da', 19444, 19443, 111, 58, 'rltc', 'scrypt', 150, 'rLTC', 65536, 100000),
}
PARENT_KEYS = ('P2P_PREFIX', 'P2P_PORT', 'RPC_PORT', 'ADDRESS_VERSION', 'ADDRESS_P2SH_VERSION',
               'HUMAN_READABLE_PART', 'POW_FUNC', 'BLOCK_PERIOD', 'SYMBOL', 'DUMB_SCRYPT_DIFF',
               'DUST_THRESHOLD')

# networks.md §4 "Evaluated SANE_TARGET_RANGE bounds".
SANE_RANGES = {
    'bitcoin': (0x00000000000010c6f7a0b5ed8d36b4c7f34938583621fafc8b0079a2834d26f9, BTC_MAX),
    'bitcoin_testnet': (0x000000000000002af31dc4611873bf3f70834acdae9f0f4f534f5d60585a5f1b, BTC_MAX),
    'bitcoin_regtest': (0x00000000004189374bc6a7ef9db22d0e5604189374bc6a7ef9db22d0e5604188, 2**255 - 1),
    'litecoin': (0x000000000000480ebe7b9d58566c87ce9b80a5fb05082bd371c8651c7b299b2f,
                 0x004189374bc6a7ef9db22d0e5604189374bc6a7ef9db22d0e5604189374bc6a6),
    'litecoin_testnet': (2**127, 2**239),
    'bitcoincash': (0x000000000000002af31dc4611873bf3f70834acdae9f0f4f534f5d60585a5f1b, BTC_MAX),
    'bitcoinsv': (0x000000000000002af31dc4611873bf3f70834acdae9f0f4f534f5d60585a5f1b, BTC_MAX),
}

# networks.md §1.8: CHAIN_LENGTH, ·15//16, //16, ·9//10, //10, 2·CL+10, 3600//SHARE_PERIOD.
DERIVED_WINDOWS = {
    'bitcoin': (8640, 8100, 540, 7776, 864, 17290, 120),
    'litecoin': (8640, 8100, 540, 7776, 864, 17290, 240),
    'bitcoin_testnet': (360, 337, 22, 324, 36, 730, 120),
    'bitcoin_regtest': (360, 337, 22, 324, 36, 730, 120),
    'litecoin_testnet': (400, 375, 25, 360, 40, 810, 900),
    'bitcoincash': (4320, 4050, 270, 3888, 432, 8650, 60),
    'bitcoinsv': (2880, 2700, 180, 2592, 288, 5770, 120),
}

BTC_GENESIS = 0x000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f
REGTEST_GENESIS = 0x0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206
BTC_MERKLE_ROOT = '4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b'
LTC_MERKLE_ROOT = '97ddfbbae6be97fd6cdf3e7ca13232a3afff2353e29badfab7f73011edd4ced9'


@functools.lru_cache(maxsize=None)
def shipped_text_and_net(name):
    """(file text, loaded Network) of a shipped network, read once per test run."""
    with open(os.path.join(resources.networks_dir(), name + '.toml'), encoding='utf-8') as file:
        return file.read(), load_network(name)


def genesis_header(merkle_root_hex, timestamp, bits, nonce):
    return (struct.pack('<I', 1) + bytes(32) + bytes.fromhex(merkle_root_hex)[::-1]
            + struct.pack('<III', timestamp, bits, nonce))


def bits_to_target(bits):
    return (bits & 0xffffff) << (8 * ((bits >> 24) - 3))


@pytest.fixture(scope='module')
def nets():
    return {name: load_network(name) for name in SHIPPED}


@pytest.fixture
def bitcoin_text():
    return shipped_text_and_net('bitcoin')[0]


def write_variant(tmp_path, text, name='variant.toml'):
    path = tmp_path / name
    path.write_text(text, encoding='utf-8')
    return str(path)


def replace_line(text, start, new_line):
    lines = text.splitlines()
    matches = [i for i, line in enumerate(lines) if line.startswith(start)]
    assert len(matches) == 1, start
    if new_line is None:
        del lines[matches[0]]
    else:
        lines[matches[0]] = new_line
    return '\n'.join(lines) + '\n'


# --- shipped networks ------------------------------------------------------------

def test_list_networks_is_exactly_the_shipped_set():
    assert config.list_networks() == SHIPPED


@pytest.mark.parametrize('name', SHIPPED)
def test_every_shipped_network_loads(name):
    net = load_network(name)
    assert net.NAME == name
    assert os.path.isabs(net.PATH) and net.PATH.endswith(name + '.toml')
    assert net.LINEAGE == 'jt'
    assert len(net.IDENTIFIER) == 8 and len(net.PREFIX) == 8 and len(net.PARENT.P2P_PREFIX) == 4
    assert net.MAX_TARGET >= net.MIN_TARGET


@pytest.mark.parametrize('name', sorted(SHARECHAIN))
def test_sharechain_constants_match_spec(nets, name):
    net = nets[name]
    for key, expected in zip(SHARECHAIN_KEYS, SHARECHAIN[name]):
        if key in ('IDENTIFIER', 'PREFIX'):
            expected = bytes.fromhex(expected)
        assert getattr(net, key) == expected, key


@pytest.mark.parametrize('name', sorted(PARENTS))
def test_parent_constants_match_spec(nets, name):
    parent = nets[name].PARENT
    for key, expected in zip(PARENT_KEYS, PARENTS[name]):
        if key == 'P2P_PREFIX':
            expected = bytes.fromhex(expected)
        assert getattr(parent, key) == expected, key


@pytest.mark.parametrize('name', sorted(SANE_RANGES))
def test_sane_target_ranges_match_spec(nets, name):
    assert nets[name].PARENT.SANE_TARGET_RANGE == SANE_RANGES[name]


@pytest.mark.parametrize('name', sorted(DERIVED_WINDOWS))
def test_derived_window_sizes(nets, name):
    net = nets[name]
    cl = net.CHAIN_LENGTH
    assert (cl, cl * 15 // 16, cl // 16, cl * 9 // 10, cl // 10, 2 * cl + 10,
            3600 // net.SHARE_PERIOD) == DERIVED_WINDOWS[name]


def test_bootstrap_lists(nets):
    assert nets['bitcoin'].BOOTSTRAP_ADDRS == (
        'ml.toom.im', 'ml.toom.im:9336', 'ml.toom.im:9334', 'btc-fork.coinpool.pw:9335',
        'crypto.office-on-the.net:9335', 'btc.p2pool.leblancnet.us')
    assert len(nets['litecoin'].BOOTSTRAP_ADDRS) == 11
    assert len(nets['bitcoincash'].BOOTSTRAP_ADDRS) == 7
    assert len(nets['bitcoinsv'].BOOTSTRAP_ADDRS) == 5
    assert nets['bitcoin_regtest'].BOOTSTRAP_ADDRS == ()
    assert nets['bsv_regtest'].BOOTSTRAP_ADDRS == ()
    # Entries without ":port" use the network's P2P_PORT (networks.md §5).
    assert nets['bitcoin'].bootstrap_endpoints()[:2] == (('ml.toom.im', 9333), ('ml.toom.im', 9336))


def test_rpc_checks(nets):
    btc = nets['bitcoin'].PARENT.RPC_CHECK
    assert btc.KNOWN_BLOCKS == (
        BTC_GENESIS,
        0x00000000000000000019f112ec0a9982926f1258cdcc558dd7c3b7e5dc7fa148,
        0x0000000000000000002ac644c9ba8ac3be966276fb7fc8f3baa1a3b9bdc615f1)
    assert btc.CHECK_CHAIN and nets['bitcoin'].PARENT.CHAIN == 'main'
    assert nets['bitcoinsv'].PARENT.RPC_CHECK.KNOWN_BLOCKS[-1] == \
        0x000000000000000001d956714215d96ffc00e0afda4cd0a96c96f8d802b1662b
    testnet = nets['bitcoin_testnet'].PARENT.RPC_CHECK
    assert (testnet.CHECK_CHAIN, testnet.HELP_CONTAINS) == (True, 'getreceivedbyaddress')
    regtest = nets['bitcoin_regtest'].PARENT.RPC_CHECK   # [jt]: help text only
    assert (regtest.KNOWN_BLOCKS, regtest.CHECK_CHAIN, regtest.HELP_CONTAINS) == ((), False, 'bitcoin')
    assert nets['litecoin'].PARENT.RPC_CHECK.KNOWN_BLOCKS == (
        0x12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2,)
    assert nets['bsv_regtest'].PARENT.RPC_CHECK.KNOWN_BLOCKS == (REGTEST_GENESIS,)


def test_parent_chain_names(nets):
    # bitcoind's chain name selects the bitcoin.conf section and the cookie folder.
    assert {name: net.PARENT.CHAIN for name, net in nets.items()} == {
        'bitcoin': 'main', 'bitcoin_testnet': 'test', 'bitcoin_regtest': 'regtest',
        'litecoin': 'main', 'litecoin_testnet': 'test', 'bitcoincash': 'main',
        'bitcoinsv': 'main', 'bsv_regtest': 'regtest', 'litecoin_regtest': 'regtest'}


def test_identifiers_prefixes_and_ports_are_distinct(nets):
    for attribute in ('IDENTIFIER', 'PREFIX', 'P2P_PORT', 'WORKER_PORT'):
        values = [getattr(net, attribute) for net in nets.values()]
        assert len(set(values)) == len(values), attribute


def test_bsv_regtest_is_a_private_fast_cash_test_network(nets):
    net = nets['bsv_regtest']
    assert net.PARENT.P2P_PREFIX == bytes.fromhex('dab5bffa')   # networks.md §2.1
    assert net.PARENT.GENESIS_HASH == REGTEST_GENESIS
    assert net.PARENT.is_cash and net.SEGWIT_ACTIVATION_VERSION == 0
    assert net.SPREAD == 2**31 and not net.PERSIST and net.BOOTSTRAP_ADDRS == ()
    assert net.SHARE_PERIOD <= 5 and net.CHAIN_LENGTH <= 200
    assert net.TARGET_LOOKBEHIND <= net.CHAIN_LENGTH
    # About 2**8 hashes per share at the minimum difficulty: quick on a CPU.
    assert 2**256 // (net.MAX_TARGET + 1) <= 2**10


def test_litecoin_regtest_reaches_share_version_35_quickly(nets):
    net = nets['litecoin_regtest']
    assert net.PARENT.GENESIS_HASH == 0x530827f38f93b43ed12af0b3ad25a288dc02ed74d6d7857862df51fc56c416f9
    assert net.PARENT.HALVING_INTERVAL == 150 and net.PARENT.POW_FUNC == 'scrypt'
    assert net.is_segwit_version(17) and not net.PERSIST and net.BOOTSTRAP_ADDRS == ()
    # the vote switches a fresh v17 chain to v35 once it is CHAIN_LENGTH long
    assert net.CHAIN_LENGTH <= 20 and net.CHAIN_LENGTH // 10 >= 1
    assert 2**256 // (net.MAX_TARGET + 1) <= 2**11     # a one-thread CPU scrypt miner: seconds


def test_genesis_hashes_are_sha256d_of_the_genesis_headers(nets):
    btc_header = genesis_header(BTC_MERKLE_ROOT, 1231006505, 0x1d00ffff, 2083236893)
    regtest_header = genesis_header(BTC_MERKLE_ROOT, 1296688602, 0x207fffff, 2)
    ltc_header = genesis_header(LTC_MERKLE_ROOT, 1317972665, 0x1e0ffff0, 2084524493)
    assert hashes.hash256(btc_header) == nets['bitcoin'].PARENT.GENESIS_HASH
    assert hashes.hash256(regtest_header) == nets['bsv_regtest'].PARENT.GENESIS_HASH
    assert hashes.hash256(regtest_header) == nets['bitcoin_regtest'].PARENT.GENESIS_HASH
    assert hashes.hash256(ltc_header) == nets['litecoin'].PARENT.GENESIS_HASH
    # pow_hash follows POW_FUNC: sha256d on Bitcoin, scrypt (meeting the genesis target) on Litecoin.
    assert nets['bsv_regtest'].PARENT.pow_hash(regtest_header) == REGTEST_GENESIS
    ltc_pow = nets['litecoin'].PARENT.pow_hash(ltc_header)
    assert ltc_pow == hashes.scrypt_pow(ltc_header) != hashes.hash256(ltc_header)
    assert ltc_pow <= bits_to_target(0x1e0ffff0)


# --- behaviour -------------------------------------------------------------------

def test_subsidy_examples(nets):
    btc = nets['bitcoin'].PARENT
    assert btc.subsidy(0) == 50 * 10**8
    assert btc.subsidy(209998) == 50 * 10**8
    assert btc.subsidy(209999) == 25 * 10**8    # quirk: halves one block early
    assert btc.subsidy(210000) == 25 * 10**8
    assert btc.subsidy(64 * 210000) == 0
    ltc = nets['litecoin'].PARENT
    assert ltc.HALVING_INTERVAL == 840000
    assert (ltc.subsidy(839998), ltc.subsidy(839999)) == (50 * 10**8, 25 * 10**8)
    bsv_regtest = nets['bsv_regtest'].PARENT
    assert (bsv_regtest.subsidy(148), bsv_regtest.subsidy(149)) == (50 * 10**8, 25 * 10**8)
    assert bsv_regtest.subsidy(299) == 1250000000
    assert nets['bitcoin_regtest'].PARENT.subsidy(149) == 25 * 10**8
    with pytest.raises(ValueError):
        btc.subsidy(-1)


@given(st.integers(min_value=0, max_value=10**8))
def test_subsidy_never_grows_and_halves_at_intervals(height):
    btc = shipped_text_and_net('bitcoin')[1].PARENT
    assert btc.subsidy(height + 1) <= btc.subsidy(height)
    assert btc.subsidy(height) == 5000000000 >> ((height + 1) // 210000)


def test_cash_and_segwit_layout(nets):
    assert {name for name, net in nets.items() if net.PARENT.is_cash} == \
        {'bitcoincash', 'bitcoinsv', 'bsv_regtest'}
    # shares.md §1 table, [jt] columns.
    assert not nets['bitcoin'].is_segwit_version(17)
    assert not nets['bitcoin'].is_segwit_version(32)
    assert nets['bitcoin'].is_segwit_version(35)
    assert nets['bitcoin_testnet'].is_segwit_version(17)
    assert nets['litecoin'].is_segwit_version(17)
    assert not nets['bitcoincash'].is_segwit_version(35)


def test_version_check(nets):
    assert nets['bitcoin'].version_check(100000) is None
    assert nets['bitcoin'].version_check(99999) == \
        'Bitcoin version too old. Upgrade to 0.11.2 or newer!'
    # Litecoin Core before 0.21.2 cannot produce MWEB templates: one line telling to upgrade.
    for name in ('litecoin', 'litecoin_testnet', 'litecoin_regtest'):
        assert nets[name].version_check(210201) is None
        assert nets[name].version_check(180100) == \
            'Litecoin Core too old for MWEB blocks: upgrade to Litecoin Core 0.21.2 or newer'
    assert nets['bsv_regtest'].version_check(101001300) is None   # Bitcoin SV 1.0.13


def test_conf_file_locations(nets):
    btc, ltc = nets['bitcoin'].PARENT, nets['litecoin'].PARENT
    assert btc.conf_file_path('Linux', {}, '/home/u') == '/home/u/.bitcoin/bitcoin.conf'
    assert ltc.conf_file_path('Linux', {}, '/home/u') == '/home/u/.litecoin/litecoin.conf'
    assert btc.conf_file_path('Darwin', {}, '/Users/u') == \
        '/Users/u/Library/Application Support/Bitcoin/bitcoin.conf'
    assert btc.conf_file_path('Windows', {'APPDATA': 'C:/AppData'}, 'C:/u') == \
        os.path.join('C:/AppData', 'Bitcoin', 'bitcoin.conf')


def test_donation_script_matches_vectors():
    assert config.DONATION_SCRIPT.hex() == (
        '4104ffd03de44a6e11b9917f3a29f9443283d9871c9d743ef30d5eddcd37094b64d1b3'
        'd8090496b53256786bf5c82932ec23c3b74d9f05a6f95a8b5529352656664bac')
    pubkey = config.DONATION_SCRIPT[1:-1]
    digest = hashlib.new('ripemd160', hashlib.sha256(pubkey).digest()).hexdigest()
    assert digest == 'd03da6fca390166d020be0e7c28ac8cc70f58403'


def test_datadir_for(nets):
    assert config.datadir_for('/data', nets['bsv_regtest']) == os.path.join('/data', 'bsv_regtest')


def test_network_objects_are_frozen(nets):
    with pytest.raises(dataclasses.FrozenInstanceError):
        nets['bitcoin'].SHARE_PERIOD = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        nets['bitcoin'].PARENT.SYMBOL = 'ABC'


# --- loading by path and errors ----------------------------------------------------

def test_load_by_path_uses_the_file_stem_as_name(tmp_path, bitcoin_text):
    path = write_variant(tmp_path, bitcoin_text, 'my_private_net.toml')
    assert load_network(tmp_path / 'my_private_net.toml') == load_network(path)   # os.PathLike too
    net = load_network(path)
    assert net.NAME == 'my_private_net'
    assert net.IDENTIFIER == load_network('bitcoin').IDENTIFIER
    assert config.datadir_for('d', net) == os.path.join('d', 'my_private_net')


def assert_error(path, field, *fragments):
    with pytest.raises(NetworkConfigError) as caught:
        load_network(path)
    message = str(caught.value)
    assert path in message
    assert caught.value.path == path
    if field is not None:
        assert field in message
        assert caught.value.field == field
    for fragment in fragments:
        assert fragment in message
    return message


# (line to replace, its replacement or None to delete, field named, message fragment)
BAD_VARIANTS = [
    ('SHARE_PERIOD =', None, 'SHARE_PERIOD', 'missing'),
    ('SHARE_PERIOD =', 'SHARE_PERID = 30', 'SHARE_PERID', "did you mean 'SHARE_PERIOD'"),
    ('SHARE_PERIOD =', 'SHARE_PERIOD = "30"', 'SHARE_PERIOD', 'integer'),
    ('SHARE_PERIOD =', 'SHARE_PERIOD = true', 'SHARE_PERIOD', 'integer'),
    ('SHARE_PERIOD =', 'SHARE_PERIOD = 0', 'SHARE_PERIOD', 'out of range'),
    ('SHARE_PERIOD =', 'SHARE_PERIOD = 30.0', 'SHARE_PERIOD', 'integer'),
    ('PERSIST =', 'PERSIST = 1', 'PERSIST', 'boolean'),
    ('P2P_PORT = 9333', 'P2P_PORT = 70000', 'P2P_PORT', 'out of range'),
    ('IDENTIFIER =', 'IDENTIFIER = "fc70035c7a81bc"', 'IDENTIFIER', '8 bytes'),
    ('PREFIX =', 'PREFIX = "2472ef181efcd37g"', 'PREFIX', '8 bytes'),
    ('MAX_TARGET =', 'MAX_TARGET = "0xffff"', 'MAX_TARGET', '64 hex digits'),
    ('MAX_TARGET =', 'MAX_TARGET = 1.5', 'MAX_TARGET', 'float'),
    ('MAX_TARGET =', 'MAX_TARGET = 0', 'MAX_TARGET', 'above 0'),
    ('MIN_TARGET =', 'MIN_TARGET = -1', 'MIN_TARGET', 'out of range'),
    ('MIN_TARGET =', 'MIN_TARGET = "0x0000000100000000000000000000000000000000000000000000000000000000"',
     'MIN_TARGET', 'MAX_TARGET'),
    ('REAL_CHAIN_LENGTH =', 'REAL_CHAIN_LENGTH = 8641', 'REAL_CHAIN_LENGTH', 'CHAIN_LENGTH'),
    ('TARGET_LOOKBEHIND =', 'TARGET_LOOKBEHIND = 9000', 'TARGET_LOOKBEHIND', 'CHAIN_LENGTH'),
    ('WORKER_PORT =', 'WORKER_PORT = 9333', 'WORKER_PORT', 'P2P_PORT'),
    ('LINEAGE =', 'LINEAGE = "orig"', 'LINEAGE', 'not implemented'),
    ('SOFTFORKS_REQUIRED =', 'SOFTFORKS_REQUIRED = ["csv", "csv"]', 'SOFTFORKS_REQUIRED', 'duplicates'),
    ('SOFTFORKS_REQUIRED =', 'SOFTFORKS_REQUIRED = "csv"', 'SOFTFORKS_REQUIRED', 'array'),
    ('    "ml.toom.im:9336",', '    "ml.toom.im:99999",', 'BOOTSTRAP_ADDRS', 'item 1'),
    ('    "ml.toom.im:9336",', '    "ml toom im",', 'BOOTSTRAP_ADDRS', 'host:port'),
    ('SYMBOL =', None, 'parent.SYMBOL', 'missing'),
    ('SYMBOL =', 'SYMBOL = "BCH"', 'SEGWIT_ACTIVATION_VERSION', 'cash'),
    ('POW_FUNC =', 'POW_FUNC = "x11"', 'parent.POW_FUNC', 'sha256d'),
    ('ADDRESS_VERSION =', 'ADDRESS_VERSION = 256', 'parent.ADDRESS_VERSION', 'out of range'),
    ('HUMAN_READABLE_PART =', 'HUMAN_READABLE_PART = "BC"', 'parent.HUMAN_READABLE_PART', 'prefix'),
    ('P2P_PREFIX =', 'P2P_PREFIX = "f9beb4"', 'parent.P2P_PREFIX', '4 bytes'),
    ('DUST_THRESHOLD =', 'DUST_THRESHOLD = 0.001', 'parent.DUST_THRESHOLD', 'float'),
    ('HALVING_INTERVAL =', 'HALVING_INTERVAL = 0', 'parent.HALVING_INTERVAL', 'out of range'),
    ('GENESIS_HASH =', 'GENESIS_HASH = "0x000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce2"',
     'parent.GENESIS_HASH', 'block hash'),
    ('CONF_FOLDER =', 'CONF_FOLDER = "a/b"', 'parent.CONF_FOLDER', 'folder'),
    ('SANE_TARGET_RANGE = [', 'SANE_TARGET_RANGE = [1, 0, 2]\nOLD_SANE = [',
     'parent.OLD_SANE', 'unknown key'),
    ('CHAIN = "main"', 'CHAIN = "Main Net"', 'parent.CHAIN', 'chain name'),
    ('CHECK_CHAIN =', 'CHECK_CHAIN = "yes"', 'parent.RPC_CHECK.CHECK_CHAIN', 'boolean'),
    ('HELP_CONTAINS =', 'HELP_CONTAINS = ""\nGETINFO = true', 'parent.RPC_CHECK.GETINFO', 'unknown key'),
    ('[parent.RPC_CHECK]', '[parent.RPC_CHEK]', 'parent.RPC_CHEK', 'unknown key'),
    ('[parent]', '[parnet]', 'parnet', "did you mean 'parent'"),
]


@pytest.mark.parametrize('start, replacement, field, fragment', BAD_VARIANTS)
def test_invalid_definitions_name_file_and_field(tmp_path, bitcoin_text, start, replacement,
                                                 field, fragment):
    path = write_variant(tmp_path, replace_line(bitcoin_text, start, replacement))
    assert_error(path, field, fragment)


def test_sane_target_range_shape_is_checked(tmp_path, bitcoin_text):
    low = '"0x00000000000010c6f7a0b5ed8d36b4c7f34938583621fafc8b0079a2834d26f9"'
    three_items = bitcoin_text.replace(low + ',', low + ', 5,')
    assert_error(write_variant(tmp_path, three_items), 'parent.SANE_TARGET_RANGE', '[low, high]')
    reversed_bounds = bitcoin_text.replace(low, '"0x' + 'f' * 64 + '"')
    assert_error(write_variant(tmp_path, reversed_bounds, 'reversed.toml'),
                 'parent.SANE_TARGET_RANGE', 'low bound')


def test_parent_must_be_a_table(tmp_path, bitcoin_text):
    text = bitcoin_text.split('[parent]')[0] + 'parent = 5\n'
    assert_error(write_variant(tmp_path, text), 'parent', 'table')


def test_missing_parent_table(tmp_path, bitcoin_text):
    text = bitcoin_text.split('[parent]')[0]
    assert_error(write_variant(tmp_path, text), 'parent', 'missing')


def test_malformed_toml_names_the_file(tmp_path, bitcoin_text):
    path = write_variant(tmp_path, bitcoin_text.replace('SHARE_PERIOD = 30', 'SHARE_PERIOD = = 30'))
    message = assert_error(path, None, 'malformed TOML')
    assert 'line' in message


def test_non_utf8_file_is_malformed(tmp_path):
    path = tmp_path / 'binary.toml'
    path.write_bytes(b'SHARE_PERIOD = "\xff\xfe"\n')
    assert_error(str(path), None, 'malformed TOML')


def test_unknown_network_name():
    with pytest.raises(NetworkConfigError) as caught:
        load_network('dogecoin_mainnet')
    message = str(caught.value)
    assert 'dogecoin_mainnet' in message and 'dogecoin_mainnet.toml' in message
    assert 'bitcoin' in message   # lists the available networks


def test_nonexistent_path(tmp_path):
    path = str(tmp_path / 'absent.toml')
    assert_error(path, None, 'cannot read')


@pytest.mark.parametrize('name', ['../bitcoin', 'bit coin', '', None, 5])
def test_odd_names_are_refused(name):
    with pytest.raises(NetworkConfigError):
        load_network(name)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_network_config_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp('fuzz') / 'fuzz.toml'
    path.write_bytes(data)
    with pytest.raises(NetworkConfigError):
        load_network(str(path))


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.integers(min_value=-2**63, max_value=2**63 - 1), st.booleans(),
                 st.text(max_size=10), st.floats(allow_nan=False, allow_infinity=False)))
def test_any_share_period_value_loads_or_is_refused_cleanly(tmp_path_factory, value):
    text = shipped_text_and_net('bitcoin')[0]
    if isinstance(value, str):
        literal = '"%s"' % value.replace('\\', '\\\\').replace('"', '\\"')
    elif isinstance(value, bool):
        literal = 'true' if value else 'false'
    else:
        literal = repr(value)
    path = tmp_path_factory.mktemp('share_period') / 'net.toml'
    path.write_text(replace_line(text, 'SHARE_PERIOD =', 'SHARE_PERIOD = ' + literal), encoding='utf-8')
    try:
        net = load_network(str(path))
    except NetworkConfigError as error:
        assert 'SHARE_PERIOD' in str(error) or 'malformed TOML' in str(error)
    else:
        assert type(value) is int and value >= 1 and net.SHARE_PERIOD == value


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=2**256 - 1))
def test_target_hex_form_round_trips(tmp_path_factory, target):
    text = replace_line(shipped_text_and_net('bitcoin')[0], 'MAX_TARGET =', 'MAX_TARGET = "0x%064x"' % target)
    path = tmp_path_factory.mktemp('target') / 'net.toml'
    path.write_text(text, encoding='utf-8')
    assert load_network(str(path)).MAX_TARGET == target


def test_explorer_links_are_https_or_absent_on_private_chains():
    """Public chains link to an explorer over https that serves `PREFIX + hash`; regtest chains
    have none (the dashboard then shows the hash without a link)."""
    import glob
    for path in sorted(glob.glob(os.path.join(resources.networks_dir(), '*.toml'))):
        parent = load_network(path).PARENT
        prefixes = (parent.BLOCK_EXPLORER_URL_PREFIX, parent.ADDRESS_EXPLORER_URL_PREFIX,
                    parent.TX_EXPLORER_URL_PREFIX)
        if parent.CHAIN == 'regtest':
            assert prefixes == ('', '', ''), path
        else:
            assert all(prefix.startswith('https://') and prefix.endswith('/') for prefix in prefixes), path
