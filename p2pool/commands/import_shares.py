"""`p2pool import-shares DIR [--net NAME] [--datadir DIR]`: bring the original P2Pool's sharechain along.

The original keeps its sharechain in text files `shares.0`, `shares.1`, ... in
`<its datadir>/<network name>/`; this node keeps it in SQLite
(`<datadir>/<network name>/p2pool.sqlite3`). The command copies the shares and
their "verified" marks across once, so an upgraded node starts with the chain
instead of downloading it again. DIR may be the folder holding the shares.N
files or the original's data folder above it (then `DIR/<network name>` is used).

It refuses while a node runs on that data directory (p2pool.app.datadir_lock): a running
node read its chain at start-up and would never see the imported shares.
Problems are reported in one line on stderr: exit status 2 for bad input
(options, a folder without share files, files with no readable share), 1 when
the store is in use or cannot be written. On success it prints one summary line.
"""
import argparse
import logging
import os
import sys
import time
from typing import Any

from p2pool import config
from p2pool.app import cli
from p2pool.app.datadir_lock import DataDirInUse, lock_datadir

log = logging.getLogger(__name__)

STORE_NAME = 'p2pool.sqlite3'

EXIT_BAD_INPUT = 2
EXIT_REFUSED = 1


class ImportCommandError(Exception):
    """The import cannot run; `exit_status` is 2 for bad input, 1 otherwise."""

    def __init__(self, message, exit_status=EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_status = exit_status


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineErrorParser(
        prog='p2pool import-shares',
        description='Import the original P2Pool\'s shares.N files into this node\'s share store '
                    '(run it while the node is stopped).')
    parser.add_argument('directory', metavar='DIR',
                        help='folder with the shares.0, shares.1, ... files (or the original\'s data folder '
                             'holding a NET subfolder)')
    parser.add_argument('--net', default='bitcoin', metavar='NAME|PATH',
                        help='network name (a file in networks/) or path to a network TOML file (default: bitcoin)')
    parser.add_argument('--datadir', default=None, metavar='DIR',
                        help='this node\'s data directory; NET is appended (default: data/ beside the program)')
    return parser


def find_share_directory(directory, net) -> str:
    """The folder holding the shares.N files: `directory` itself or its `<network name>` subfolder."""
    from p2pool.store.import_shares import ShareImportError, share_file_paths
    if not os.path.isdir(directory):
        raise ImportCommandError('%s is not a directory' % directory)
    candidates = [directory, os.path.join(directory, net.NAME)]
    for candidate in candidates:
        try:
            if os.path.isdir(candidate) and share_file_paths(candidate):
                return candidate
        except ShareImportError as e:
            raise ImportCommandError(str(e)) from None
    raise ImportCommandError('no shares.N files in %s or %s' % tuple(candidates))


def import_shares(directory, net, datadir) -> tuple[str, Any, str, int, int]:
    """Import into the store of `datadir`/NET: (share directory, ImportReport, store path, shares held
    before, shares held after)."""
    from p2pool.store.import_shares import ShareImportError, import_into
    from p2pool.sharechain.share import Share
    from p2pool.store.sharestore import ShareStore, StoreError

    share_directory = find_share_directory(directory, net)
    node_directory = config.datadir_for(datadir, net)
    store_path = os.path.join(node_directory, STORE_NAME)
    try:
        lock = lock_datadir(node_directory)
    except DataDirInUse as e:
        raise ImportCommandError(str(e), EXIT_REFUSED) from None
    except OSError as e:
        raise ImportCommandError('cannot use the data directory %s: %s' % (node_directory, e), EXIT_REFUSED) from None
    try:
        with lock, ShareStore(store_path) as store:
            held_before = store.count_shares()
            report = import_into(store, share_directory, lambda raw: Share.from_wire(net, raw),
                                 added_at=time.time())
            held_after = store.count_shares()
    except (OSError, StoreError) as e:
        raise ImportCommandError('cannot write the share store %s: %s' % (store_path, e), EXIT_REFUSED) from None
    except ShareImportError as e:
        raise ImportCommandError(str(e)) from None
    if report.shares == 0 and report.malformed + report.unknown_type + report.unparsable:
        raise ImportCommandError('no readable share in the shares.N files of %s (%d malformed lines, %d of an '
                                 'unknown type, %d shares that do not decode for network %s)'
                                 % (share_directory, report.malformed, report.unknown_type,
                                    report.unparsable, net.NAME))
    return share_directory, report, store_path, held_before, held_after


def summary(share_directory, report, store_path, held_before, held_after) -> str:
    """The one line printed after a successful import."""
    text = ('imported %d shares (%d new) and %d verified marks from %d files in %s into %s (%d shares stored)'
            % (report.shares, held_after - held_before, report.marked, report.files, share_directory,
               store_path, held_after))
    if report.skipped or report.duplicates or report.unreadable_files:
        text += ('; skipped %d lines (%d malformed, %d unknown type, %d undecodable, %d obsolete, %d legacy), '
                 '%d duplicates, %d unreadable files'
                 % (report.skipped, report.malformed, report.unknown_type, report.unparsable, report.obsolete,
                    report.legacy, report.duplicates, report.unreadable_files))
    return text


def main(argv) -> int | str | None:
    """Entry point of `p2pool import-shares`; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:
        return e.code
    # the importer's per-line warnings (first few bad lines) go to stderr; the summary is ours
    logging.basicConfig(level=logging.WARNING, format='p2pool import-shares: %(message)s', stream=sys.stderr)
    try:
        net = config.load_network(args.net)
    except config.NetworkConfigError as e:
        return _fail(str(e), EXIT_BAD_INPUT)
    try:
        result = import_shares(args.directory, net, args.datadir or cli.DEFAULT_DATADIR)
    except ImportCommandError as e:
        return _fail(str(e), e.exit_status)
    print(summary(*result))
    return 0


def _fail(message, status):
    print('p2pool import-shares: %s' % message, file=sys.stderr)
    return status
