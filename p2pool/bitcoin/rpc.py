"""JSON-RPC client for bitcoind and merged-mining daemons, kept off the reactor thread.

Every call goes through python-bitcoinrpc's AuthServiceProxy inside a dedicated
Twisted ThreadPool, so a slow or dead daemon can stall a worker thread but never
the reactor. AuthServiceProxy wraps one HTTP connection and is not thread-safe:
every call gets a proxy (and connection) of its own, closed after the answer.

Failures are mapped onto this module's exception classes:

* RpcError            - the daemon answered with a JSON-RPC error (has .code, .message)
* RpcConnectionError  - it could not be reached: refused, timed out, dropped, bad HTTP
* RpcAuthError        - HTTP 401/403: wrong user name or password (an RpcConnectionError)
* RpcBadReply         - the answer was not a JSON-RPC reply

All four derive from RpcFailure. Start-up checks of a bitcoind (worker.md §10.1)
live in check_bitcoind(); they fail with BitcoindCheckError, whose message is
one plain-language line meant for the operator.
"""
import http.client
import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, TypeVar

from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException
from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

log = logging.getLogger(__name__)

T = TypeVar('T')

METHOD_NOT_FOUND = -32601
#: python-bitcoinrpc's codes for "HTTP answer that is not JSON" and "no result field"
_NON_JSON_HTTP = -342
_MISSING_RESULT = -343


class RpcFailure(Exception):
    """Base of every failure of a JSON-RPC call."""


class RpcError(RpcFailure):
    """The daemon answered the call with a JSON-RPC error object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__('%s (code %s)' % (message, code))
        self.code, self.message = code, message


class RpcConnectionError(RpcFailure):
    """The daemon could not be reached or did not answer over HTTP."""


class RpcAuthError(RpcConnectionError):
    """The daemon refused our credentials (HTTP 401 or 403)."""


class RpcBadReply(RpcFailure):
    """The daemon's answer is not a well-formed JSON-RPC reply."""


class BitcoindCheckError(Exception):
    """A start-up check of bitcoind failed; str() is a one-line explanation."""


def _daemon_thread(*args: Any, **kwargs: Any) -> threading.Thread:
    # A worker stuck in a long poll must not keep the interpreter alive at exit.
    thread = threading.Thread(*args, **kwargs)
    thread.daemon = True
    return thread


