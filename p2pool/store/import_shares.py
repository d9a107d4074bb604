"""Import of the original P2Pool's `shares.N` files into the SQLite store.

The original keeps its sharechain in text files `shares.0`, `shares.1`, ... in
`<datadir>/<network name>/` (web.md §3), read in numeric order, one record a line:

    5 <hex of the share wire wrapper>      a share (shares.md §2: VarInt type || VarStr contents)
    2 <hash, lowercase hex, no leading 0s>  "this share passed verification"
    0 ..., 1 ...                            legacy records, ignored

Whatever else a line holds (torn last line, bad hex, unknown type, a share that
fails to decode) is skipped, counted in the ImportReport and, for the first few,
logged as a warning; importing never fails because of file contents.  Shares whose
wrapper type is below the lowest supported version are skipped like the original
does.  Share decoding is injected as `parse_fn(wire_bytes) -> share`, the same
parser `ShareStore.load_shares` takes.
"""
from collections.abc import Iterator
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pool.bitcoin.serialize import DecodeError, VarInt

log = logging.getLogger(__name__)

#: [jt] lineage: the oldest share VERSION this node decodes (shares.md §2)
MIN_SHARE_VERSION = 17

RECORD_SHARE = 5
RECORD_VERIFIED = 2
LEGACY_RECORD_TYPES = frozenset((0, 1))

_FILE_NAME = re.compile(r'shares\.([0-9]+)\Z')
_LINE = re.compile(r'([0-9]+)[ \t]+(\S+)\Z')
_HEX = re.compile(r'[0-9a-fA-F]+\Z')
_MAX_HASH_DIGITS = 64
#: per-line warnings logged per import; the rest only appear in the counts and the summary
_MAX_LINE_WARNINGS = 20


class ShareImportError(Exception):
    """The share directory cannot be read at all (missing, not a directory, unreadable)."""


@dataclass
class ImportReport:
    """Counts of one import.

    Every line is counted once: lines == blank + shares + duplicates + verified_lines + skipped.
    """
    files: int = 0
    unreadable_files: int = 0
    lines: int = 0
    blank: int = 0
    shares: int = 0          # distinct shares decoded
    verified_lines: int = 0  # "2 <hash>" lines read
    verified_marks: int = 0  # distinct verified hashes among them
    duplicates: int = 0      # share lines repeating an earlier share
    legacy: int = 0          # record types 0 and 1
    obsolete: int = 0        # share wrapper type below the minimum version
    unknown_type: int = 0
    malformed: int = 0       # not "<decimal type> <hex>", bad or odd-length hex, bad wrapper, over-long hash
    unparsable: int = 0      # parse_fn rejected the share bytes
    stored: int = 0          # import_into: shares handed to the store (ones it already had stay as they were)
    marked: int = 0          # import_into: verified marks written (for shares held by the store)

    @property
    def skipped(self) -> int:
        return self.legacy + self.obsolete + self.unknown_type + self.malformed + self.unparsable


@dataclass
class ImportResult:
    shares: list = field(default_factory=list)
    verified_hashes: set = field(default_factory=set)
    report: ImportReport = field(default_factory=ImportReport)


def share_file_paths(directory) -> list[Path]:
    """The `shares.N` files of `directory`, in ascending N."""
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise ShareImportError('cannot list share directory %s: %s' % (directory, exc)) from exc
    numbered = []
    for name in names:
        match = _FILE_NAME.match(name)
        if match and os.path.isfile(os.path.join(directory, name)):
            numbered.append((int(match.group(1)), name))
    return [Path(directory) / name for _number, name in sorted(numbered)]


def iter_share_records(directory, parse_fn, report, min_version=MIN_SHARE_VERSION) -> Iterator[tuple[str, Any]]:
    """Yield ('share', share) and ('verified', hash) in file order, counting into `report`.

    Duplicated shares are yielded once; verified hashes may repeat.
    """
    seen = set()
    for path in share_file_paths(directory):
        report.files += 1
        try:
            with open(path, 'rb') as handle:
                for number, raw_line in enumerate(handle, 1):
                    record = _parse_line(raw_line, parse_fn, report, min_version, path, number)
                    if record is None:
                        continue
                    kind, value = record
                    if kind == 'share':
                        if value.hash in seen:
                            report.duplicates += 1
                            continue
                        seen.add(value.hash)
                        report.shares += 1
                    else:
                        report.verified_lines += 1
                    yield record
        except OSError as exc:
            report.unreadable_files += 1
            log.warning('cannot read share file %s: %s; skipping the rest of it', path, exc)


