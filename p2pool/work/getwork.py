"""getwork over HTTP JSON-RPC with long polling (worker.md §6).

`POST /` with `{"method": "getwork", "params": []}` returns work encoded as
data/hash1/target/midstate; `"params": [data]` submits a solved header, linked back
to its work by the merkle root (kept 300 s). `/long-polling` (GET or POST) answers
when the new-work counter moves past what this client (IP, Authorization header)
last saw. A miner's `getblocktemplate` call gets a -32601 error so that cpuminer
falls back to getwork. Every reply is HTTP 200 with a JSON-RPC object and carries
X-Long-Polling, X-Roll-NTime, X-Is-P2Pool and (with a Host header) X-Stratum; a
`false` submission result adds X-Reject-Reason (`stale`, `unknown-work`,
`ntime-out-of-range`, `mismatch`) for information.

    server = GetworkServer(bridge)
    attach_getwork(root_resource, server)   # '' and 'long-polling' children of the web root
"""
import logging
import time
from collections import OrderedDict
from typing import Any

from twisted.internet import defer
from twisted.web import resource, server as web_server
from twisted.web.util import redirectTo

from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.hashes import hash256, sha256_state_after
from p2pool.work import jsonrpc
from p2pool.util.ratelimit import FunctionClock, KeyedLimit
from p2pool.util.untrusted import shown
from p2pool.work.bridge import WorkRefused, WorkUnavailable, ntime_acceptable

log = logging.getLogger(__name__)

HASH1 = ('0000000000000000000000000000000000000000000000000000000000000000'
         '0000008000000000000000000000000000000000000000000000000000010000')
DATA_PADDING = bytes.fromhex('000000800000000000000000000000000000000000000000000000000000000000000000'
                             '000000000000000080020000')
HANDLER_LIFETIME = 300.0
MAX_HANDLERS = 100000
MAX_LONG_POLL_CLIENTS = 10000
MAX_BODY = 64 * 1024
JEPHIS_AGENT = 'Jephis PIC Miner'
# "unknown work" warnings per source address: a burst of 3, then one a minute
UNKNOWN_WORK_LOG_BURST = 3
UNKNOWN_WORK_LOG_RATE = 1 / 60


class GetworkError(ValueError):
    """getwork `data` that cannot be decoded into a header."""


def swap4(raw) -> bytes:
    """Reverse the byte order of every 4-byte word."""
    if len(raw) % 4:
        raise GetworkError('length %d is not a multiple of 4' % len(raw))
    return b''.join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))


def encode_work(header, target, identifier=None, extra=None) -> dict[str, Any]:
    """The getwork reply object for `header` (nonce 0) and pseudoshare `target`."""
    header80 = bitcoin_data.header_type.pack(header)
    reply = dict(extra or {})
    reply.update(
        data=swap4(header80).hex() + DATA_PADDING.hex(),
        hash1=HASH1,
        target=target.to_bytes(32, 'little').hex(),
        midstate=swap4(sha256_state_after(header80[:64])).hex(),
    )
    if identifier is not None:
        reply['identifier'] = str(identifier)
        reply['submitold'] = True
    return reply


def decode_data(data_hex) -> dict[str, Any]:
    """The header dict in getwork `data` (hex; only the first 80 bytes after swap4 count)."""
    if not isinstance(data_hex, str):
        raise GetworkError('data must be a hex string')
    try:
        raw = bytes.fromhex(data_hex)
    except ValueError:
        raise GetworkError('data is not hex') from None
    if len(raw) < 80:
        raise GetworkError('data holds %d bytes, a header needs 80' % len(raw))
    return bitcoin_data.header_type.unpack(swap4(raw[:80]))


def decode_target(target_hex) -> int:
    raw = bytes.fromhex(target_hex)
    if len(raw) != 32:
        raise GetworkError('target must be 32 bytes')
    return int.from_bytes(raw, 'little')


