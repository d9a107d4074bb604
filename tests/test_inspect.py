"""The inspector prints JSON for good input and one error line (exit 2) for bad input."""
import json
import subprocess
import sys

import pytest

from p2pool.commands import inspector as inspect

A1_HEADER = ('0100000082622f3d60f36d683b9b0732a7988229513cf98723b7862a8a0300000000000044bc7380c2e82d647df280b1aa24880'
             '060433b39465f9765b64e2e813b3aa437eddce64e68860e1a061c13da')
A3_TX = ('01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff5370736a0468860e1a0452389500'  # noqa: E501 (vector)
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
    for argv in ([sys.executable, '-m', 'p2pool.commands.inspector'],
                 [sys.executable, '-m', 'p2pool.app.main', 'inspect']):
        ok = subprocess.run(argv + ['header', A1_HEADER], capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)['hash'].startswith('0000000000000')
        bad = subprocess.run(argv + ['bogus', 'x'], capture_output=True, text=True)
        assert bad.returncode == 2
        assert len(bad.stderr.strip().splitlines()) == 1 and 'Traceback' not in bad.stderr


# --- sharechain commands ---------------------------------------------------------------

@pytest.fixture(scope='module')
def regtest_chain():
    from p2pool.config import load_network
    from p2pool.testing import testchain
    net = load_network('bsv_regtest')
    return net, testchain.mine_chain(net, net.CHAIN_LENGTH + 5, addresses=testchain.make_addresses(net, 3))


def test_share(capsys, regtest_chain):
    net, shares = regtest_chain
    code, out, _ = run(capsys, '--net', 'bsv_regtest', 'share', shares[1].to_wire().hex())
    result = json.loads(out)
    assert code == 0
    assert result['hash'] == '%064x' % shares[1].hash
    assert result['previous_share_hash'] == '%064x' % shares[0].hash
    assert result['version'] == 35 and result['absheight'] == 2
    assert result['payout_address'] == shares[1].payout_address
    assert result['subsidy'] == shares[1].subsidy and result['stale_info'] is None
    for field in ('pow_hash', 'gentx_hash', 'target', 'max_target', 'timestamp', 'abswork', 'payout_script',
                  'donation', 'desired_version'):
        assert field in result


def test_share_bad_input(capsys, regtest_chain):
    net, shares = regtest_chain
    raw = bytearray(shares[1].to_wire())
    raw[-1] ^= 0xff
    for arg in ('zz', raw.hex(), '00'):
        code, out, err = run(capsys, '--net', 'bsv_regtest', 'share', arg)
        assert code == 2 and out == '' and len(err.strip().splitlines()) == 1


def test_verify_plain_and_original_files(capsys, tmp_path, regtest_chain):
    net, shares = regtest_chain
    plain = tmp_path / 'chain.hex'
    plain.write_text('\n'.join(s.to_wire().hex() for s in shares) + '\n')
    original = tmp_path / 'shares.0'
    original.write_text(''.join('5 %s\n2 %x\n' % (s.to_wire().hex(), s.hash) for s in shares) + 'zz\n5 00\n')
    for path, extra in ((plain, 0), (original, 2)):
        code, out, _ = run(capsys, '--net', 'bsv_regtest', 'verify', str(path))
        records = [json.loads(line) for line in out.splitlines()]
        assert code == 0
        share_lines, summary = records[:-1], records[-1]
        assert len(share_lines) == len(shares) + extra
        good = [r for r in share_lines if r['hash'] is not None]
        assert [r['hash'] for r in good] == ['%064x' % s.hash for s in shares]
        assert all(r['verified'] for r in good)
        assert all(r['error'] for r in share_lines if r['hash'] is None)
        assert summary['best_share'] == '%064x' % shares[-1].hash
        payouts = summary['expected_payouts']
        assert sum(payouts.values()) == shares[-1].subsidy
        assert set(payouts) >= {s.payout_address for s in shares}


def test_verify_reports_a_forged_share(capsys, tmp_path, regtest_chain):
    net, shares = regtest_chain
    from p2pool.sharechain.share import share_from_contents
    contents = dict(shares[-1].contents)
    info = dict(contents['share_info'])
    info['share_data'] = dict(info['share_data'], subsidy=info['share_data']['subsidy'] * 2)
    contents['share_info'] = info
    forged = None
    for nonce in range(100000):
        contents['min_header'] = dict(contents['min_header'], nonce=nonce)
        try:
            forged = share_from_contents(net, 35, contents)
            break
        except ValueError:
            continue
    path = tmp_path / 'forged.hex'
    path.write_text('\n'.join(s.to_wire().hex() for s in shares[:-1] + [forged]))
    records = [json.loads(line) for line in run(capsys, '--net', 'bsv_regtest', 'verify', str(path))[1].splitlines()]
    last = [r for r in records if r.get('hash') == '%064x' % forged.hash][0]
    assert last['verified'] is False and "gentx doesn't match hash_link" in last['error']
    assert records[-1]['best_share'] == '%064x' % shares[-2].hash


def test_verify_missing_file(capsys):
    code, out, err = run(capsys, 'verify', '/no/such/file')
    assert code == 2 and 'No such file' in err
