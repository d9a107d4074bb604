"""The inspector prints JSON for good input and one error line (exit 2) for bad input."""
import json
import subprocess
import sys

import pytest

from p2pool import inspect

A1_HEADER = ('0100000082622f3d60f36d683b9b0732a7988229513cf98723b7862a8a0300000000000044bc7380c2e82d647df280b1aa24880'
             '060433b39465f9765b64e2e813b3aa437eddce64e68860e1a061c13da')
A3_TX = ('01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff5370736a0468860e1a0452389500'
         '522cfabe6d6d2b2f33cf8f6291b184f1b291d24d82229463fcec239afea0ee34b4bfc622f62401000000000000004d696e656420627920'
         '425443204775696c6420ac1eeeed88ffffffff013a27412a010000001976a914ca975b00a8c203b8692f5a18d92dc5c2d2ebc57b88ac'
         '00000000')


def run(capsys, *argv):
    code = inspect.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_header(capsys):
    code, out, _ = run(capsys, 'header', A1_HEADER)
    result = json.loads(out)
    assert code == 0
    assert result['hash'] == '000000000000003aaaf7638f9f9c0d0c60e8b0eb817dcdb55fd2b1964efc5175'
    assert result['pow_hash'] == result['hash']
    assert result['bits'] == '1a0e8668' and result['nonce'] == 3658685446


def test_header_scrypt_pow(capsys):
    raw = ('0100000073009584100e64c11ee87789693ceffe1bd2cd10584d42ddc9d1136606d328d9165f399f54c51b8f46aa00'
           'b6528a3ca9b3e725e4022b184a59668ab546b6f403daba244f6fb5011d00510000')
    result = json.loads(run(capsys, '--net', 'litecoin', 'header', raw)[1])
    assert result['pow_hash'] == '00000001312dc20ce5aa3ee622f5562dfb2593ec51436aab739ef0d02189e18f'


def test_tx(capsys):
    result = json.loads(run(capsys, 'tx', A3_TX)[1])
    assert result['txid'] == 'b53802b2333e828d6532059f46ecf6b313a42d79f97925e457fbbfda45367e5c'
    assert result['outputs'][0]['address'] == '1KUCp7YP5FP8ViRxhfszSUJCTAajK6viGy'
    assert result['outputs'][0]['value'] == 5003880250
    assert result['inputs'][0]['previous_output'] is None


def test_block(capsys):
    raw = bytes.fromhex(A1_HEADER)[:36]  # a one-transaction block whose merkle root is the coinbase txid
    from p2pool.bitcoin import data
    tx = data.tx_type.unpack(bytes.fromhex(A3_TX))
    header = dict(data.header_type.unpack(bytes.fromhex(A1_HEADER)), merkle_root=data.txid(tx))
    block = data.block_type.pack({'header': header, 'txs': [tx]})
    result = json.loads(run(capsys, 'block', block.hex())[1])
    assert result['merkle_root_ok'] is True and result['tx_count'] == 1
    assert result['txids'] == ['b53802b2333e828d6532059f46ecf6b313a42d79f97925e457fbbfda45367e5c']
    assert raw


def test_address_and_script(capsys):
    result = json.loads(run(capsys, 'address', '1KUCp7YP5FP8ViRxhfszSUJCTAajK6viGy')[1])
    assert result == {'address': '1KUCp7YP5FP8ViRxhfszSUJCTAajK6viGy', 'type': 'p2pkh',
                      'script': '76a914ca975b00a8c203b8692f5a18d92dc5c2d2ebc57b88ac'}
    result = json.loads(run(capsys, 'script', result['script'])[1])
    assert result['address'] == '1KUCp7YP5FP8ViRxhfszSUJCTAajK6viGy'
    result = json.loads(run(capsys, 'script', '6a00')[1])
    assert result['address'] is None


@pytest.mark.parametrize('argv', [
    ['header', 'zz'], ['header', '00' * 79], ['tx', '00'], ['block', '00' * 83],
    ['address', 'not-an-address'], ['--net', 'litecoin', 'address', '1KUCp7YP5FP8ViRxhfszSUJCTAajK6viGy'],
    ['--net', 'no_such_net', 'tx', '00'], ['bogus', '00'], ['header'],
])
def test_bad_input_is_one_line_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ''
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err


def test_command_line_entry_points():
    for argv in ([sys.executable, '-m', 'p2pool.inspect'], [sys.executable, '-m', 'p2pool.main', 'inspect']):
        ok = subprocess.run(argv + ['header', A1_HEADER], capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)['hash'].startswith('0000000000000')
        bad = subprocess.run(argv + ['bogus', 'x'], capture_output=True, text=True)
        assert bad.returncode == 2
        assert len(bad.stderr.strip().splitlines()) == 1 and 'Traceback' not in bad.stderr
