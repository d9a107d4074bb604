"""`p2pool import-shares`: the original's shares.N files into the node's SQLite store.

Real bsv_regtest shares (mined by p2pool.testing.testchain) are written in the
original's text format (web.md §3: "5 <wire hex>" share lines, "2 <hash hex>"
verified lines), imported, and loaded back the way the node loads its chain at
start-up. Bad input ends with one line on stderr and exit status 2; a store a
running process holds open is refused with status 1.
"""
import subprocess
import sys

import pytest

from node_processes import run_p2pool
from p2pool.commands import import_shares as import_command
from p2pool.config import load_network
from p2pool.sharechain.chain import ShareChain
from p2pool.sharechain.share import Share
from p2pool.store.sharestore import ShareStore
from p2pool.testing.testchain import mine_chain

NET_NAME = 'bsv_regtest'


@pytest.fixture(scope='module')
def net():
    return load_network(NET_NAME)


@pytest.fixture(scope='module')
def chain(net):
    return mine_chain(net, 12)


def share_line(share):
    return '5 %s' % share.to_wire().hex()


def verified_line(share):
    return '2 %x' % share.hash        # the original writes the hash without leading zeros


def write_share_files(directory, chain, verified_count=None):
    """shares.0 and shares.1 as the original leaves them: shares, verified marks, odd lines."""
    directory.mkdir(parents=True, exist_ok=True)
    verified = chain if verified_count is None else chain[:verified_count]
    first, second = chain[:7], chain[7:]
    (directory / 'shares.0').write_text('\n'.join(
        [share_line(share) for share in first] + [verified_line(share) for share in verified if share in first]
        + ['0 legacy-record', '']) + '\n')
    (directory / 'shares.1').write_text('\n'.join(
        [share_line(share) for share in second] + [share_line(first[0])]
        + [verified_line(share) for share in verified if share in second] + ['5 abc']))  # torn last line
    return directory


def stored(datadir, net):
    with ShareStore(datadir / NET_NAME / 'p2pool.sqlite3') as store:
        return {share.hash: is_verified
                for share, is_verified in store.load_shares(net, lambda raw: Share.from_wire(net, raw))}


def run(argv, capsys):
    status = import_command.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_import_then_the_node_loads_the_chain(tmp_path, net, chain, capsys):
    shares_dir = write_share_files(tmp_path / 'original' / NET_NAME, chain, verified_count=10)
    datadir = tmp_path / 'data'
    status, out, err = run([str(shares_dir), '--net', NET_NAME, '--datadir', str(datadir)], capsys)
    assert status == 0, err
    assert out.count('\n') == 1
    assert 'imported 12 shares (12 new) and 10 verified marks from 2 files' in out
    assert '1 duplicates' in out and '1 malformed' in out and '1 legacy' in out
    held = stored(datadir, net)
    assert set(held) == {share.hash for share in chain}
    assert sorted(hash_ for hash_, is_verified in held.items() if is_verified) == \
        sorted(share.hash for share in chain[:10])

    with ShareStore(datadir / NET_NAME / 'p2pool.sqlite3') as store:
        node_chain = ShareChain(net, store, clock=lambda: chain[-1].timestamp + 1)
        assert node_chain.load() == 12
        assert node_chain.tracker.get_height(chain[-1].hash) == 12


def test_the_originals_data_folder_and_a_second_import(tmp_path, net, chain, capsys):
    original = tmp_path / 'p2pool-data'
    write_share_files(original / NET_NAME, chain)
    datadir = tmp_path / 'data'
    argv = [str(original), '--net', NET_NAME, '--datadir', str(datadir)]
    assert run(argv, capsys)[0] == 0
    status, out, _err = run(argv, capsys)
    assert status == 0
    assert 'imported 12 shares (0 new) and 12 verified marks' in out
    assert len(stored(datadir, net)) == 12


def test_the_subcommand_of_the_program(tmp_path, net, chain):
    shares_dir = write_share_files(tmp_path / 'shares', chain)
    result = run_p2pool(['import-shares', str(shares_dir), '--net', NET_NAME, '--datadir', str(tmp_path / 'd')])
    assert result.returncode == 0, result.stderr
    assert 'imported 12 shares (12 new)' in result.stdout
    assert len(stored(tmp_path / 'd', net)) == 12


def assert_one_line_error(status, err, expected_status, phrase):
    assert status == expected_status
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and phrase in lines[0], err
    assert 'Traceback' not in err


@pytest.mark.parametrize('make, phrase', [
    (lambda tmp_path: tmp_path / 'missing', 'is not a directory'),
    (lambda tmp_path: tmp_path, 'no shares.N files in'),
    (lambda tmp_path: _file(tmp_path / 'shares.0', 'hello world\n5 zz\n'), 'is not a directory'),
])
def test_bad_directories_are_one_line_and_exit_2(tmp_path, capsys, make, phrase):
    status, out, err = run([str(make(tmp_path)), '--net', NET_NAME, '--datadir', str(tmp_path / 'd')], capsys)
    assert_one_line_error(status, err, 2, phrase)
    assert out == ''


def _file(path, text):
    path.write_text(text)
    return path


def test_files_without_one_readable_share_are_refused(tmp_path, capsys, chain):
    shares_dir = tmp_path / 'shares'
    shares_dir.mkdir()
    (shares_dir / 'shares.0').write_text('5 %s\n' % (chain[0].to_wire()[:-3].hex()))   # cut short
    status, _out, err = run([str(shares_dir), '--net', NET_NAME, '--datadir', str(tmp_path / 'd')], capsys)
    assert status == 2
    assert err.splitlines()[-1].startswith('p2pool import-shares: no readable share')
    assert 'Traceback' not in err


@pytest.mark.parametrize('argv, phrase', [
    (['--net'], 'expected one argument'),
    ([], 'the following arguments are required: DIR'),
    (['somewhere', '--bogus'], 'unrecognized arguments: --bogus'),
    (['somewhere', '--net', 'no_such_network'], 'no_such_network'),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, argv, phrase):
    status, _out, err = run(argv, capsys)
    assert_one_line_error(status, err, 2, phrase)


def hold_store_open(path):
    """A separate process holding the data directory and its store, as a running node does;
    stop it with .kill()."""
    script = ('import os, sys\nfrom p2pool.app.datadir_lock import lock_datadir\n'
              'from p2pool.store.sharestore import ShareStore\n'
              'lock = lock_datadir(os.path.dirname(sys.argv[1]))\n'
              'store = ShareStore(sys.argv[1]); store.count_shares()\n'
              'print("open", flush=True); sys.stdin.read()\n')
    holder = subprocess.Popen([sys.executable, '-c', script, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'open'
    return holder


def test_refuses_while_a_node_holds_the_store(tmp_path, net, chain, capsys):
    shares_dir = write_share_files(tmp_path / 'shares', chain)
    datadir = tmp_path / 'data'
    (datadir / NET_NAME).mkdir(parents=True)
    holder = hold_store_open(datadir / NET_NAME / 'p2pool.sqlite3')
    try:
        status, out, err = run([str(shares_dir), '--net', NET_NAME, '--datadir', str(datadir)], capsys)
        assert_one_line_error(status, err, 1, 'in use by another p2pool process')
        assert out == ''
    finally:
        holder.kill()          # like kill -9: the leftover lock and -shm files must not block the import
        holder.wait()
    assert (datadir / NET_NAME / 'p2pool.sqlite3-shm').exists()
    status, out, err = run([str(shares_dir), '--net', NET_NAME, '--datadir', str(datadir)], capsys)
    assert status == 0, err
    assert len(stored(datadir, net)) == 12
