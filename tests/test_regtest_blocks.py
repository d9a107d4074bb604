"""Blocks mined by the real regtest bitcoind decode with our code to what bitcoind reports."""
import pytest

from p2pool.bitcoin import data
from p2pool.bitcoin.script import read_bip34_height

pytestmark = pytest.mark.bitcoind


def test_mined_blocks_decode_to_bitcoinds_view(regtest_node):
    node = regtest_node
    # a block with real transactions besides the coinbase: spend to ourselves first
    for _ in range(3):
        node.rpc('sendtoaddress', node.wallet_address(), 1.5)
    hashes = node.mine(2)
    for block_hash in hashes:
        raw = bytes.fromhex(node.rpc('getblock', block_hash, 0))
        info = node.rpc('getblock', block_hash, 1)
        block = data.block_type.unpack(raw)
        assert '%064x' % data.header_hash(block['header']) == block_hash
        assert '%064x' % block['header']['merkle_root'] == info['merkleroot']
        txids = [data.txid(tx) for tx in block['txs']]
        assert ['%064x' % t for t in txids] == info['tx']
        assert data.merkle_hash(txids) == block['header']['merkle_root']
        assert block['header']['bits'] == int(info['bits'], 16)
        assert data.block_type.pack(block) == raw
        height = read_bip34_height(block['txs'][0]['tx_ins'][0]['script'])
        assert height in (None, info['height']) or info['height'] <= 16
    assert len(data.block_type.unpack(bytes.fromhex(node.rpc('getblock', hashes[0], 0)))['txs']) >= 4


def test_header_rpc_matches_our_header_encoding(regtest_node):
    tip = regtest_node.rpc('getbestblockhash')
    header_hex = regtest_node.rpc('getblockheader', tip, False)
    header = data.header_type.unpack(bytes.fromhex(header_hex))
    assert '%064x' % data.header_hash(header) == tip
    info = regtest_node.rpc('getblockheader', tip)
    assert header['bits'] == int(info['bits'], 16)
    assert header['nonce'] == info['nonce'] and header['timestamp'] == info['time']
