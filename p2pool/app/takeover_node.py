"""The node's two sides of a takeover (the protocol is in p2pool.app.takeover).

TakeoverServer runs in every node: it listens on DATADIR/NET/takeover.sock and, when a
new process asks, freezes this node's miner connections and listening sockets, hands
them over and either exits (`taken`) or reads on (anything else). `adopt_connections`
is the new process's side: it turns the received descriptors back into Stratum
connections with their sessions and jobs.
"""
import json
import logging
import os
import socket
from typing import Any

from twisted.internet import protocol as tw_protocol
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from p2pool.app.takeover import (CHUNK, FDS_PER_MESSAGE, FREEZE_TIMEOUT, VERSION, TakeoverError, peer_uid, receive,
                                 send, socket_path)

log = logging.getLogger(__name__)


@implementer(IReadDescriptor)
class _Reader:
    """A raw socket in the reactor: calls `on_readable` when it can be read."""

    def __init__(self, sock: socket.socket, on_readable: Any, name: str):
        self.sock, self.on_readable, self.name = sock, on_readable, name

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:
        self.on_readable()

    def connectionLost(self, reason: Any) -> None:
        self.sock.close()

    def logPrefix(self) -> str:
        return self.name


class _Frozen:
    """What a freeze stopped, to start it again or to let it go."""

    def __init__(self, connections: list[Any], ports: list[Any]):
        self.connections, self.ports = connections, ports