class GetworkServer:
    """getwork state shared by `/` and `/long-polling`: handlers by merkle root, long polls."""

    def __init__(self, bridge, clock=time.time) -> None:
        self.bridge, self.clock = bridge, clock
        self._handlers: OrderedDict[Any, Any] = OrderedDict()      # merkle_root -> (expiry, handler, record)
        self._seen_counters: OrderedDict[Any, Any] = OrderedDict()  # (ip, authorization) -> counter last answered
        self._waiters: list[Any] = []
        self._unknown_work_log = KeyedLimit(UNKNOWN_WORK_LOG_BURST, UNKNOWN_WORK_LOG_RATE, FunctionClock(clock))
        bridge.new_work.watch(self._new_work)

    def _new_work(self, counter) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(counter)

    # --- HTTP entry point ------------------------------------------------------

    def render(self, request, long_poll) -> Any:
        request.setHeader(b'Content-Type', b'application/json')
        request.setHeader(b'X-Long-Polling', b'/long-polling')
        request.setHeader(b'X-Roll-NTime', b'expire=100')
        request.setHeader(b'X-Is-P2Pool', b'true')
        host = request.getHeader(b'host')
        if host is not None:
            request.setHeader(b'X-Stratum', b'stratum+tcp://' + host)
        request_id = None
        try:
            # §2.1's refusals (peers first) come with each work request, in bridge.get_work, before
            # the username is parsed; solutions are never refused, and a long poll waits first.
            body = request.content.read(MAX_BODY + 1) if request.content is not None else b''
            if len(body) > MAX_BODY:
                raise jsonrpc.JsonRpcError(jsonrpc.INVALID_REQUEST, 'Invalid Request', 'body too large')
            if long_poll and not body.strip():
                obj = {'method': 'getwork', 'params': []}
            else:
                obj = jsonrpc.decode_json(body)
            request_id, method, params = jsonrpc.parse_request(obj)
            if method != 'getwork':
                # includes getblocktemplate: cpuminer falls back to getwork on this error
                raise jsonrpc.method_not_found(method)
            if params:
                return self._submit(request, request_id, params)
            if long_poll:
                return self._long_poll(request, request_id)
            return jsonrpc.encode(jsonrpc.result_object(request_id, self._work(request)))
        except jsonrpc.JsonRpcError as error:
            return jsonrpc.encode(jsonrpc.error_object(request_id, error))
        except Exception:
            log.exception('getwork request failed')
            return jsonrpc.encode(jsonrpc.error_object(
                request_id, jsonrpc.JsonRpcError(jsonrpc.UNKNOWN_ERROR, 'Unknown error')))

    # --- work -------------------------------------------------------------------

    def _work(self, request):
        username = (request.getUser() or b'').decode('utf-8', 'replace')
        try:
            record, handler = self.bridge.get_work(username)
        except WorkRefused as e:
            raise jsonrpc.JsonRpcError(jsonrpc.P2POOL_REFUSAL, e.message) from None
        except WorkUnavailable:
            raise jsonrpc.JsonRpcError(jsonrpc.UNKNOWN_ERROR, 'Unknown error') from None
        coinbase = record.coinb1 + b'\x00' * 4 + record.coinb2
        merkle_root = bitcoin_data.check_merkle_link(hash256(coinbase), record.merkle_link)
        header = {'version': record.version, 'previous_block': record.previous_block,
                  'merkle_root': merkle_root, 'timestamp': record.timestamp, 'bits': record.bits, 'nonce': 0}
        self._remember(merkle_root, handler, record)
        agent = (request.getHeader(b'user-agent') or b'').decode('utf-8', 'replace')
        identifier = None if agent == JEPHIS_AGENT else record.identifier
        return encode_work(header, record.share_target, identifier)

    def _remember(self, merkle_root, handler, record) -> None:
        now = self.clock()
        handlers = self._handlers
        handlers[merkle_root] = (now + HANDLER_LIFETIME, handler, record)
        handlers.move_to_end(merkle_root)
        while handlers and (len(handlers) > MAX_HANDLERS or next(iter(handlers.values()))[0] < now):
            handlers.popitem(last=False)

    def _submit(self, request, request_id, params):
        try:
            header = decode_data(params[0])
        except GetworkError as e:
            raise jsonrpc.invalid_params(str(e)) from None
        entry = self._handlers.get(header['merkle_root'])
        if entry is None or entry[0] < self.clock():
            self._log_unknown_work(request)
            return self._submission_reply(request, request_id, False, 'unknown-work')
        _, handler, record = entry
        if not ntime_acceptable(record.timestamp, header['timestamp'], self.clock()):
            return self._submission_reply(request, request_id, False, 'ntime-out-of-range')
        result = handler(header)
        reason = None if result.on_time else ('mismatch' if result.pseudoshare == 'mismatch' else 'stale')
        return self._submission_reply(request, request_id, result.on_time, reason)

    def _log_unknown_work(self, request) -> None:
        source = _client_host(request)
        if not self._unknown_work_log.allow(source):
            return
        left_out = self._unknown_work_log.take_suppressed(source)
        log.warning("Couldn't link returned work's merkle root with its handler (from %s%s). This should only "
                    'happen if this process was recently restarted!', shown(source),
                    ', %d more not shown' % left_out if left_out else '')

    @staticmethod
    def _submission_reply(request, request_id, accepted, reason):
        if not accepted:
            request.setHeader(b'X-Reject-Reason', reason.encode('ascii'))
        return jsonrpc.encode(jsonrpc.result_object(request_id, accepted))

    # --- long polling -----------------------------------------------------------

    def _long_poll(self, request, request_id):
        key = (_client_host(request), request.getHeader(b'authorization'))
        last = self._seen_counters.get(key)
        if last is not None and last != self.bridge.new_work_counter:
            return self._long_poll_answer(request, request_id, key)
        d = defer.Deferred()
        self._waiters.append(d)
        finished = request.notifyFinish()
        finished.addErrback(lambda failure: self._abandon(d))
        d.addCallback(lambda counter: self._answer_later(request, request_id, key))
        return web_server.NOT_DONE_YET

    def _abandon(self, d) -> None:
        if d in self._waiters:
            self._waiters.remove(d)

    def _answer_later(self, request, request_id, key) -> None:
        if getattr(request, '_disconnected', False) or request.finished:
            return
        request.write(self._long_poll_answer(request, request_id, key))
        request.finish()

    def _long_poll_answer(self, request, request_id, key):
        seen = self._seen_counters
        seen[key] = self.bridge.new_work_counter
        seen.move_to_end(key)
        if len(seen) > MAX_LONG_POLL_CLIENTS:
            seen.popitem(last=False)
        try:
            return jsonrpc.encode(jsonrpc.result_object(request_id, self._work(request)))
        except jsonrpc.JsonRpcError as error:
            return jsonrpc.encode(jsonrpc.error_object(request_id, error))


def _client_host(request):
    address = request.getClientAddress()
    return getattr(address, 'host', None)


class GetworkResource(resource.Resource):
    """`/`: getwork by POST; a browser's GET is sent to the dashboard."""
    isLeaf = True

    def __init__(self, server) -> None:
        super().__init__()
        self.getwork_server = server

    def render_POST(self, request) -> Any:
        return self.getwork_server.render(request, long_poll=False)

    def render_GET(self, request) -> bytes:
        return redirectTo(b'/static/', request)


class LongPollResource(resource.Resource):
    """`/long-polling`: getwork that waits for the next new-work event."""
    isLeaf = True

    def __init__(self, server) -> None:
        super().__init__()
        self.getwork_server = server

    def render_POST(self, request) -> Any:
        return self.getwork_server.render(request, long_poll=True)

    render_GET = render_POST


def attach_getwork(root, server) -> Any:
    """Serve getwork at `/` and long polling at `/long-polling` of the web `root` Resource."""
    root.putChild(b'', GetworkResource(server))
    root.putChild(b'long-polling', LongPollResource(server))
    return root
