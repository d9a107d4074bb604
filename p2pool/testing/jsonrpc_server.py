"""A tiny HTTP JSON-RPC server on loopback for tests: a stand-in and fault-injection double.

    server = JsonRpcTestServer({'getblockcount': lambda: 7}, user='u', password='p').start()
    ... RpcClient('127.0.0.1', server.port, 'u', 'p') ...
    server.delays['getblockcount'] = 5.0        # the next calls stall for 5 s
    server.stop()

It answers like bitcoind: `Content-Type: application/json`, HTTP 200 with
`{"result", "error": null, "id"}`, JSON-RPC errors as HTTP 500 with an error
object (404 for an unknown method), and HTTP 401 with a text body for wrong
credentials. A handler raises JsonRpcFault(code, message) to answer an error.
It runs in its own threads (stdlib ThreadingHTTPServer), never in the reactor,
so it can stall without disturbing the code under test.
"""
import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonRpcFault(Exception):
    """Raised by a handler to answer with a JSON-RPC error object."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive, as bitcoind

    def log_message(self, *args):
        pass

    def _reply(self, status, body, content_type='application/json'):
        raw = body if isinstance(body, bytes) else body.encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):
        server = self.server.owner
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length)
        expected = 'Basic ' + base64.b64encode(('%s:%s' % (server.user, server.password)).encode()).decode()
        if self.headers.get('Authorization') != expected:
            self._reply(401, b'', 'text/html')
            return
        try:
            request = json.loads(body)
            method, params, request_id = request['method'], request.get('params', []), request.get('id')
        except (ValueError, KeyError, TypeError):
            self._reply(400, json.dumps({'result': None, 'error': {'code': -32700, 'message': 'Parse error'},
                                         'id': None}))
            return
        server.calls.append((method, list(params)))
        delay = server.delays.get(method, server.delays.get('*', 0))
        if delay:
            time.sleep(delay)
        if method in server.raw_replies:
            self._reply(200, server.raw_replies[method])
            return
        handler = server.handlers.get(method)
        if handler is None and server.fallback is not None:
            handler = lambda *args: server.fallback(method, *args)  # noqa: E731
        if handler is None:
            self._reply(404, json.dumps({'result': None, 'id': request_id,
                                         'error': {'code': -32601, 'message': 'Method not found'}}))
            return
        try:
            result = handler(*params)
        except JsonRpcFault as fault:
            self._reply(500, json.dumps({'result': None, 'id': request_id,
                                         'error': {'code': fault.code, 'message': fault.message}}))
            return
        except Exception as e:  # a test double reports its own bugs as RPC errors
            self._reply(500, json.dumps({'result': None, 'id': request_id,
                                         'error': {'code': -1, 'message': '%s: %s' % (type(e).__name__, e)}}))
            return
        self._reply(200, json.dumps({'result': result, 'error': None, 'id': request_id}))


class _Server(ThreadingHTTPServer):
    """Remembers open connections so that stop() can cut them, as a dying daemon would."""

    daemon_threads = True

    def __init__(self, *args):
        super().__init__(*args)
        self.open_sockets = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # clients that time out and leave are part of fault-injection tests

    def cut_connections(self):
        with self.sockets_lock:
            sockets, self.open_sockets = list(self.open_sockets), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class JsonRpcTestServer:
    """HTTP JSON-RPC server on 127.0.0.1 serving `handlers` (method name -> callable)."""

    def __init__(self, handlers=None, user='user', password='password', port=0):
        self.handlers = dict(handlers or {})
        self.user, self.password, self.requested_port = user, password, port
        self.delays = {}  # method (or '*') -> seconds to stall before answering
        self.raw_replies = {}  # method -> raw bytes sent as the HTTP body (malformed answers)
        self.calls = []  # (method, params) in arrival order
        self.fallback = None  # callable(method, *params) for methods without a handler (a proxy)
        self._httpd = None
        self._thread = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return 'http://%s:%s@127.0.0.1:%d/' % (self.user, self.password, self.port)

    def start(self) -> 'JsonRpcTestServer':
        self._httpd = _Server(('127.0.0.1', self.requested_port), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={'poll_interval': 0.05},
                                        name='jsonrpc-test-server', daemon=True)
        self._thread.start()
        self.requested_port = self.port  # a restart comes back on the same port
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.cut_connections()
            self._thread.join(5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
