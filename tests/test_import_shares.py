"""Import of the original's shares.N files (web.md §3) with synthetic files and a stub share parser."""
import hashlib
import logging
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from p2pool.bitcoin.serialize import VarInt, VarStr
from p2pool.store import import_shares
from p2pool.store.import_shares import (
    ImportReport, ShareImportError, import_into, read_share_files, share_file_paths)
from p2pool.store.sharestore import ShareStore


def wire(version, contents):
    """A share wire wrapper: VarInt type || VarStr contents (shares.md §2)."""
    return VarInt.pack(version) + VarStr.pack(contents)


def share_line(version, contents):
    return '5 %s' % wire(version, contents).hex()


def verified_line(share_hash):
    return '2 %x' % share_hash


def stub_hash(version, contents):
    return int.from_bytes(hashlib.sha256(wire(version, contents)).digest(), 'little')


def stub_parse(data):
    """Stands in for Share.from_wire: checks the wrapper, refuses contents starting with b'bad'."""
    version, pos = VarInt.read(data, 0)
    contents = VarStr.unpack(data[pos:])
    if contents.startswith(b'bad'):
        raise ValueError('undecodable share contents')
    return SimpleNamespace(hash=int.from_bytes(hashlib.sha256(data).digest(), 'little'), VERSION=version,
                           contents=contents, to_wire=lambda: data)


def write_files(directory, files):
    for name, lines in files.items():
        (directory / name).write_text(''.join(line + '\n' for line in lines))


def test_files_are_read_in_numeric_order(tmp_path):
    write_files(tmp_path, {
        'shares.10': [share_line(35, b'ten')],
        'shares.2': [share_line(35, b'two')],
        'shares.0': [share_line(17, b'zero')],
        'shares.1.bak': [share_line(35, b'backup')],
        'shares.x': [share_line(35, b'letter')],
        'addrs': ['[]'],
    })
    (tmp_path / 'shares.3').mkdir()
    assert [path.name for path in share_file_paths(tmp_path)] == ['shares.0', 'shares.2', 'shares.10']
    result = read_share_files(tmp_path, stub_parse)
    assert [share.contents for share in result.shares] == [b'zero', b'two', b'ten']
    assert result.report.files == 3


def test_all_kinds_of_lines(tmp_path, caplog):
    good = [(35, b'a'), (17, b'b'), (34, b'c' * 300)]
    lines = [share_line(v, c) for v, c in good] + [
        verified_line(stub_hash(35, b'a')),
        verified_line(stub_hash(34, b'c' * 300)).upper(),   # upper-case hex is fine
        '2 0',                                   # hash zero, no leading zeros at all
        '',                                      # blank
        '   ',                                   # blank
        '0 legacy-record-data',                  # legacy types are ignored whatever they hold
        '1 abcdef',
        share_line(16, b'old'),                  # below the lowest supported version
        share_line(3, b'older'),
        '3 abcd', '4 abcd', '7 00',              # unknown record types
        '5 zz11',                                # bad hex
        '5 abc',                                 # odd length (torn)
        '5 ' + wire(35, b'torn')[:-2].hex(),     # truncated wrapper: the parser refuses it
        '5 fd',                                  # wrapper type VarInt cut short
        '5',                                     # one token
        '5 00 11',                               # three tokens
        'five 00',                               # type not a number
        '-5 00',
        '5 0x%s' % wire(35, b'x').hex(),
        '2 ' + 'f' * 65,                         # longer than 256 bits
        '2 -1f',
        share_line(35, b'bad share'),            # parser raises ValueError
        share_line(35, b'a'),                    # duplicate
    ]
    write_files(tmp_path, {'shares.0': lines})
    with caplog.at_level(logging.WARNING, logger='p2pool.store.import_shares'):
        result = read_share_files(tmp_path, stub_parse)
    assert [share.contents for share in result.shares] == [b'a', b'b', b'c' * 300]
    assert result.verified_hashes == {stub_hash(35, b'a'), stub_hash(34, b'c' * 300), 0}
    report = result.report
    assert (report.shares, report.verified_lines, report.verified_marks) == (3, 3, 3)
    assert (report.blank, report.legacy, report.obsolete, report.unknown_type) == (2, 2, 2, 3)
    assert (report.malformed, report.unparsable, report.duplicates) == (10, 2, 1)
    assert report.lines == len(lines)
    assert report.lines == (report.blank + report.shares + report.duplicates + report.verified_lines
                            + report.skipped)
    assert 'unknown record type 7' in caplog.text
    assert 'skipped 19 lines' in caplog.text


