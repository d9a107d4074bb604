"""One node per data directory: an exclusive lock on DATADIR/NET/lock.

The running node holds it for its whole life; `p2pool import-shares` takes it
for the duration of an import. The kernel drops the lock when the process ends,
also after kill -9, so a stale lock file never blocks a restart.
"""
import os
from typing import IO

try:
    import fcntl
except ImportError:  # no POSIX locks (Windows): nothing is locked
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = 'lock'


class DataDirInUse(Exception):
    """Another process holds the data directory."""


def lock_datadir(directory) -> IO[str]:
    """Take the lock of `directory` (created if needed); returns the open lock file, to keep
    until the end (closing it releases the lock). Raises DataDirInUse."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, LOCK_NAME)
    handle = open(path, 'a+')
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise DataDirInUse('%s is in use by another p2pool process (a running node?): stop it first'
                               % directory) from None
    handle.seek(0)
    handle.truncate()
    handle.write('%d\n' % os.getpid())
    handle.flush()
    return handle
