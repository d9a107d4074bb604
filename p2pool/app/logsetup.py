"""Logging of the node: the console and DATADIR/NET/log, reopened on SIGUSR1.

Every message is one line: control characters in it are escaped (p2pool.util.untrusted), a
backstop behind the rooms' own `shown()` of what peers and miners send, so that no text from
outside can forge a line or drive the terminal. Tracebacks keep their lines.

Log rotation tools (logrotate's `postrotate kill -USR1`) move the file away and
signal the node, which then writes to a fresh file of the same name. Twisted's
own log messages are routed into the same handlers.
"""
import logging
import signal
import sys
from typing import Any

from p2pool.util.untrusted import escape_controls

FORMAT = '%(asctime)s %(message)s'
DEBUG_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'


class OneLineFormatter(logging.Formatter):
    """A Formatter whose messages (not their tracebacks) have their control characters escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class ReopenableFileHandler(logging.FileHandler):
    """A FileHandler whose file can be closed and reopened (after rotation)."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def setup_logging(logfile, debug=False, console=sys.stdout) -> Any:
    """Console and file logging; returns the file handler (reopen() on SIGUSR1 is installed)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    formatter = OneLineFormatter(DEBUG_FORMAT if debug else FORMAT, '%Y-%m-%d %H:%M:%S')
    stream = logging.StreamHandler(console)
    stream.setFormatter(formatter)
    root.addHandler(stream)
    file_handler = None
    if logfile:
        file_handler = ReopenableFileHandler(logfile, encoding='utf-8')
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
        if hasattr(signal, 'SIGUSR1'):
            signal.signal(signal.SIGUSR1, lambda signum, frame: file_handler.reopen())
    # Twisted's own chatter ("Starting factory", HTTP access lines) only with --debug
    logging.getLogger('twisted').setLevel(logging.DEBUG if debug else logging.WARNING)
    _route_twisted_logs()
    return file_handler


def _route_twisted_logs() -> None:
    """Twisted logs through the standard logging module (no second format, no stderr noise)."""
    from twisted.logger import STDLibLogObserver, globalLogBeginner
    observer: Any = STDLibLogObserver(name='twisted')   # an ILogObserver through zope.interface
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
