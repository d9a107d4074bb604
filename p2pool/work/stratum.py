"""Stratum v1 server (worker.md §7) with [jt] vardiff and version rolling.

Newline-delimited JSON-RPC. Supported methods: mining.subscribe, mining.authorize,
mining.submit (with the optional version_bits), mining.configure (version-rolling
with mask 0x1fffe000, minimum-difficulty, subscribe-extranonce),
mining.suggest_difficulty and mining.extranonce.subscribe; anything else gets -32601.

Coinbase nonce split. The spec's server answers subscribe with an empty extranonce1
and extranonce2 size 4 and puts a 4-byte bridge counter at the end of coinb1 for
every job. Here each connection instead reserves one such 4-byte value for its whole
life (WorkBridge.reserve_extranonce1) and announces it as its extranonce1, with
extranonce2 size 4. A miner builds `coinb1 || extranonce1 || extranonce2 || coinb2`,
which is byte for byte the spec's `(coinb1 || counter) || extranonce2 || coinb2`:
the 8-byte last_txout_nonce is still `u64_le(prefix4 || extranonce2)`, but every
connection now has a distinct extranonce1, many connections share one generated
gentx, and no two connections (or getwork requests) ever hash the same coinbase.

Per connection: vardiff toward one pseudoshare every `share_rate` seconds (§4.3),
with a grace window accepting the previous difficulty for a few seconds after a
change (and each job keeps the difficulty it was issued with); jobs expire after
300 s; duplicate headers are refused. A valid pseudoshare of a job that newer work
replaced less than STALE_GRACE_SECONDS ago is still answered true (and counted as
dead work), and clean_jobs is true only when the parent block changed. Errors use the customary Stratum codes:
20 other (bad extranonce2 size, ntime out of range, bad version bits), 21 job not
found, 22 duplicate, 23 low difficulty, 24 unauthorized, 25 not subscribed; bad JSON
gets -32700, bad parameters -32602. Lines above MAX_LINE bytes, connections that do
not subscribe and authorize within the handshake timeout, idle ones, clients that
stop reading, and clients sending too many bad messages are disconnected.
"""
import gc
import itertools
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import protocol
from twisted.internet.interfaces import IPushProducer
from twisted.protocols.basic import LineOnlyReceiver
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from p2pool.bitcoin.data import difficulty_to_target
from p2pool.util.untrusted import shown
from p2pool.work import jsonrpc
from p2pool.work.bridge import WorkRefused, WorkUnavailable, ntime_acceptable
from p2pool.work.jobs import JOB_LIFETIME, MAX_JOBS, STALE_GRACE_SECONDS, Job, prune, superseded
from p2pool.work.notify import Fanout, direct_sender, notify_bytes, write_now
from p2pool.work.sessions import SessionBook, restore_vardiff, vardiff_state
from p2pool.work.targets import Vardiff
from p2pool.work.username import parse_username

log = logging.getLogger(__name__)

__all__ = ['JOB_LIFETIME', 'MAX_JOBS', 'STALE_GRACE_SECONDS', 'Job', 'StratumFactory', 'StratumProtocol']

MAX_LINE = 16 * 1024
HANDSHAKE_TIMEOUT = 20.0   # from the first byte to both mining.subscribe and mining.authorize
IDLE_TIMEOUT = 1800.0
SLOW_READER_TIMEOUT = 30.0
MAX_BAD_MESSAGES = 20
VERSION_ROLLING_MASK = 0x1fffe000
#: how often a new-work event also drops the jobs over JOB_LIFETIME (a submission on one is refused anyway)
PRUNE_INTERVAL = 30.0


def _error(code, message):
    return jsonrpc.JsonRpcError(code, message)


def _hex_u32(text, name):
    """The big-endian value of 8 hex digits (int() alone would take signs, spaces and '0x')."""
    if len(text) != 8:
        raise _error(jsonrpc.STRATUM_OTHER, '%s must be 8 hex digits' % name)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b''
    if len(raw) != 4:
        raise _error(jsonrpc.STRATUM_OTHER, '%s is not hex' % name)
    return int.from_bytes(raw, 'big')