def read_share_files(directory, parse_fn, min_version=MIN_SHARE_VERSION) -> 'ImportResult':
    """Read every `shares.N` file of `directory`: ImportResult(shares, verified_hashes, report)."""
    result = ImportResult()
    for kind, value in iter_share_records(directory, parse_fn, result.report, min_version):
        if kind == 'share':
            result.shares.append(value)
        else:
            result.verified_hashes.add(value)
    result.report.verified_marks = len(result.verified_hashes)
    _log_summary(directory, result.report)
    return result


def import_into(store, directory, parse_fn, batch_size=1000, added_at=0.0,
                min_version=MIN_SHARE_VERSION) -> ImportReport:
    """Copy the shares and verified marks of `directory` into `store`; returns the ImportReport.

    Shares are committed `batch_size` at a time (one transaction each) so memory stays
    bounded.  Verified marks are written last, one transaction, and only for shares
    the store then holds (a mark without its share is useless).
    """
    if batch_size < 1:
        raise ValueError('batch_size must be at least 1')
    report = ImportReport()
    verified = set()
    batch = []
    for kind, value in iter_share_records(directory, parse_fn, report, min_version):
        if kind == 'verified':
            verified.add(value)
            continue
        batch.append(value)
        if len(batch) >= batch_size:
            store.add_shares(batch, added_at)
            report.stored += len(batch)
            batch = []
    if batch:
        store.add_shares(batch, added_at)
        report.stored += len(batch)
    report.verified_marks = len(verified)
    if verified:
        held = verified & store.share_hashes()
        store.mark_verified(sorted(held))
        report.marked = len(held)
    _log_summary(directory, report)
    return report


def _parse_line(raw_line, parse_fn, report, min_version, path, number):
    """One line -> ('share', share) / ('verified', int) / None (counted)."""
    report.lines += 1
    try:
        line = raw_line.decode('ascii').strip()
    except UnicodeDecodeError:
        return _skip(report, 'malformed', path, number, 'not ASCII text')
    if not line:
        report.blank += 1
        return None
    match = _LINE.match(line)
    if match is None:
        return _skip(report, 'malformed', path, number, 'not "<type> <hex>"')
    record_type, data = int(match.group(1)), match.group(2)
    if record_type in LEGACY_RECORD_TYPES:
        report.legacy += 1
        return None
    if record_type not in (RECORD_SHARE, RECORD_VERIFIED):
        return _skip(report, 'unknown_type', path, number, 'unknown record type %d' % record_type)
    if not _HEX.match(data):
        return _skip(report, 'malformed', path, number, 'data is not hexadecimal')
    if record_type == RECORD_VERIFIED:
        if len(data) > _MAX_HASH_DIGITS:
            return _skip(report, 'malformed', path, number, 'verified hash longer than 256 bits')
        return 'verified', int(data, 16)
    if len(data) % 2:
        return _skip(report, 'malformed', path, number, 'odd number of hex digits (torn line?)')
    wire = bytes.fromhex(data)
    try:
        share_type, _pos = VarInt.read(wire, 0)
    except DecodeError as exc:
        return _skip(report, 'malformed', path, number, 'bad share wrapper: %s' % exc)
    if share_type < min_version:
        report.obsolete += 1
        return None
    try:
        share = parse_fn(wire)
    except Exception as exc:  # noqa: BLE001 - one bad share must not stop the import
        return _skip(report, 'unparsable', path, number, 'share does not decode (%s: %s)'
                     % (type(exc).__name__, exc))
    if not isinstance(getattr(share, 'hash', None), int):
        return _skip(report, 'unparsable', path, number,
                     'parser returned a %s without an integer hash' % type(share).__name__)
    return 'share', share


def _skip(report, counter, path, number, reason):
    setattr(report, counter, getattr(report, counter) + 1)
    if report.malformed + report.unknown_type + report.unparsable <= _MAX_LINE_WARNINGS:
        log.warning('%s line %d: %s; skipping it', path, number, reason)
    return None


def _log_summary(directory, report) -> None:
    if report.skipped or report.unreadable_files:
        log.warning('share import from %s: %d shares, %d verified marks; skipped %d lines (%d malformed, '
                    '%d unknown type, %d undecodable, %d obsolete, %d legacy), %d unreadable files',
                    directory, report.shares, report.verified_marks, report.skipped, report.malformed,
                    report.unknown_type, report.unparsable, report.obsolete, report.legacy,
                    report.unreadable_files)
    else:
        log.info('share import from %s: %d shares, %d verified marks from %d files',
                 directory, report.shares, report.verified_marks, report.files)