class TakeoverServer:
    """The running node's side: `runner` is the NodeRunner (stratum, worker_port, p2p_node, store ...)."""

    def __init__(self, runner: Any, reactor: Any):
        self.runner, self.reactor = runner, reactor
        self.path = socket_path(runner.datadir)
        self.listener: _Reader | None = None
        self.peer: _Reader | None = None
        self.frozen: _Frozen | None = None
        self._timer: Any = None
        self.handed_over: list[Any] = []     # transports given away: kept, never closed by us

    def start(self) -> None:
        try:
            os.unlink(self.path)          # a leftover of a killed node: we hold the data directory's lock
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old_mask = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old_mask)
        os.chmod(self.path, 0o600)
        sock.listen(1)
        sock.setblocking(False)
        self.listener = _Reader(sock, self._accept, 'takeover')
        self.reactor.addReader(self.listener)

    def stop(self) -> None:
        for reader in (self.peer, self.listener):
            if reader is not None:
                self.reactor.removeReader(reader)
                reader.sock.close()
        self.peer = self.listener = None
        if not self.runner.handed_over:      # else the path is the new process's socket
            try:
                os.unlink(self.path)
            except OSError:
                pass

    # --- the conversation ------------------------------------------------------------

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.sock.accept()
        except OSError:
            return
        if peer_uid(sock) not in (None, os.getuid()) or self.peer is not None or self.runner.stopped:
            try:
                send(sock, {'op': 'refused', 'reason': 'another takeover is under way' if self.peer is not None
                            else 'not the same user' if peer_uid(sock) != os.getuid() else 'the node is stopping'})
            except OSError:
                pass
            sock.close()
            return
        sock.settimeout(10.0)
        self.peer = _Reader(sock, self._readable, 'takeover-peer')
        self.reactor.addReader(self.peer)

    def _readable(self) -> None:
        assert self.peer is not None
        try:
            kind, body, fds = receive(self.peer.sock)
        except (OSError, TakeoverError) as e:
            kind, body, fds = b'', None, []
            log.info('takeover connection failed: %s', e)
        for fd in fds:
            os.close(fd)
        op = body.get('op') if kind == b'J' and isinstance(body, dict) else None
        try:
            if op == 'hello' and body.get('version') == VERSION and self.frozen is None:
                log.info('process %s asks to take over this node', body.get('pid'))
                send(self.peer.sock, {'op': 'ready', 'pid': os.getpid()})
            elif op == 'hello':
                send(self.peer.sock, {'op': 'refused', 'reason': 'takeover protocol %s, not %s'
                                      % (VERSION, body.get('version'))})
            elif op == 'freeze' and self.frozen is None:
                self._freeze_and_send()
            elif op == 'taken' and self.frozen is not None:
                send(self.peer.sock, {'op': 'bye'})
                self._finish()
            else:
                self._end('the new process %s' % ('went away' if kind == b'' else 'sent %r' % (op,)))
        except OSError as e:
            self._end('the takeover connection failed: %s' % e)

    def _end(self, why: str) -> None:
        """The conversation is over without a takeover: read on as before."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.peer is not None:
            self.reactor.removeReader(self.peer)
            self.peer.sock.close()
            self.peer = None
        if self.frozen is not None:
            frozen, self.frozen = self.frozen, None
            for connection in frozen.connections:
                if connection.connected and not connection.transport.disconnecting:
                    connection.transport.startReading()
            for port in frozen.ports:
                port.startReading()
            self._relisten_control()
            log.warning('takeover abandoned (%s); this node keeps serving its %d miners',
                        why, len(frozen.connections))

    def _relisten_control(self) -> None:
        if self.runner.control_port is None and self.runner.control_run is not None:
            self.runner.listen_control()

    # --- the hand-over -------------------------------------------------------------------

    def _freeze_and_send(self) -> None:
        from p2pool.work.handover import export_connections
        runner = self.runner
        stratum = runner.stratum
        connections = [c for c in list(stratum.connections)
                       if c.connected and not c.transport.disconnecting and c.transport.fileno() >= 0]
        p2p_port = runner.p2p_node.listener if runner.p2p_node is not None else None
        ports = [port for port in (runner.worker_port, p2p_port) if port is not None]
        for connection in connections:
            connection.transport.stopReading()
        for port in ports:
            port.stopReading()
        self.frozen = _Frozen(connections, ports)
        if runner.control_port is not None:     # its socket file is the new process's to create
            runner.control_port.stopListening()
            runner.control_port = None
        self._timer = self.reactor.callLater(FREEZE_TIMEOUT, self._end, 'no word from the new process in %d s'
                                             % FREEZE_TIMEOUT)
        log.info('handing %d miner connections over to the new process', len(connections))
        try:      # the new process reads the sessions closed meanwhile; it has loaded the rest already
            runner.sessions.flush()
        except Exception as e:
            log.warning('saving the Stratum sessions before the takeover failed: %s', e)
        state = export_connections(stratum, connections)
        for connection, entry in zip(connections, state['connections']):
            transport = connection.transport
            entry['family'] = int(transport.socket.family)
            entry['pending_in'] = connection._buffer.hex()
            entry['pending_out'] = (bytes(transport.dataBuffer[transport.offset:])
                                    + b''.join(transport._tempDataBuffer)).hex()
        sock = self.peer.sock if self.peer is not None else None
        assert sock is not None
        lock = runner.datadir_lock
        families = {'worker': int(runner.worker_port.socket.family)}
        if p2p_port is not None:
            families['p2p'] = int(p2p_port.socket.family)
        send(sock, {'op': 'sockets', 'p2p': p2p_port is not None, 'families': families},
             [lock.fileno(), runner.worker_port.fileno(), (p2p_port or runner.worker_port).fileno()])
        fds = [connection.transport.fileno() for connection in connections]
        for first in range(0, len(fds), FDS_PER_MESSAGE):
            group = fds[first:first + FDS_PER_MESSAGE]
            send(sock, {'op': 'connections', 'first': first, 'count': len(group)}, group)
        blob = json.dumps(state, separators=(',', ':')).encode()
        for offset in range(0, len(blob), CHUNK):
            sock.sendall(b'B' + blob[offset:offset + CHUNK])
        send(sock, {'op': 'end', 'size': len(blob)})

    def _finish(self) -> None:
        """The new process has everything: let go of the sockets without closing them, then stop."""
        frozen, self.frozen = self.frozen, None
        assert frozen is not None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        stratum = self.runner.stratum
        for connection in frozen.connections:
            transport = connection.transport
            transport.stopReading()
            transport.stopWriting()
            transport._shouldShutdown = False
            stratum.connections.discard(connection)
            connection.setTimeout(None)
            connection._cancel_slow_timer()
            if connection.session is not None:
                stratum.sessions.live.discard(connection.session.session_id)
            self.handed_over.append(transport)
        for port in frozen.ports:
            port._shouldShutdown = False      # closing our copy must not shut the new process's socket down
        self.runner.handed_over = True
        log.info('the new process has taken over; this one stops')
        self.reactor.callLater(0, self.reactor.stop)


class _Adopting(tw_protocol.Factory):
    """Hands one prepared protocol to reactor.adoptStreamConnection."""

    def __init__(self, prepared: Any):
        self.prepared = prepared

    def buildProtocol(self, addr: Any) -> Any:
        self.prepared.addr = addr
        return self.prepared


def adopt_connections(reactor: Any, stratum: Any, state: dict[str, Any], fds: list[int]) -> int:
    """The handed-over miner connections, served by `stratum` from now on; returns how many."""
    from p2pool.work.handover import restore_bases, restore_connection
    from p2pool.work.stratum import StratumProtocol
    bases = restore_bases(stratum.bridge, state.get('bases') or {})
    adopted = 0
    for entry, fd in zip(state.get('connections') or [], fds):
        try:
            prepared = StratumProtocol(stratum, None)
            restore_connection(prepared, entry, bases)
            reactor.adoptStreamConnection(fd, int(entry.get('family', socket.AF_INET)), _Adopting(prepared))
        except Exception:
            log.exception('a handed-over miner connection could not be adopted')
            continue
        finally:
            os.close(fd)
        if entry.get('connected_at') is not None:
            prepared.connected_at = entry['connected_at']
        if prepared.username is not None:
            prepared.setTimeout(stratum.idle_timeout)
        pending_out = bytes.fromhex(entry.get('pending_out') or '')
        transport: Any = prepared.transport
        if pending_out:
            transport.write(pending_out)
        pending_in = bytes.fromhex(entry.get('pending_in') or '')
        if pending_in:
            prepared.dataReceived(pending_in)
        adopted += 1
    return adopted


# --- the new process -------------------------------------------------------------------------

def take_over(runner: Any) -> None:
    """Freeze the running node, take its sockets into the rooms `runner` has built, `taken`, then
    the miner connections (raises TakeoverError with the reason; until `taken` the old node can
    read on, and does when this process goes away)."""
    from p2pool.app.takeover import HOLD_VARIABLE, sd_notify
    from p2pool.work.switch import worker_port_factory
    handover = runner.handover = runner.takeover_client.take()
    log.info('received the sockets and %d miner connections of process %d', len(handover.connection_fds),
             handover.old_pid)
    reactor = runner.reactor
    if handover.p2p_fd is not None:
        runner.p2p_node.adopt_listener(handover.p2p_fd, handover.families['p2p'])
        os.close(handover.p2p_fd)
        handover.p2p_fd = None
    factory = worker_port_factory(runner.web_root, runner.stratum, reactor=reactor,
                                  max_connections=runner.max_miner_conns,
                                  max_per_address=runner.max_miner_conns_per_address)
    runner.worker_port = reactor.adoptStreamPort(handover.worker_fd, handover.families['worker'], factory)
    os.close(handover.worker_fd)
    handover.worker_fd = -1
    hold = float(os.environ.get(HOLD_VARIABLE) or 0)
    if hold > 0:
        import time
        time.sleep(hold)      # blocking on purpose: a test kills this process while it holds the sockets
    runner.takeover_client.commit()
    sd_notify('MAINPID=%d' % os.getpid())      # before the old process exits, or systemd would stop the service
    lock = runner.datadir_lock = os.fdopen(handover.lock_fd, 'a+')
    handover.lock_fd = -1
    lock.seek(0)
    lock.truncate()
    lock.write('%d\n' % os.getpid())
    lock.flush()
    runner.sessions.load()        # the ones the old process closed since we loaded them
    fds, handover.connection_fds = handover.connection_fds, []
    adopted = adopt_connections(reactor, runner.stratum, handover.state, fds)
    log.info('took over from process %d: %d miner connections kept', handover.old_pid, adopted)
    runner.handover = None
    runner.takeover_client.close()
    runner.write_ready_flag()
    runner.listen_control()


def start_takeover_server(runner: Any) -> TakeoverServer | None:
    server = TakeoverServer(runner, runner.reactor)
    try:
        server.start()
    except OSError as e:
        log.warning('no takeover socket (%s): this node cannot be taken over', e)
        return None
    from p2pool.app.takeover import sd_notify
    sd_notify('READY=1')
    return server
