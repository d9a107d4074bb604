"""Takeover: a new node process takes the sockets of the running one, and the miners stay connected.

The running node listens on DATADIR/NET/takeover.sock (a SOCK_SEQPACKET Unix socket,
mode 0600, only the same user's processes accepted). `p2pool --takeover` with the same
data directory connects to it and the two speak in JSON messages (type byte b'J'),
state chunks (b'B') and file descriptors passed with SCM_RIGHTS:

    new -> old  hello {version}                 old -> new  ready {pid}  (or refused {reason})
      ... the new process checks bitcoind, loads the store ...
    new -> old  freeze                          the old one stops reading its miner connections
                                                and listening sockets, flushes the store, then sends
    old -> new  sockets {lock, worker, p2p, families} + [lock, worker, p2p fds]
    old -> new  connections {first, count} + their fds      (in groups of FDS_PER_MESSAGE)
    old -> new  B... chunks of the JSON state (work.handover), then end {size}
      ... the new process builds its rooms around the listening sockets ...
    new -> old  taken                           old -> new  bye, and the old process flushes and exits
      ... the new process adopts the miner connections and reads on.

Bytes a miner sent that the old process had read but not parsed, and bytes it had
queued but not written, travel with the connection's state. Until `taken`, nothing
is lost if the new process fails: on a closed socket, an `abort` or FREEZE_TIMEOUT
seconds without `taken`, the old process reads on as before. The old process never
shuts down a socket it handed over (it only closes its copies), so the TCP connections
live on in the new one. P2P peers are disconnected by the old process and reconnect
to the same port, now served by the new one.
"""
import array
import json
import logging
import os
import socket
import struct
from typing import Any

log = logging.getLogger(__name__)

SOCKET_NAME = 'takeover.sock'
VERSION = 1
FREEZE_TIMEOUT = 20.0
REPLY_TIMEOUT = 15.0
CHUNK = 32 * 1024
FDS_PER_MESSAGE = 200
MAX_MESSAGE = 64 * 1024
HOLD_VARIABLE = 'P2POOL_TAKEOVER_HOLD'   # seconds the new process waits holding the sockets (tests of kill -9)


class TakeoverError(Exception):
    """The takeover cannot go on; the message is one line for the operator."""


def socket_path(datadir: str) -> str:
    return os.path.join(datadir, SOCKET_NAME)


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] = ()) -> None:  # type: ignore[assignment]
    payload = b'J' + json.dumps(message, separators=(',', ':')).encode()
    if fds:
        sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))])
    else:
        sock.sendall(payload)


def receive(sock: socket.socket) -> tuple[bytes, Any, list[int]]:
    """(kind, body, fds): kind b'J' with a dict, b'B' with bytes, b'' at the end of the connection."""
    fds: list[int] = []
    data, ancillary, _flags, _addr = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(FDS_PER_MESSAGE * 4))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(array.array('i', payload[:len(payload) - len(payload) % 4]))
    if not data:
        return b'', None, fds
    if data[:1] == b'J':
        try:
            return b'J', json.loads(data[1:]), fds
        except ValueError:
            raise TakeoverError('the other p2pool process sent a malformed message') from None
    return data[:1], data[1:], fds


def peer_uid(sock: socket.socket) -> int | None:
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i'))
    except (AttributeError, OSError):
        return None
    return int(struct.unpack('3i', creds)[1])


def sd_notify(text: str) -> None:
    """Tell systemd (Type=notify, NotifyAccess=all) about us, when it started us; else nothing."""
    address = os.environ.get('NOTIFY_SOCKET')
    if not address:
        return
    if address.startswith('@'):
        address = '\0' + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(text.encode(), address)
    except OSError as e:
        log.debug('cannot notify systemd: %s', e)


