"""P2Pool nodes as real subprocesses (`run_p2pool.py`) for the command-line and end-to-end tests.

Each NodeProcess gets free loopback ports, its own data directory and a console
file per start (stdout and stderr kept apart, so tests can tell an argparse
message on stderr from a log line on the console). Every process is stopped by
its PID: `stop()` sends SIGTERM and falls back to SIGKILL, and the `node_factory`
fixture stops whatever a test left running, also when the test failed. Nodes run
in their own session with a parent-death signal, so a killed pytest does not
leave them behind.

    def test_something(node_factory, regtest_node):
        node = node_factory(regtest_node, name='a').start().wait_ready()
        node.get('/web/best_share_hash')
        assert node.stop() == 0

(tests/ has no __init__.py, so this imports as plain `node_processes`.)
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from p2pool.testing import regtest

REPO = Path(__file__).resolve().parent.parent
RUN_P2POOL = REPO / 'run_p2pool.py'
NET = 'bsv_regtest'
READY_LINE = 'Node ready'


class NodeProcessError(AssertionError):
    """A node did not do what the test waited for; the message carries its console tail."""


def run_p2pool(args, timeout=60, cwd=None):
    """Run `run_p2pool.py ARGS` to completion: CompletedProcess with text stdout/stderr."""
    return subprocess.run([sys.executable, str(RUN_P2POOL), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL)


def wait_until(condition, timeout, what, interval=0.1):
    """Poll `condition()` until it returns something truthy and return that; NodeProcessError on timeout."""
    try:
        return regtest.wait_until(condition, timeout, what, interval)
    except regtest.RegtestError as e:
        raise NodeProcessError(str(e)) from None


class NodeProcess:
    """One p2pool node subprocess on bsv_regtest.

    bitcoind: a p2pool.testing.regtest.RegtestBitcoind (its cli_args() point the node at it),
    or None when `bitcoind_args` are given instead (for tests that break them on purpose).
    peers: P2P ports of other local nodes to keep connected to (-n 127.0.0.1:PORT).
    extra_args: appended before the RPC credentials.
    argument_file: a path; the arguments are then written there, one per line, and the
    node is started with `@argument_file` alone.
    """

    def __init__(self, bitcoind, datadir, name='node', peers=(), address=None, extra_args=(),
                 bitcoind_args=None, p2p_port=None, worker_port=None, argument_file=None, file_limit=None,
                 net=NET):
        self.name = name
        self.net = net
        self.file_limit = file_limit   # soft and hard RLIMIT_NOFILE of the process, if given
        self.bitcoind = bitcoind
        self.argument_file = argument_file
        self.datadir = Path(datadir)
        self.p2p_port, self.worker_port = p2p_port, worker_port
        if self.p2p_port is None or self.worker_port is None:
            self.p2p_port, self.worker_port = regtest.free_ports(2)
        self.peers = list(peers)
        self.address = address
        self.extra_args = list(extra_args)
        self.bitcoind_args = list(bitcoind_args if bitcoind_args is not None else bitcoind.cli_args())
        self.process = None
        self.starts = 0
        self.stdin = subprocess.DEVNULL     # a pty's slave fd gives the node a terminal
        self.console_path = self.stderr_path = None

    # -- paths ------------------------------------------------------------------------

    @property
    def net_dir(self):
        """DATADIR/NET: the store, the log and the cached payout address live here."""
        return self.datadir / self.net

    @property
    def log_path(self):
        return self.net_dir / 'log'

    @property
    def store_path(self):
        return self.net_dir / 'p2pool.sqlite3'

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    def args(self):
        args = ['--net', self.net, '--datadir', str(self.datadir), '--p2pool-port', str(self.p2p_port),
                '-w', str(self.worker_port), '--disable-upnp']
        for port in self.peers:
            args += ['-n', '127.0.0.1:%d' % port]
        if self.address is not None:
            args += ['-a', self.address]
        return args + self.extra_args + self.bitcoind_args

    # -- lifecycle --------------------------------------------------------------------

    def start(self):
        """Launch the node (again, after a stop or kill: same ports, same datadir)."""
        if self.running:
            raise NodeProcessError('%s is already running as pid %d' % (self.name, self.pid))
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.console_path = self.datadir / ('console-%d.log' % self.starts)
        self.stderr_path = self.datadir / ('stderr-%d.log' % self.starts)
        argv = self.args()
        if self.argument_file is not None:
            Path(self.argument_file).write_text(
                '# arguments of %s, one per line\n\n%s\n' % (self.name, '\n'.join(argv)))
            argv = ['@%s' % self.argument_file]
        with open(self.console_path, 'wb') as console, open(self.stderr_path, 'wb') as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(RUN_P2POOL), *argv], stdin=self.stdin, stdout=console,
                stderr=stderr, cwd=str(self.datadir), start_new_session=True,
                # pytest killed without cleaning up must not leave nodes behind (Linux)
                preexec_fn=_with_file_limit(regtest._parent_death_signal(), self.file_limit))
        return self

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout=60):
        """Wait for the "Node ready" log line; NodeProcessError if the node exits first."""
        def ready():
            if READY_LINE in self.console():
                return True
            if self.process.poll() is not None:
                raise NodeProcessError('%s exited with %s before it was ready\n%s'
                                       % (self.name, self.process.returncode, self.tail()))
            return False
        try:
            wait_until(ready, timeout, '%s to be ready' % self.name)
        except NodeProcessError as error:
            raise NodeProcessError('%s\n%s' % (error, self.tail())) from None
        return self

    def wait_exit(self, timeout=30):
        """The exit status once the process ends; NodeProcessError if it is still running."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise NodeProcessError('%s (pid %d) did not exit within %s s\n%s'
                                   % (self.name, self.pid, timeout, self.tail())) from None

    def send_signal(self, sig):
        # Safe by PID: our child is not reaped until we wait for it, so the PID is still ours.
        if self.running:
            os.kill(self.process.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Send `sig` (default SIGTERM), wait, SIGKILL if needed; returns the exit status. Idempotent."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self):
        """kill -9 by PID and reap; returns the exit status."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        return self.process.returncode if self.process is not None else None

    # -- output -----------------------------------------------------------------------

    def console(self):
        """Everything this run wrote to stdout (the console log)."""
        return _read(self.console_path)

    def stderr(self):
        return _read(self.stderr_path)

    def tail(self, lines=30):
        text = (self.console() + self.stderr()).splitlines()[-lines:]
        return '--- %s (%s) ---\n%s' % (self.name, self.console_path, '\n'.join(text))

    # -- web API ----------------------------------------------------------------------

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.worker_port, path)

    def get(self, path, timeout=10):
        """The JSON answer of GET `path` on the worker port (HTTPError for non-200 answers)."""
        with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
            return json.loads(response.read())

    def get_or_none(self, path, timeout=10):
        """Like get(), but None when the node cannot answer (not up yet, 503 before a best share)."""
        try:
            return self.get(path, timeout)
        except (OSError, ValueError):  # URLError and HTTPError are OSErrors
            return None

    def best_share_hash(self):
        return self.get_or_none('/web/best_share_hash')

    def peer_count(self):
        peers = self.get_or_none('/peer_addresses')
        return len(peers.split()) if peers else 0

    def __repr__(self):
        return '<NodeProcess %s pid=%s p2p=%s worker=%s>' % (self.name, self.pid, self.p2p_port, self.worker_port)


def release_long_polls(pair, attempts=5):
    """Free the RPC threads that stopped nodes left waiting in `pair.first`.

    A node long-polls getblocktemplate; when it exits, bitcoind does not notice and
    keeps one of its 4 RPC threads (-rpcthreads) waiting until the next block. A few
    stopped nodes therefore hang bitcoind's RPC for everyone. A block mined on the
    peer (`pair.second`, whose RPC threads our nodes never use) ends those waits.
    """
    for _ in range(attempts):
        block = pair.second.mine(1)[0]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if pair.first.rpc('getbestblockhash', timeout=5) == block:
                    return
            except regtest.RegtestError:
                pass        # still busy; the block may not have arrived yet
            time.sleep(0.05)
    raise NodeProcessError('bitcoind did not take the blocks mined to end its long polls')


def _with_file_limit(hook, limit):
    """A preexec hook that runs `hook`, sets RLIMIT_NOFILE to `limit` (soft and hard) when given, and gives
    the node the default SIGINT: a test run started as a background job of a non-interactive shell has
    SIGINT ignored, the node would inherit that, and the tests that stop a node with SIGINT would hang."""
    def setup():
        import resource
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        if hook is not None:
            hook()
    return setup


def _read(path):
    if path is None:
        return ''
    try:
        return Path(path).read_text(errors='replace')
    except OSError:
        return ''


@pytest.fixture
def node_factory(tmp_path_factory, regtest_pair):
    """Call it like NodeProcess (without datadir: a fresh one); every node is stopped by PID afterwards.

    Nodes are meant for `regtest_pair.first` (the `regtest_node` fixture); afterwards the
    RPC threads their long polls held are released (see release_long_polls).
    """
    nodes = []

    def make(bitcoind, name='node', datadir=None, **kwargs):
        node = NodeProcess(bitcoind, datadir or tmp_path_factory.mktemp('p2pool-' + name), name=name, **kwargs)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop(timeout=20)
    if any(node.starts and node.bitcoind is not None for node in nodes):
        release_long_polls(regtest_pair)


def ports_below_ephemeral(count, low=20000, high=32000):
    """`count` free ports outside Linux's ephemeral range (32768-60999): no outgoing connection of a
    busy machine takes them between the choice and the node's listen, as it can with free_ports()."""
    import random
    import socket
    chosen = []
    while len(chosen) < count:
        port = random.randrange(low, high)
        if port in chosen:
            continue
        try:
            for family, host in ((socket.AF_INET6, '::'), (socket.AF_INET, '')):
                with socket.socket(family) as sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((host, port))
        except OSError:
            continue
        chosen.append(port)
    return chosen
