"""How many of a fast miner's submissions a node accepts on bsv_regtest (issue 16 finding 12).

A real regtest bitcoind pair, a real node process (`run_p2pool.py`), and
p2pool.testing.fast_miner.FastStratumMiner hashing flat out for MINING_SECONDS and
submitting without waiting for replies, as cpuminer does. On bsv_regtest every share is a
block and every block is new work.

    fast_miner_accept_pct        the username pins the pseudoshare difficulty at one share
                                 (256 hashes): every submission is a share and a block, some
                                 600 a second here, the submission rate of a 10 MH/s cpuminer
                                 whose shares are 30 times harder (the most the pool allows)
    fast_miner_plain_accept_pct  a plain address as username (vardiff chooses), flat out
    fast_miner_hash_rate         what the Python miner hashed, H/s

All figures come from one measurement (cached for the run.py process that asked).
"""
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from common import measured_once  # noqa: E402  (bench/ is not a package)

MINING_SECONDS = 20.0
SHARE_DIFFICULTY = '+0.0000000596'
RUN_P2POOL = os.path.join(os.path.dirname(HERE), 'run_p2pool.py')


def _start_node(bitcoind, datadir, address):
    """A node process on free ports (tried again when another process took a port first)."""
    from p2pool.testing import regtest
    for attempt in range(5):
        p2p_port, worker_port = regtest.free_ports(2)
        args = [sys.executable, RUN_P2POOL, '--net', 'bsv_regtest', '--datadir', os.path.join(datadir, str(attempt)),
                '--p2pool-port', str(p2p_port), '-w', str(worker_port), '--disable-upnp', '-a', address,
                *bitcoind.cli_args()]
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen('http://127.0.0.1:%d/web/version' % worker_port, timeout=2).read()
                return process, worker_port
            except OSError:
                time.sleep(0.2)
        _stop(process)
    raise RuntimeError('the node did not start')


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _mine(bitcoind, suffix):
    from p2pool.testing.fast_miner import FastStratumMiner
    with tempfile.TemporaryDirectory(prefix='p2pool-bench-fast-') as datadir:
        process, port = _start_node(bitcoind, datadir, bitcoind.wallet_address())
        try:
            miner = FastStratumMiner('127.0.0.1', port, bitcoind.rpc('getnewaddress') + suffix).connect()
            try:
                return miner.run(MINING_SECONDS)
            finally:
                miner.close()
        finally:
            _stop(process)


def _measure():
    from p2pool.testing import regtest
    with tempfile.TemporaryDirectory(prefix='p2pool-bench-regtest-') as root:
        network = regtest.RegtestNetwork(regtest.bitcoind_path(), root_dir=root).start()
        try:
            pinned = _mine(network.first, SHARE_DIFFICULTY)
            plain = _mine(network.first, '')
        finally:
            network.stop()
    return {'pinned': pinned, 'plain': plain}


def _figure(key, field, unit):
    def figure():
        return measured_once('fast_miner', _measure)[key][field], unit
    return figure


BENCHMARKS = {
    'fast_miner_accept_pct': _figure('pinned', 'accepted_pct', '%'),
    'fast_miner_plain_accept_pct': _figure('plain', 'accepted_pct', '%'),
    'fast_miner_hash_rate': _figure('pinned', 'hash_rate', 'H/s'),
}