def _difficulty(value, name):
    """A miner's difficulty as a positive finite float, or an invalid-params error: NaN, infinities
    (JSON 1e999), zero, negatives and integers too large for a float are bad input. Tiny and huge
    values are fine: difficulty_to_target and the vardiff clamp them to the valid targets."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise jsonrpc.invalid_params('%s must be a positive number' % name)
    try:
        value = float(value)
    except OverflowError:
        raise jsonrpc.invalid_params('%s is too large' % name) from None
    if not (math.isfinite(value) and value > 0):
        raise jsonrpc.invalid_params('%s must be a positive finite number' % name)
    return value


@implementer(IPushProducer)
class StratumProtocol(LineOnlyReceiver, TimeoutMixin):
    delimiter = b'\n'
    MAX_LENGTH = MAX_LINE
    # set by Twisted before connectionMade; the protocol never runs without one
    transport: Any

    def __init__(self, factory, addr) -> None:
        self.factory, self.addr = factory, addr
        self.bridge = factory.bridge
        self.sessions = factory.sessions
        self.extranonce1 = self.sessions.new_extranonce1(self.bridge.reserve_extranonce1)
        self.session = None          # work.sessions.StratumSession from mining.subscribe on
        self.subscribed = False
        self.username = None
        self.connected_at = None
        self.vardiff = Vardiff(factory.share_rate, factory.net.PARENT.SANE_TARGET_RANGE)
        self.version_mask = None
        self.jobs: dict[str, Any] = {}     # job id -> jobs.Job, oldest first
        self.last_block: int | None = None     # the parent block of the newest job (clean_jobs when it changes)
        self.direct_send: Callable[[bytes], int] | None = None    # notify.direct_sender, from connectionMade on
        self.bad_messages = 0
        self._slow_timer = None
        self.callLater = factory.reactor.callLater  # type: ignore[method-assign]  # TimeoutMixin's clock

    # --- connection life --------------------------------------------------------

    def connectionMade(self) -> None:
        self.connected_at = self.factory.clock()     # `p2pool ctl workers`
        self.factory.connections.add(self)
        self.direct_send = direct_sender(self.transport)
        self.transport.registerProducer(self, True)
        self.setTimeout(self.factory.handshake_timeout)

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self.connected = 0
        self.factory.connections.discard(self)
        if self.session is not None:
            self.save_session()
            self.sessions.close(self.session)
        self.setTimeout(None)
        self._cancel_slow_timer()

    def timeoutConnection(self) -> None:
        if self.subscribed and self.username is not None:
            log.info('Stratum client %s: idle timeout', self._peer())
        else:   # debug: a flood of never-authorized connections must not flood the log
            log.debug('Stratum client %s: no subscribe and authorize within %s s', self._peer(),
                      self.factory.handshake_timeout)
        self.transport.abortConnection()

    def pauseProducing(self) -> None:
        if self._slow_timer is None:
            self._slow_timer = self.callLater(self.factory.slow_reader_timeout, self._too_slow)

    def resumeProducing(self) -> None:
        self._cancel_slow_timer()

    def stopProducing(self) -> None:
        self._cancel_slow_timer()

    def _too_slow(self) -> None:
        self._slow_timer = None
        log.info('Stratum client %s does not read its messages; disconnecting', self._peer())
        self.transport.abortConnection()

    def _cancel_slow_timer(self) -> None:
        if self._slow_timer is not None and self._slow_timer.active():
            self._slow_timer.cancel()
        self._slow_timer = None

    def _peer(self) -> str:
        return '%s:%s' % (getattr(self.addr, 'host', '?'), getattr(self.addr, 'port', '?'))

    def lineLengthExceeded(self, line) -> None:
        self._write(jsonrpc.error_object(None, _error(jsonrpc.INVALID_REQUEST, 'line too long')))
        log.info('Stratum client %s sent a line over %d bytes; disconnecting', self._peer(), self.MAX_LENGTH)
        self.transport.loseConnection()

    # --- messages ---------------------------------------------------------------

    def _write(self, obj) -> None:
        self.transport.write(jsonrpc.encode(obj) + b'\n')

    def lineReceived(self, line) -> None:
        line = line.strip()
        if not line:
            return
        if self.subscribed and self.username is not None:
            self.resetTimeout()
        request_id = None
        try:
            obj = jsonrpc.decode_json(line)
            if jsonrpc.is_reply(obj):
                return   # an answer to one of our notifications: accepted and ignored
            request_id, method, params = jsonrpc.parse_request(obj)
            handler = self.METHODS.get(method)
            if handler is None:
                raise jsonrpc.method_not_found(method)
            result, after = handler(self, params)
        except jsonrpc.JsonRpcError as error:
            self._write(jsonrpc.error_object(request_id, error))
            after_error = getattr(error, 'after', None)
            if after_error is not None:
                after_error()
            if error.code in (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST, jsonrpc.INVALID_PARAMS,
                              jsonrpc.METHOD_NOT_FOUND):
                self.bad_messages += 1
                if self.bad_messages > self.factory.max_bad_messages:
                    log.info('Stratum client %s sent too many bad messages; disconnecting', self._peer())
                    self.transport.loseConnection()
            return
        except Exception:
            log.exception('Stratum request from %s failed', self._peer())
            self._write(jsonrpc.error_object(request_id, _error(jsonrpc.UNKNOWN_ERROR, 'Unknown error')))
            return
        self._write(jsonrpc.result_object(request_id, result))
        if after is not None:
            after()

    def _subscribe(self, params):
        """A second parameter naming a known session resumes it: same extranonce1 and vardiff state."""
        if self.session is None:
            session = self.sessions.resume(params[1] if isinstance(params, list) and len(params) > 1 else None)
            if session is not None:
                self.extranonce1 = session.extranonce1
                restore_vardiff(self.vardiff, session.state.get('vardiff', {}))
                log.debug('Stratum client %s resumed session %s', self._peer(), session.session_id)
            else:
                session = self.sessions.open(self.extranonce1)
            self.session = session
        if not self.subscribed and self.username is not None:
            self.setTimeout(self.factory.idle_timeout)   # authorized first: the handshake is done now
        self.subscribed = True
        return ([['mining.notify', self.session.session_id], self.extranonce1.hex(), 4],
                self.send_work if self.username is not None else None)

    def save_session(self) -> None:
        """Copy what a resumed connection gets back into the session."""
        if self.session is not None:
            self.sessions.update(self.session, {
                'vardiff': vardiff_state(self.vardiff), 'version_mask': self.version_mask,
                'worker': self.username.raw if self.username is not None else None})

    def _authorize(self, params):
        name = jsonrpc.param(params, 0, (str,), 'username')
        self.username = parse_username(name)
        self.vardiff.set_fixed(self.username.desired_pseudoshare_target)
        if self.subscribed:
            self.setTimeout(self.factory.idle_timeout)   # handshake done; until then the short timeout runs
        return True, self.send_work if self.subscribed else None

    def _configure(self, params):
        extensions = jsonrpc.param(params, 0, (list,), 'extensions')
        options = jsonrpc.param(params, 1, (dict,), 'extension parameters', default={}, required=False)
        result = {}
        for extension in extensions:
            if extension == 'version-rolling':
                mask_text = options.get('version-rolling.mask', 'ffffffff')
                try:
                    miner_mask = int(mask_text, 16)
                except (TypeError, ValueError):
                    raise jsonrpc.invalid_params('version-rolling.mask must be hex') from None
                self.version_mask = VERSION_ROLLING_MASK & miner_mask
                result['version-rolling'] = True
                result['version-rolling.mask'] = '%08x' % self.version_mask
            elif extension == 'minimum-difficulty':
                value = _difficulty(options.get('minimum-difficulty.value'), 'minimum-difficulty.value')
                self.vardiff.set_minimum_difficulty_target(difficulty_to_target(value / self._scrypt_factor()))
                result['minimum-difficulty'] = True
            elif extension == 'subscribe-extranonce':
                result['subscribe-extranonce'] = True   # our extranonce1 never changes
            else:
                log.debug('Stratum client %s asked for unsupported extension %s', self._peer(), shown(extension))
                result[str(extension)] = False
        return result, None

    def _suggest_difficulty(self, params):
        difficulty = _difficulty(jsonrpc.param(params, 0, (int, float), 'difficulty'), 'difficulty')
        self.vardiff.suggest(difficulty_to_target(difficulty / self._scrypt_factor()))
        ready = self.subscribed and self.username is not None and self.jobs
        return True, self.send_work if ready else None

    def _extranonce_subscribe(self, params):
        return True, None

    def _submit(self, params):
        if not self.subscribed:
            raise _error(jsonrpc.STRATUM_NOT_SUBSCRIBED, 'Not subscribed')
        if self.username is None:
            raise _error(jsonrpc.STRATUM_UNAUTHORIZED, 'Unauthorized worker')
        for index, name in enumerate(('worker name', 'job id', 'extranonce2', 'ntime', 'nonce')):
            jsonrpc.param(params, index, (str,), name)
        _, job_id, extranonce2_hex, ntime_hex, nonce_hex = params[:5]
        version_bits_hex = jsonrpc.param(params, 5, (str, type(None)), 'version bits', required=False)
        now = self.factory.clock()
        job = self.jobs.get(job_id)
        if job is None or now - job.issued > JOB_LIFETIME:
            raise _error(jsonrpc.STRATUM_JOB_NOT_FOUND, 'Job not found')
        try:
            extranonce2 = bytes.fromhex(extranonce2_hex)
        except ValueError:
            raise _error(jsonrpc.STRATUM_OTHER, 'extranonce2 is not hex') from None
        if len(extranonce2) != 4:
            raise _error(jsonrpc.STRATUM_OTHER, 'Incorrect size of extranonce2: %d bytes, expected 4'
                         % len(extranonce2))
        ntime = _hex_u32(ntime_hex, 'ntime')
        nonce = _hex_u32(nonce_hex, 'nonce')
        record = job.record
        if not ntime_acceptable(record.timestamp, ntime, now):
            raise _error(jsonrpc.STRATUM_OTHER, 'ntime out of range')
        version = record.version
        if version_bits_hex:
            version_bits = _hex_u32(version_bits_hex, 'version bits')
            if version_bits & ~VERSION_ROLLING_MASK:
                raise _error(jsonrpc.STRATUM_OTHER, 'Invalid version mask')
            version = (version & ~VERSION_ROLLING_MASK) | (version_bits & VERSION_ROLLING_MASK)
        nonce8 = self.extranonce1 + extranonce2
        header = {'version': version, 'previous_block': record.previous_block,
                  'merkle_root': job.base.merkle_root_for(nonce8), 'timestamp': ntime,
                  'bits': record.bits, 'nonce': nonce}
        result = job.base.solve(header, nonce8, self.vardiff.acceptance_target(job.target, now),
                                self.username.user)
        replaced = superseded(self.jobs, job_id, job)
        if replaced is None:
            replaced = now
        accepted = result.on_time or (result.pseudoshare == 'accepted' and now - replaced <= STALE_GRACE_SECONDS)
        # §4.3: every submission that reached the solution handler counts for vardiff
        after = self.send_work if self.vardiff.record_submission(now, record.min_share_target) else None
        if after is None:
            self.save_session()      # the vardiff's submission record changed
        error = None
        if result.pseudoshare == 'duplicate':
            error = _error(jsonrpc.STRATUM_DUPLICATE, 'Duplicate share')
        elif result.pseudoshare == 'low-difficulty' and not result.block:
            error = _error(jsonrpc.STRATUM_LOW_DIFFICULTY, 'Low difficulty share')
        if error is not None:
            error.after = after             # run after the error reply, as after a result
            raise error
        return accepted, after

    METHODS = {
        'mining.subscribe': _subscribe,
        'mining.authorize': _authorize,
        'mining.submit': _submit,
        'mining.configure': _configure,
        'mining.suggest_difficulty': _suggest_difficulty,
        'mining.extranonce.subscribe': _extranonce_subscribe,
    }

    # --- jobs -------------------------------------------------------------------

    def _scrypt_factor(self):
        return self.factory.net.PARENT.DUMB_SCRYPT_DIFF

    def send_work(self) -> None:
        """set_difficulty then notify with a fresh job; refusals close the connection.

        clean_jobs is true only when the parent block changed (or for the first job): new work
        on the same block (a new sharechain head, a new difficulty) does not make the miner
        throw away what it is hashing, and what it finds on the older job is still taken
        within STALE_GRACE_SECONDS. (A new-work event does the same for every connection at
        once in notify.Fanout.send, without saving the session: its state does not change then.)"""
        if not self.subscribed or self.username is None or not self.connected or self.transport.disconnecting:
            return
        try:
            record, base = self.bridge.get_stratum_work(self.username)
        except (WorkRefused, WorkUnavailable) as e:
            self.refuse_work(e)
            return
        now = self.factory.clock()
        target = self.vardiff.job_target(record.share_target, record.min_share_target, record.block_target)
        job_id = str(next(self.factory.job_numbers))
        self.jobs[job_id] = Job(record, base, target, now)
        prune(self.jobs, now)
        clean = self.last_block != record.previous_block
        self.last_block = record.previous_block
        self.save_session()
        write_now(self.transport, notify_bytes(base, record, target, job_id, clean, self._scrypt_factor()),
                  self.direct_send)

    def refuse_work(self, error: Exception) -> None:
        """The bridge has no work for this connection's username: it is closed."""
        log.info('no work for Stratum client %s (%s); disconnecting', self._peer(), error)
        self.transport.loseConnection()


