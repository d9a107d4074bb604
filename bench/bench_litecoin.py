"""Figures for Litecoin (issue 15): scrypt share checks, chain load, and work latency on litecoind.

    ltc_verify_shares_per_s  what a syncing node does with a downloaded 2 x CHAIN_LENGTH = 17,280-share
                             chain of networks/litecoin.toml (easy MAX_TARGET, 500 payees in rotation,
                             segwit layout, version 35): ShareChain.parse_shares of each sharereq reply
                             of DOWNLOAD_BATCH records (the path of p2p/sharesync.py: decode the
                             batch, then the scrypt PoW of its headers on one thread per CPU), then
                             check_share of every share, oldest first, with the whole chain in the
                             tracker. Goal >= 2,000 shares/s.
    ltc_parse_shares_per_s   the parse_shares part of it alone (decode, hash link, scrypt PoW)
    ltc_scrypt_us            one scrypt(N=1024, r=1, p=1) proof of work by hashlib (OpenSSL), the fallback
    ltc_scrypt_c_us          the same by the C accelerator (p2pool/bitcoin/_scrypt.c), one header
    ltc_scrypt_c_batch_us    the accelerator's time per header in a batch (_scrypt.scrypt_many: two
                             headers at a time through ROMix) on one thread
    ltc_chain_load_s         a restarting node loads that chain from SQLite (goal < 3 s)
    ltc_work_latency_p99_ms  new litecoind block (generatetoaddress 1 on a regtest Litecoin Core
                             0.21.2.1) -> mining.notify at a stratum client of a running
                             `run_p2pool.py --net litecoin_regtest` (60 blocks; goal < 50 ms)

The chain is mined once with p2pool.testing.testchain and cached under ~/.cache/p2pool/bench/.
"""
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]
from common import cached_wires, measured_once, percentile  # noqa: E402  (bench/ is not a package)

from p2pool.config import load_network  # noqa: E402
from p2pool.sharechain import verify  # noqa: E402
from p2pool.sharechain.chain import ShareChain  # noqa: E402
from p2pool.sharechain.share import Share  # noqa: E402
from p2pool.sharechain.tracker import Tracker  # noqa: E402
from p2pool.testing import testchain  # noqa: E402

PAYEES = 500
#: records in a download reply on average: the download loop asks for parents drawn from [0, 500)
#: (p2p/sharesync.py DOWNLOAD_PARENTS), and a reply holds the requested share and its parents
DOWNLOAD_BATCH = 250
BLOCK_TARGET = 2**256 // 4001 - 1
CACHE_FORMAT = 'v1'
LATENCY_BLOCKS = 60


def bench_network():
    return testchain.easy_network(load_network('litecoin'))


def _cache_path(net):
    folder = os.environ.get('P2POOL_BENCH_CACHE') or os.path.join(os.path.expanduser('~'), '.cache', 'p2pool', 'bench')
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, 'ltc-sharechain-%s-%d-%d.bin' % (CACHE_FORMAT, 2 * net.CHAIN_LENGTH, PAYEES))


def chain_wire(net):
    return cached_wires(_cache_path(net), lambda: testchain.mine_chain(
        net, 2 * net.CHAIN_LENGTH, addresses=testchain.make_addresses(net, PAYEES), block_target=BLOCK_TARGET))


def _download_replies(net):
    """The chain as a syncing node receives it: sharereq replies of DOWNLOAD_BATCH {type, contents} records."""
    from p2pool.bitcoin.serialize import VarInt, VarStr
    records = []
    for wire in chain_wire(net):
        share_type, pos = VarInt.read(wire, 0)
        contents, _end = VarStr.read(wire, pos)
        records.append({'type': share_type, 'contents': bytes(contents)})
    return [records[start:start + DOWNLOAD_BATCH] for start in range(0, len(records), DOWNLOAD_BATCH)]


def _parse_replies(net, replies):
    chain = ShareChain(net, clock=lambda: 2_000_000_000)
    start = time.perf_counter()
    shares = [share for reply in replies for share in chain.parse_shares(reply, peer_addr=('127.0.0.1', 9338))]
    return shares, time.perf_counter() - start


def ltc_verify_shares_per_s():
    net = bench_network()
    shares, parse_seconds = _parse_replies(net, _download_replies(net))
    tracker = Tracker()
    for share in shares:
        tracker.add(share)
    start = time.perf_counter()
    for share in shares:
        verify.check_share(tracker, share, now=share.timestamp)
    return len(shares) / (parse_seconds + time.perf_counter() - start), 'shares/s'


def ltc_parse_shares_per_s():
    net = bench_network()
    shares, parse_seconds = _parse_replies(net, _download_replies(net))
    return len(shares) / parse_seconds, 'shares/s'


