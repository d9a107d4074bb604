"""takeover_gap_ms: the longest a miner's mining.submit waits unanswered while a node is taken over (goal < 500).

A regtest bitcoind pair, one node process (run_p2pool.py) and a Stratum client that
submits back to back (each submission answered before the next; answers to shares
below the difficulty come through the same path as any other) while a second process
takes the node over with --takeover. The figure is the slowest answer seen from the
start of the second process until the first one has exited; the client's connection
must survive (a disconnect fails the benchmark).
"""
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT, os.path.join(ROOT, 'tests')]

ROUNDS = 3


def _node(bitcoind, datadir, ports, extra=()):
    return subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'run_p2pool.py'), '--net', 'bsv_regtest', '--datadir', datadir,
         '--p2pool-port', str(ports[0]), '-w', str(ports[1]), '--disable-upnp', *extra, *bitcoind.cli_args()],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=datadir)


def _wait_ready(datadir, since_lines, timeout=60):
    log = os.path.join(datadir, 'bsv_regtest', 'log')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(log, errors='replace') as f:
                if any('Node ready' in line for line in f.readlines()[since_lines:]):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError('the node did not get ready')


def _log_lines(datadir):
    try:
        with open(os.path.join(datadir, 'bsv_regtest', 'log'), errors='replace') as f:
            return len(f.readlines())
    except OSError:
        return 0


def measure(rounds=ROUNDS):
    from node_processes import ports_below_ephemeral
    from p2pool.testing import regtest
    from p2pool.work.cpuminer import StratumMiner

    worst = 0.0
    with regtest.RegtestNetwork(regtest.bitcoind_path()) as network, tempfile.TemporaryDirectory() as datadir:
        bitcoind = network.first
        ports = ports_below_ephemeral(2)
        process = _node(bitcoind, datadir, ports)
        try:
            _wait_ready(datadir, 0)
            miner = StratumMiner('127.0.0.1', ports[1], bitcoind.wallet_address()).connect()
            gaps, stop, failure = [], threading.Event(), []

            def submit_loop():
                try:
                    while not stop.is_set():
                        job = miner.job
                        started = time.perf_counter()
                        miner.submit(job, os.urandom(4), int.from_bytes(os.urandom(4), 'little'))
                        gaps.append(time.perf_counter() - started)
                except Exception as e:
                    failure.append(e)
            thread = threading.Thread(target=submit_loop, daemon=True)
            thread.start()
            for _ in range(rounds):
                time.sleep(1)
                first = len(gaps)
                lines = _log_lines(datadir)
                successor = _node(bitcoind, datadir, ports, ['--takeover'])
                if process.wait(60) != 0:
                    raise RuntimeError('the old process exited with %s' % process.returncode)
                _wait_ready(datadir, lines)
                process = successor
                time.sleep(0.5)
                if failure:
                    raise RuntimeError('the miner lost its connection: %r' % failure[0])
                worst = max(worst, max(gaps[first:]))
            stop.set()
            thread.join(10)
            miner.close()
        finally:
            process.terminate()
            process.wait(30)
    return worst * 1000


def takeover_gap_ms():
    return round(measure(), 1), 'ms'


BENCHMARKS = {'takeover_gap_ms': takeover_gap_ms}


if __name__ == '__main__':
    print('takeover_gap_ms %.1f ms' % measure())
