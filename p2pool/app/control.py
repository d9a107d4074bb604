"""The control socket `DATADIR/NET/control.sock` of a running node, and its console.

Protocol: the client connects, sends one command line (UTF-8, at most MAX_LINE bytes,
ended by a newline), and receives one JSON object `{"exit": STATUS, "text": TEXT}`
followed by a newline; then the node closes the connection. The socket file is made
owner-only (mode 0600) and replaced at start if a dead node left it behind.

When the node's standard input is a terminal, the same command lines typed there are
answered on the console (ConsoleReader).
"""
import json
import logging
import os
import sys
from typing import Any, Callable

from twisted.internet import protocol
from twisted.protocols.basic import LineOnlyReceiver

log = logging.getLogger(__name__)

SOCKET_NAME = 'control.sock'
MAX_LINE = 4096
#: a client that sends nothing for this long is dropped
IDLE_TIMEOUT = 30.0

Runner = Callable[[str], tuple[int, str]]


def encode_answer(status: int, text: str) -> bytes:
    return json.dumps({'exit': status, 'text': text}).encode() + b'\n'


class ControlProtocol(LineOnlyReceiver):
    delimiter = b'\n'
    MAX_LENGTH = MAX_LINE

    def __init__(self, run: Runner, reactor: Any) -> None:
        self.run, self.reactor = run, reactor
        self._timer: Any = None

    def _transport(self) -> Any:
        return self.transport

    def _answer(self, status: int, text: str) -> None:
        transport = self._transport()
        transport.write(encode_answer(status, text))
        transport.loseConnection()

    def connectionMade(self) -> None:
        self._timer = self.reactor.callLater(IDLE_TIMEOUT, self._transport().loseConnection)

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    def lineReceived(self, line: bytes) -> None:
        text = line.decode('utf-8', 'replace').strip()
        try:
            status, answer = self.run(text)
        except Exception:    # one broken command must not take the socket down
            log.exception('control command %r failed', text[:80])
            status, answer = 1, 'the command failed inside the node; see its log'
        self._answer(status, answer)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._answer(2, 'command line longer than %d bytes' % MAX_LINE)


class ControlFactory(protocol.Factory):
    noisy = False

    def __init__(self, run: Runner, reactor: Any) -> None:
        self.run, self.reactor = run, reactor

    def buildProtocol(self, addr: Any) -> ControlProtocol:
        return ControlProtocol(self.run, self.reactor)


def socket_path(datadir: str) -> str:
    return os.path.join(datadir, SOCKET_NAME)


def listen_control(datadir: str, run: Runner, reactor: Any) -> Any:
    """Listen on DATADIR/NET/control.sock (owner-only); returns the listening port.

    The data directory is locked by this node, so a socket file there is a dead node's."""
    path = socket_path(datadir)
    if os.path.exists(path):
        os.remove(path)
    old_umask = os.umask(0o177)
    try:
        port = reactor.listenUNIX(path, ControlFactory(run, reactor), mode=0o600, wantPID=False)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return port


class ConsoleReader:
    """Command lines typed on the node's terminal (stdin), answered on stdout."""

    def __init__(self, run: Runner, reactor: Any, write: Callable[[str], None] | None = None, fd: int = 0) -> None:
        self.run, self.reactor, self.fd = run, reactor, fd
        self.write = write if write is not None else (lambda text: print(text, flush=True))
        self._buffer = b''

    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:
        return 'console'

    def doRead(self) -> None:
        try:
            data = os.read(self.fd, 4096)
        except OSError:
            data = b''
        if not data:
            self.connectionLost(None)
            return
        self._buffer += data
        while b'\n' in self._buffer:
            line, self._buffer = self._buffer.split(b'\n', 1)
            text = line.decode('utf-8', 'replace').strip()
            if text:
                try:
                    _status, answer = self.run(text)
                except Exception:
                    log.exception('console command %r failed', text[:80])
                    continue
                self.write(answer)
        if len(self._buffer) > MAX_LINE:
            self._buffer = b''

    def start(self) -> None:
        self.reactor.addReader(self)

    def connectionLost(self, reason: Any) -> None:
        self.reactor.removeReader(self)

    @staticmethod
    def wanted() -> bool:
        try:
            return sys.stdin is not None and os.isatty(sys.stdin.fileno())
        except (OSError, ValueError):
            return False