class Handover:
    """What the new process received: the lock, the listening sockets and the miner connections."""

    def __init__(self, lock_fd: int, worker_fd: int, p2p_fd: int | None, families: dict[str, int],
                 connection_fds: list[int], state: dict[str, Any], old_pid: int):
        self.lock_fd, self.worker_fd, self.p2p_fd, self.families = lock_fd, worker_fd, p2p_fd, families
        self.connection_fds, self.state, self.old_pid = connection_fds, state, old_pid

    def close(self) -> None:
        """Close every descriptor not taken over yet (they stay open in the old process)."""
        for fd in [self.lock_fd, self.worker_fd, self.p2p_fd] + self.connection_fds:
            if fd is not None and fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.connection_fds = []
        self.lock_fd = self.worker_fd = -1
        self.p2p_fd = None


class TakeoverClient:
    """The new process's side; blocking calls, made before the new process serves anything."""

    def __init__(self, datadir: str):
        self.path = socket_path(datadir)
        self.sock: socket.socket | None = None
        self.old_pid: int | None = None

    def connect(self) -> int:
        """Say hello; returns the running node's pid. Raises TakeoverError."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.settimeout(REPLY_TIMEOUT)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            raise TakeoverError('no running node to take over at %s (%s)' % (self.path, e.strerror or e)) from None
        self.sock = sock
        self._send({'op': 'hello', 'version': VERSION, 'pid': os.getpid()})
        reply = self._expect('ready')
        self.old_pid = int(reply['pid'])
        return self.old_pid

    def _send(self, message: dict[str, Any]) -> None:
        assert self.sock is not None
        try:
            send(self.sock, message)
        except OSError as e:
            raise TakeoverError('the running node closed the takeover connection (%s)' % e) from None

    def _receive(self) -> tuple[bytes, Any, list[int]]:
        assert self.sock is not None
        try:
            kind, body, fds = receive(self.sock)
        except (OSError, socket.timeout) as e:
            raise TakeoverError('no answer from the running node (%s)' % (e or type(e).__name__)) from None
        if kind == b'':
            raise TakeoverError('the running node closed the takeover connection')
        return kind, body, fds

    def _expect(self, op: str) -> dict[str, Any]:
        kind, body, fds = self._receive()
        for fd in fds:
            os.close(fd)
        if kind != b'J' or not isinstance(body, dict):
            raise TakeoverError('unexpected message from the running node')
        if body.get('op') == 'refused':
            raise TakeoverError('the running node refused the takeover: %s' % body.get('reason'))
        if body.get('op') != op:
            raise TakeoverError('the running node answered %r instead of %r' % (body.get('op'), op))
        return body

    def take(self) -> Handover:
        """Freeze the old process and receive its sockets and state."""
        self._send({'op': 'freeze'})
        kind, header, fds = self._receive()
        if kind != b'J' or not isinstance(header, dict) or header.get('op') != 'sockets' or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            if isinstance(header, dict) and header.get('op') == 'refused':
                raise TakeoverError('the running node refused the takeover: %s' % header.get('reason'))
            raise TakeoverError('the running node did not send its sockets')
        handover = Handover(fds[0], fds[1], fds[2] if header.get('p2p') else None,
                            dict(header.get('families') or {}), [], {}, int(self.old_pid or 0))
        if handover.p2p_fd is None:
            os.close(fds[2])
        blob = []
        try:
            while True:
                kind, body, fds = self._receive()
                if kind == b'B':
                    blob.append(body)
                    continue
                if kind != b'J' or not isinstance(body, dict):
                    raise TakeoverError('unexpected message from the running node')
                if body.get('op') == 'connections':
                    handover.connection_fds.extend(fds)
                elif body.get('op') == 'end':
                    break
                else:
                    raise TakeoverError('unexpected %r from the running node' % body.get('op'))
            state = json.loads(b''.join(blob))
            if len(state.get('connections', [])) != len(handover.connection_fds):
                raise TakeoverError('the running node sent %d connections for %d states'
                                    % (len(handover.connection_fds), len(state.get('connections', []))))
        except (ValueError, TakeoverError) as e:
            handover.close()
            raise TakeoverError(str(e) if isinstance(e, TakeoverError) else 'malformed state: %s' % e) from None
        handover.state = state
        return handover

    def commit(self) -> None:
        """`taken`, then the old process's `bye`: from here on the sockets are ours alone."""
        self._send({'op': 'taken'})
        self._expect('bye')

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