class RpcClient:
    """Calls one JSON-RPC daemon; call() returns a Deferred and runs in a worker thread."""

    def __init__(self, host: str, port: int | str, user: str | None, password: str | None, timeout: float = 30.0,
                 use_ssl: bool = False, path: str = '/', max_threads: int = 4, name: str = 'bitcoind',
                 reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.host, self.port, self.user, self.password = host, int(port), user, password
        self.timeout, self.name = timeout, name
        self._path, self._max_threads = path or '/', max_threads
        scheme = 'https' if use_ssl else 'http'
        self._url = '%s://%s:%s@%s:%d%s' % (scheme, urllib.parse.quote(user or '', safe=''),
                                            urllib.parse.quote(password or '', safe=''),
                                            _url_host(host), self.port, path or '/')
        self._reactor: Any = reactor
        self._pool = ThreadPool(minthreads=0, maxthreads=max_threads, name='%s-rpc' % name)
        self._pool.threadFactory = _daemon_thread  # type: ignore[assignment]  # a Thread factory, as Twisted's
        self._shutdown_trigger: Any = None

    @classmethod
    def from_url(cls, url: str, timeout: float = 5.0, **kwargs: Any) -> 'RpcClient':
        """Client for `http://user:pass@host:port/` (the --merged syntax); raises ValueError."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise ValueError('%r is not an http:// URL' % (url,))
        if parts.username is None or parts.password is None:
            raise ValueError('the URL %s must contain credentials (http://user:pass@host:port/)'
                             % _redact(url))
        try:
            port = parts.port or (443 if parts.scheme == 'https' else 80)
        except ValueError:
            raise ValueError('%s has an invalid port' % _redact(url)) from None
        return cls(parts.hostname, port, urllib.parse.unquote(parts.username),
                   urllib.parse.unquote(parts.password), timeout=timeout,
                   use_ssl=parts.scheme == 'https', path=parts.path or '/', **kwargs)

    @property
    def endpoint(self) -> str:
        """host:port, for messages."""
        return '%s:%d' % (_url_host(self.host), self.port)

    # --- calls -------------------------------------------------------------

    def call(self, method: str, *params: Any, timeout: float | None = None) -> defer.Deferred[Any]:
        """Deferred firing with the result of method(*params) or failing with an RpcFailure."""
        self._start_pool()
        return threads.deferToThreadPool(self._reactor, self._pool, self.call_blocking,
                                         method, *params, timeout=timeout)

    def run_in_pool(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> defer.Deferred[T]:
        """Deferred of fn(*args, **kwargs) run in this client's worker threads (fn may call_blocking)."""
        self._start_pool()
        return threads.deferToThreadPool(self._reactor, self._pool, fn, *args, **kwargs)

    def clone(self, **overrides: Any) -> 'RpcClient':
        """Another client for the same daemon with its own threads (e.g. for long polls)."""
        settings: dict[str, Any] = dict(
            host=self.host, port=self.port, user=self.user, password=self.password, timeout=self.timeout,
            use_ssl=self._url.startswith('https'), path=self._path, max_threads=self._max_threads,
            name=self.name, reactor=self._reactor)
        settings.update(overrides)
        return RpcClient(**settings)

    def call_blocking(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """The same call, synchronously; only for threads other than the reactor's."""
        timeout = self.timeout if timeout is None else timeout
        # A fresh proxy (and TCP connection) per call: AuthServiceProxy is not
        # thread-safe, a dead keep-alive connection can never be picked up again,
        # and on a reused connection bitcoind's two-part HTTP answers meet Nagle
        # and delayed ACKs, costing ~40 ms per call. A loopback connect is ~0.1 ms.
        proxy = AuthServiceProxy(self._url, timeout=timeout)
        try:
            return getattr(proxy, method)(*params)
        except JSONRPCException as e:
            if e.code == _NON_JSON_HTTP:
                raise self._http_failure(e.message or '') from None
            if e.code == _MISSING_RESULT:
                raise RpcBadReply('%s answered %s without a result' % (self.name, method)) from None
            raise RpcError(e.code, e.message) from None
        except ConnectionRefusedError:
            raise RpcConnectionError('cannot connect to %s at %s: connection refused'
                                     % (self.name, self.endpoint)) from None
        except (socket.timeout, TimeoutError):
            raise RpcConnectionError('%s at %s did not answer %s within %s s'
                                     % (self.name, self.endpoint, method, timeout)) from None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            raise RpcConnectionError('%s at %s closed the connection during %s (%s)'
                                     % (self.name, self.endpoint, method, type(e).__name__)) from None
        except (OSError, http.client.HTTPException) as e:
            raise RpcConnectionError('cannot talk to %s at %s: %s'
                                     % (self.name, self.endpoint, e or type(e).__name__)) from None
        except (ValueError, TypeError, AttributeError, KeyError) as e:
            # json.loads failures, a reply that is not an object, ...
            raise RpcBadReply('%s at %s sent a malformed answer to %s: %s'
                              % (self.name, self.endpoint, method, e)) from None
        finally:
            _close_proxy(proxy)

    def _http_failure(self, message: str) -> RpcConnectionError:
        if '401' in message or '403' in message:
            return RpcAuthError('%s at %s rejected the RPC user name or password (%s)'
                                % (self.name, self.endpoint, 'HTTP 401' if '401' in message else 'HTTP 403'))
        return RpcConnectionError('%s at %s: %s' % (self.name, self.endpoint, message))

    # --- thread pool -------------------------------------------------------

    def _start_pool(self) -> None:
        if not self._pool.started:
            self._pool.start()
            self._shutdown_trigger = self._reactor.addSystemEventTrigger(
                'during', 'shutdown', self._stop_pool_async)

    def _stop_pool_async(self) -> None:
        # ThreadPool.stop() joins its workers, which may sit in a 30 s call; do it elsewhere.
        if self._pool.started:
            _daemon_thread(target=self._pool.stop, name='%s-rpc-stop' % self.name).start()

    def close(self) -> None:
        """Stop the worker threads (pending calls still finish); call from the reactor thread."""
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        self._stop_pool_async()


def _close_proxy(proxy: Any) -> None:
    # AuthServiceProxy has no close(); its connection sits in a name-mangled attribute.
    connection = getattr(proxy, '_AuthServiceProxy__conn', None)
    if connection is not None:
        connection.close()


def _url_host(host: str) -> str:
    return '[%s]' % host if ':' in host and not host.startswith('[') else host


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(':%s@' % parts.password, ':***@', 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


# --- start-up checks (worker.md §10.1, networks.md §3) ----------------------------

def softfork_ids(blockchain_info: Mapping[str, Any]) -> set[str]:
    """Soft-fork names reported by getblockchaininfo: `softforks`/`bip9_softforks`, as lists or dicts."""
    ids: set[str] = set()
    for key in ('softforks', 'bip9_softforks'):
        value = blockchain_info.get(key)
        if isinstance(value, dict):
            ids.update(str(name) for name in value)
        elif isinstance(value, list):
            ids.update(str(entry['id']) for entry in value if isinstance(entry, dict) and 'id' in entry)
    return ids


def gbt_rules(net: Any) -> list[str]:
    """The `rules` a getblocktemplate request needs: segwit where the network requires it."""
    required = set(getattr(net, 'SOFTFORKS_REQUIRED', ()) or ())
    return ['segwit'] if 'segwit' in required else []


def _as_hash(value: int | str) -> int:
    return value if isinstance(value, int) else int(value, 16)


def _version_problem(net: Any, version: int) -> str | None:
    """None when getnetworkinfo().version passes VERSION_CHECK, else the refusal text."""
    if hasattr(net, 'version_check'):
        problem: str | None = net.version_check(version)
        return problem
    minimum: int = getattr(net, 'VERSION_CHECK', 0) or 0
    return None if version >= minimum else 'version %d is older than %d' % (version, minimum)


@defer.inlineCallbacks
def check_bitcoind(rpc: RpcClient, net: Any,
                   allow_obsolete: bool = False) -> Generator[defer.Deferred[Any], Any, dict[str, Any]]:
    """Run the start-up checks; fires with getblockchaininfo's answer or fails with BitcoindCheckError.

    Uses net.PARENT.GENESIS_HASH, PARENT.CHAIN, PARENT.RPC_CHECK (KNOWN_BLOCKS,
    CHECK_CHAIN, HELP_CONTAINS), net.version_check / VERSION_CHECK and
    net.SOFTFORKS_REQUIRED; any of them may be absent (then that check is skipped).
    """
    parent = net.PARENT
    where = 'bitcoind at %s' % rpc.endpoint
    network_name = getattr(net, 'NAME', None) or getattr(parent, 'SYMBOL', '?')
    rpc_check = getattr(parent, 'RPC_CHECK', None)
    try:
        network_info = yield rpc.call('getnetworkinfo')
        chain_info = yield rpc.call('getblockchaininfo')
        genesis_hex = yield rpc.call('getblockhash', 0)
        help_text = (yield rpc.call('help')) if getattr(rpc_check, 'HELP_CONTAINS', '') else ''
    except RpcAuthError:
        raise BitcoindCheckError('%s rejected the RPC user name or password (HTTP 401): check '
                                 'rpcuser/rpcpassword or the .cookie file' % where) from None
    except RpcConnectionError as e:
        raise BitcoindCheckError('%s (is bitcoind running, with server=1, on that RPC port?)' % _short(e)) from None
    except RpcFailure as e:
        raise BitcoindCheckError('%s failed a basic RPC call: %s' % (where, _short(e))) from None
    if not isinstance(network_info, dict) or not isinstance(chain_info, dict):
        raise BitcoindCheckError('%s gave malformed getnetworkinfo/getblockchaininfo answers' % where)

    # Wrong chain: genesis, chain name, RPC_CHECK (networks.md §3).
    expected_genesis = getattr(parent, 'GENESIS_HASH', None)
    try:
        genesis = int(genesis_hex, 16)
    except (TypeError, ValueError):
        raise BitcoindCheckError('%s returned a malformed genesis hash %r' % (where, genesis_hex)) from None
    if expected_genesis is not None and genesis != _as_hash(expected_genesis):
        raise BitcoindCheckError('wrong chain: %s runs chain "%s" (genesis %064x) but network %s expects '
                                 'genesis %064x' % (where, chain_info.get('chain'), genesis, network_name,
                                                    _as_hash(expected_genesis)))
    expected_chain = getattr(parent, 'CHAIN', None)
    if expected_chain and getattr(rpc_check, 'CHECK_CHAIN', False) and chain_info.get('chain') != expected_chain:
        raise BitcoindCheckError('wrong chain: %s runs chain "%s" but network %s needs "%s"'
                                 % (where, chain_info.get('chain'), network_name, expected_chain))
    known_blocks: Iterable[int | str] = getattr(rpc_check, 'KNOWN_BLOCKS', ())
    for block_hash in known_blocks:
        try:
            yield rpc.call('getblockheader', '%064x' % _as_hash(block_hash))
        except RpcError:
            raise BitcoindCheckError('wrong chain: %s does not know block %064x, which network %s requires'
                                     % (where, _as_hash(block_hash), network_name)) from None
        except RpcFailure as e:
            raise BitcoindCheckError('%s failed getblockheader: %s' % (where, _short(e))) from None
    wanted_help: str = getattr(rpc_check, 'HELP_CONTAINS', '')
    if wanted_help and wanted_help not in str(help_text):
        raise BitcoindCheckError('wrong daemon: the help text of %s does not mention "%s" (network %s)'
                                 % (where, wanted_help, network_name))

    version = network_info.get('version')
    problem = 'no version reported' if not isinstance(version, int) else _version_problem(net, version)
    if problem:
        raise BitcoindCheckError('%s is too old (version %s): %s' % (where, version, problem))

    if chain_info.get('initialblockdownload') and chain_info.get('chain') != 'regtest':
        raise BitcoindCheckError('%s is still syncing (initial block download at block %s of %s headers); '
                                 'start p2pool when it has caught up'
                                 % (where, chain_info.get('blocks'), chain_info.get('headers')))

    required = set(getattr(net, 'SOFTFORKS_REQUIRED', ()) or ())
    missing = sorted(required - softfork_ids(chain_info))
    if missing and not allow_obsolete:
        raise BitcoindCheckError('%s does not report the required soft forks %s; upgrade it '
                                 '(or pass --allow-obsolete-bitcoind)' % (where, ', '.join(missing)))
    if missing:
        log.warning('bitcoind lacks soft forks %s; continuing because obsolete bitcoind is allowed',
                    ', '.join(missing))
    return chain_info


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