class StratumFactory(protocol.Factory):
    """Stratum connections of one node; re-notifies all of them on every new-work event."""
    noisy = False

    def __init__(self, bridge, net, share_rate=3.0, handshake_timeout=HANDSHAKE_TIMEOUT, idle_timeout=IDLE_TIMEOUT,
                 slow_reader_timeout=SLOW_READER_TIMEOUT, max_bad_messages=MAX_BAD_MESSAGES, clock=time.time,
                 reactor=None, sessions=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.bridge, self.net, self.share_rate = bridge, net, share_rate
        self.handshake_timeout, self.idle_timeout = handshake_timeout, idle_timeout
        self.slow_reader_timeout, self.max_bad_messages = slow_reader_timeout, max_bad_messages
        self.clock, self.reactor = clock, reactor
        self.connections: set[Any] = set()
        # job ids (jobs.py): one per single job or new-work event, unique per node run, unguessable start
        self.job_numbers = itertools.count(random.getrandbits(63))
        self._prune_due = 0.0
        self.sessions = sessions if sessions is not None else SessionBook(clock=clock)
        bridge.new_work.watch(self._new_work)

    def buildProtocol(self, addr) -> StratumProtocol:
        return StratumProtocol(self, addr)

    def _new_work(self, counter) -> None:
        now = self.clock()
        fanout = Fanout(self.bridge.get_stratum_work, next(self.job_numbers), now, self.net.PARENT.DUMB_SCRYPT_DIFF)
        collecting = gc.isenabled()
        gc.disable()   # a full collection over 10,000 connections' objects must not stall the fan-out
        try:
            fanout.send(list(self.connections))
        finally:
            if collecting:
                gc.enable()
        if now >= self._prune_due:      # after the sends: no miner waits for this
            self._prune_due = now + PRUNE_INTERVAL
            self.reactor.callLater(0, self.prune_jobs)

    def prune_jobs(self) -> None:
        """Drop every connection's jobs over JOB_LIFETIME (new-work events drop those beyond MAX_JOBS)."""
        now = self.clock()
        for connection in list(self.connections):
            prune(connection.jobs, now)