def test_crlf_non_ascii_and_torn_last_line(tmp_path):
    content = (share_line(35, b'one') + '\r\n').encode() + b'5 \xff\xfe\n' + share_line(35, b'two')[:-3].encode()
    (tmp_path / 'shares.0').write_bytes(content)
    result = read_share_files(tmp_path, stub_parse)
    assert [share.contents for share in result.shares] == [b'one']
    assert result.report.malformed == 2  # the non-ASCII line and the odd-length torn line


def test_empty_files_and_empty_directory(tmp_path):
    assert read_share_files(tmp_path, stub_parse).report == ImportReport()
    (tmp_path / 'shares.0').write_bytes(b'')
    (tmp_path / 'shares.1').write_bytes(b'\n\n')
    result = read_share_files(tmp_path, stub_parse)
    assert result.shares == [] and result.verified_hashes == set()
    assert (result.report.files, result.report.lines, result.report.blank, result.report.skipped) == (2, 2, 2, 0)


def test_missing_directory_is_an_import_error(tmp_path):
    with pytest.raises(ShareImportError):
        read_share_files(tmp_path / 'nowhere', stub_parse)


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    write_files(tmp_path, {'shares.0': [share_line(35, b'a')], 'shares.1': [share_line(35, b'b')]})
    real_open = open

    def flaky_open(path, *args, **kwargs):
        if str(path).endswith('shares.0'):
            raise PermissionError('denied')
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(import_shares, 'open', flaky_open, raising=False)
    result = read_share_files(tmp_path, stub_parse)
    assert [share.contents for share in result.shares] == [b'b']
    assert result.report.unreadable_files == 1


def test_min_version_is_configurable(tmp_path):
    write_files(tmp_path, {'shares.0': [share_line(16, b'x'), share_line(17, b'y')]})
    assert len(read_share_files(tmp_path, stub_parse, min_version=16).shares) == 2
    assert len(read_share_files(tmp_path, stub_parse, min_version=35).shares) == 0


def test_line_warnings_are_limited(tmp_path, caplog):
    write_files(tmp_path, {'shares.0': ['9 00'] * 100})
    with caplog.at_level(logging.WARNING, logger='p2pool.store.import_shares'):
        report = read_share_files(tmp_path, stub_parse).report
    assert report.unknown_type == 100
    assert len(caplog.records) <= import_shares._MAX_LINE_WARNINGS + 1


def test_import_into_store(tmp_path):
    datadir = tmp_path / 'bitcoin'
    datadir.mkdir()
    contents = [b'share %d' % n for n in range(25)]
    write_files(datadir, {
        'shares.0': [share_line(35, c) for c in contents[:10]] + ['5 nothex'],
        'shares.1': [share_line(35, c) for c in contents[10:]]
                    + [verified_line(stub_hash(35, c)) for c in contents[::2]]
                    + [verified_line(12345)],  # a mark whose share is not held
    })
    store = ShareStore(datadir / 'p2pool.sqlite3')
    transactions = []
    real_add = store.add_shares
    store.add_shares = lambda shares, added_at=0.0: transactions.append(len(shares)) or real_add(shares, added_at)

    report = import_into(store, datadir, stub_parse, batch_size=10, added_at=7.0)
    assert transactions == [10, 10, 5]
    assert (report.stored, report.verified_marks, report.marked, report.malformed) == (25, 14, 13, 1)
    loaded = {share.contents: verified for share, verified in store.load_shares(None, stub_parse)}
    assert loaded == {c: n % 2 == 0 for n, c in enumerate(contents)}
    assert not store.is_verified(12345)

    import_into(store, datadir, stub_parse)  # importing again changes nothing
    assert store.count_shares() == 25 and store.count_verified() == 13
    store.close()


def test_import_into_rejects_bad_batch_size(tmp_path):
    with ShareStore(':memory:') as store, pytest.raises(ValueError):
        import_into(store, tmp_path, stub_parse, batch_size=0)


LINE_PIECES = st.one_of(
    st.builds(share_line, st.sampled_from([0, 16, 17, 35, 300]), st.binary(max_size=40)),
    st.builds(verified_line, st.integers(0, (1 << 256) - 1)),
    st.text(alphabet='0125 abcdefxz-\t', max_size=30),
    st.text(max_size=20).filter(lambda text: '\n' not in text and '\r' not in text),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINE_PIECES, max_size=20))
def test_arbitrary_lines_never_raise_and_are_all_counted(tmp_path, lines):
    path = tmp_path / 'shares.0'
    path.write_bytes(''.join(line + '\n' for line in lines).encode('utf-8', 'surrogatepass'))
    report = read_share_files(tmp_path, stub_parse).report
    assert report.lines == len(path.read_bytes().splitlines())
    assert report.lines == (report.blank + report.shares + report.duplicates + report.verified_lines
                            + report.skipped)