def _per_call_us(function, calls=200, rounds=5):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times) * 1e6


def ltc_scrypt_us():
    header = bytes(range(80))
    return _per_call_us(lambda: hashlib.scrypt(header, salt=header, n=1024, r=1, p=1, dklen=32)), 'us'


def _accelerator():
    try:
        from p2pool.bitcoin import _scrypt
    except ImportError:
        raise RuntimeError('the C accelerator p2pool/bitcoin/_scrypt.c is not built (pip install -e .)') from None
    return _scrypt


def ltc_scrypt_c_us():
    accelerator, header = _accelerator(), bytes(range(80))
    return _per_call_us(lambda: accelerator.scrypt(header)), 'us'


def ltc_scrypt_c_batch_us():
    accelerator = _accelerator()
    headers = b''.join(bytes([index]) * 80 for index in range(DOWNLOAD_BATCH))
    return _per_call_us(lambda: accelerator.scrypt_many(headers, 80), calls=2) / DOWNLOAD_BATCH, 'us'


def ltc_chain_load_s():
    from p2pool.store.sharestore import ShareStore
    net = bench_network()
    path = _cache_path(net) + '.sqlite3'
    if not os.path.exists(path):
        store = ShareStore(path + '.tmp')
        shares = [Share.from_wire(net, wire) for wire in chain_wire(net)]
        store.add_shares(shares)
        store.mark_verified([share.hash for share in shares])
        store.close()
        os.replace(path + '.tmp', path)
    start = time.perf_counter()
    chain = ShareChain(net, ShareStore(path), clock=lambda: 2_000_000_000)
    loaded = chain.load()
    elapsed = time.perf_counter() - start
    assert loaded == 2 * net.CHAIN_LENGTH and chain.best_share_hash.value is not None
    return elapsed, 's'


def measure_work_latency(blocks=LATENCY_BLOCKS):
    """Milliseconds from `generatetoaddress 1` to the stratum notify of work on that block."""
    from p2pool.testing.regtest import free_ports, wait_until
    from p2pool.testing.regtest_litecoin import LitecoinRegtestNetwork
    from p2pool.work.cpuminer import StratumMiner
    latencies = []
    with tempfile.TemporaryDirectory(prefix='p2pool-ltc-bench-') as root, \
            LitecoinRegtestNetwork(root_dir=os.path.join(root, 'litecoind')) as network:
        litecoind = network.first
        p2p_port, worker_port = free_ports(2)
        console = open(os.path.join(root, 'console.log'), 'wb')
        node = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, 'run_p2pool.py'), '--net', 'litecoin_regtest', '--datadir',
             os.path.join(root, 'node'), '--p2pool-port', str(p2p_port), '-w', str(worker_port), '--disable-upnp',
             '-a', litecoind.wallet_address(), *litecoind.cli_args()],
            stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            def connected():
                try:
                    return StratumMiner('127.0.0.1', worker_port, litecoind.wallet_address()).connect()
                except OSError:
                    return None
            miner = wait_until(connected, 60, 'the node to serve stratum work', interval=0.2)
            address = litecoind.wallet_address()
            for number in range(3 + blocks):
                started = time.perf_counter()
                block_hash = litecoind.rpc('generatetoaddress', 1, address)[0]
                wire_order = bytes.fromhex(block_hash)[::-1]
                prevhash = b''.join(wire_order[i:i + 4][::-1] for i in range(0, 32, 4)).hex()   # stratum order
                while miner.job['prevhash'] != prevhash:
                    if miner.read_message(10) is None:
                        raise RuntimeError('no stratum work for block %s within 10 s' % block_hash)
                if number >= 3:
                    latencies.append((time.perf_counter() - started) * 1000)
            miner.close()
        finally:
            node.terminate()
            node.wait(30)
            console.close()
    return latencies


def _latencies():
    return measured_once('ltc-work-latency', measure_work_latency)


def ltc_work_latency_p50_ms():
    return round(percentile(_latencies(), 0.50), 3), 'ms'


def ltc_work_latency_p99_ms():
    return round(percentile(_latencies(), 0.99), 3), 'ms'


BENCHMARKS = {
    'ltc_verify_shares_per_s': ltc_verify_shares_per_s,
    'ltc_parse_shares_per_s': ltc_parse_shares_per_s,
    'ltc_scrypt_us': ltc_scrypt_us,
    'ltc_scrypt_c_us': ltc_scrypt_c_us,
    'ltc_scrypt_c_batch_us': ltc_scrypt_c_batch_us,
    'ltc_chain_load_s': ltc_chain_load_s,
    'ltc_work_latency_p50_ms': ltc_work_latency_p50_ms,
    'ltc_work_latency_p99_ms': ltc_work_latency_p99_ms,
}
