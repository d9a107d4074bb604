"""The real half of sim_vs_real_stale_ratio: 6 `p2pool` processes on bsv_regtest (bench_sim_validation.py).

One regtest bitcoind serves all nodes (so every node's bitcoind learns a block as soon as
the node that found it submits it); node i dials nodes i+1 and i+2 (a ring with chords)
through DelayRelays holding every byte DELAY seconds each way, and nothing else
(--outgoing-conns 0, --disable-advertise). Each node has one CPU miner paced at a fixed
hash rate (p2pool.work.cpuminer --hash-rate), with the username suffix `/0+1e15` so that its
shares are at the pool's minimum target, as the simulator's miners mine, and it submits
shares only (MINER_SUFFIX).

The nodes start from an equilibrium history (testchain.equilibrium_chain): every store holds the
same chain, mined with the real generator and the real proof of work, whose retarget has
come down from MAX_TARGET to the target at which the paced miners' total hash rate makes one
share per SHARE_PERIOD, with its last share stamped at the moment the miners start. So the
real run has no start-up transient (a fresh chain at MAX_TARGET makes hundreds of shares a
second until the retarget catches up) and the simulator's own start (world.py: a history at
its equilibrium target) is the same situation.

The stale rate is sum(orphan + dead) / sum(total) over the nodes' /local_stats, as deltas
between the start and the end of the window; the nodes' console logs give every share's
time and whether it was dead on arrival (the intervals, and the DOA shares that still made
it into the chain, which /local_stats does not count as stale).

The work delay is measured too (`Observer`): one extra Stratum connection per node records
when each job arrives and which block it builds on; bitcoind logs (with -logtimemicros) when
it took each block. Per block and node, the time from bitcoind's UpdateTip to the first job
on that block is the whole path bitcoind -> long poll -> template -> new work -> Stratum
notify; its mean is what the simulator gets as its work delay. The second job on a block at
a node other than its finder comes when the share itself has arrived over P2Pool and become
the node's best (`share_delays`, by hops from the finder): 200 ms per hop plus what the nodes
take to build, send, verify and adopt a share, which the simulator does not model.
"""
import calendar
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from p2pool import config
from p2pool.testing.testchain import equilibrium_chain, make_addresses

NODES = 6
DELAY = 0.2
REGTEST_BITS = 0x207fffff
#: shares at the pool's minimum target (/0), and pseudoshares no easier than shares (+huge): on regtest
#: nearly every hash meets the block target, so every pseudoshare would also be a block, a new
#: template and new work on every node, which the scenario (every share is a block) does not have
MINER_SUFFIX = '/0+1e15'
_GOT_SHARE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) GOT SHARE! \S+ ([0-9a-f]{64}) .*?( DEAD ON ARRIVAL)?$')
_UPDATE_TIP = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d+) .*UpdateTip: new best=([0-9a-f]{64})')


def _get(port, path):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/%s' % (port, path), timeout=5) as reply:
            return json.loads(reply.read())
    except (OSError, ValueError):
        return None


def _counts(worker_ports):
    """[(shares, orphan, dead)] of each node's miners so far (/local_stats)."""
    counts = []
    for port in worker_ports:
        shares = (_get(port, 'local_stats') or {}).get('shares') or {}
        counts.append((shares.get('total', 0), shares.get('orphan', 0), shares.get('dead', 0)))
    return counts


def _log_shares(path):
    """[(unix time, share hash, dead on arrival)] of the GOT SHARE lines of a node's console log."""
    found = []
    with open(path, errors='replace') as log:
        for line in log:
            match = _GOT_SHARE.match(line.rstrip('\n'))
            if match:
                stamp = time.mktime(time.strptime(match.group(1), '%Y-%m-%d %H:%M:%S'))
                found.append((stamp, match.group(2), bool(match.group(3))))
    return found


class Observer(threading.Thread):
    """Stratum connections that never mine: (time, node index, previous block) of every job they get."""

    def __init__(self, worker_ports, usernames):
        super().__init__(daemon=True)
        from p2pool.work.cpuminer import StratumMiner
        # each with its node's miner's username: the node's work cache serves both with one generation
        self.miners = [StratumMiner('127.0.0.1', port, username).connect()
                       for port, username in zip(worker_ports, usernames)]
        self.jobs = []
        self.stopping = False

    def run(self):
        from p2pool.work.getwork import swap4
        seen = [0] * len(self.miners)
        by_socket = {miner.sock: index for index, miner in enumerate(self.miners)}
        while not self.stopping:
            ready = select.select(list(by_socket), [], [], 0.2)[0]
            now = time.time()
            for sock in ready:
                index = by_socket[sock]
                miner = self.miners[index]
                try:
                    miner.poll()
                except (OSError, ValueError):
                    del by_socket[sock]
                    continue
                for method, params in miner.notifications[seen[index]:]:
                    if method == 'mining.notify':
                        self.jobs.append((now, index, swap4(bytes.fromhex(params[1]))[::-1].hex()))
                seen[index] = len(miner.notifications)

    def stop(self):
        self.stopping = True
        self.join(timeout=5)
        for miner in self.miners:
            miner.close()


def _block_times(log_path):
    """{block hash: unix time bitcoind made it its tip} from a -logtimemicros debug log."""
    times = {}
    with open(log_path, errors='replace') as log:
        for line in log:
            match = _UPDATE_TIP.match(line)
            if match:
                stamp = calendar.timegm(time.strptime(match.group(1), '%Y-%m-%d %H:%M:%S'))
                times[match.group(3)] = stamp + float(match.group(2))
    return times


def _jobs_on(jobs):
    """{(block, node index): [times of the node's jobs on that block]}."""
    on = {}
    for stamp, index, previous in jobs:
        on.setdefault((previous, index), []).append(stamp)
    return on


def work_delays(jobs, block_times, start, end):
    """Per block taken in [start, end) and node: seconds from bitcoind's tip to the node's first job on it."""
    on = _jobs_on(jobs)
    return [on[(block, index)][0] - taken for block, taken in block_times.items() if start <= taken < end
            for index in range(NODES) if (block, index) in on]


def ring_hops(a, b):
    """P2Pool hops between nodes a and b of the ring with chords (i dials i+1 and i+2)."""
    around = abs(a - b) % NODES
    return (min(around, NODES - around) + 1) // 2


def share_delays(jobs, block_times, finders, start, end):
    """{hops: [seconds]}: per share S taken in [start, end) and node j other than its finder, from
    bitcoind's tip S to j's second job on S. The first is the new template (the shared bitcoind has
    S at once); the second is S itself arriving over P2Pool and becoming j's best share."""
    on = _jobs_on(jobs)
    delays = {}
    for block, taken in block_times.items():
        finder = finders.get(block)
        if finder is None or not start <= taken < end:
            continue
        for index in range(NODES):
            times = on.get((block, index), [])
            if index != finder and len(times) >= 2:
                delays.setdefault(ring_hops(finder, index), []).append(times[1] - taken)
    return delays


def _summary_ms(values):
    if not values:
        return {'mean': None, 'median': None, 'p90': None, 'samples': 0}
    ordered = sorted(values)
    return {'mean': round(1000 * statistics.fmean(values), 1), 'median': round(1000 * statistics.median(values), 1),
            'p90': round(1000 * ordered[int(0.9 * len(ordered))], 1), 'samples': len(values)}


def _load():
    return [round(value, 2) for value in os.getloadavg()]


def run(hash_rate_per_miner, mining_seconds, settle_seconds, call_in_reactor, reactor):
    """Run the real network; the stale counts of the window [settle, mining_seconds - 5] after the miners start."""
    from p2pool.testing import regtest
    from p2pool.testing.delay_relay import DelayRelay
    from p2pool.store.sharestore import ShareStore
    net = config.load_network('bsv_regtest')
    root = tempfile.mkdtemp(prefix='p2pool-simval-')
    bitcoind = regtest.RegtestBitcoind().start(datadir=os.path.join(root, 'bitcoind'),
                                               extra_args=['-logtimemicros'])
    children, miners, observer = [], [], None
    load = {'before': _load()}
    try:
        bitcoind.mine(101)
        tip = int(bitcoind.rpc('getbestblockhash'), 16)
        ports = regtest.free_ports(2 * NODES)
        p2p_ports, worker_ports = ports[:NODES], ports[NODES:]
        relay_ports = {}
        for i in range(NODES):
            for step in (1, 2):
                j = (i + step) % NODES
                relay = DelayRelay(p2p_ports[j], DELAY, reactor)
                relay_ports[(i, j)] = call_in_reactor(relay.listen)
        addresses = [bitcoind.rpc('getnewaddress') for _ in range(NODES)]
        # the miners start when the history ends: after the nodes have loaded it and connected
        startup_guess = 25.0
        built = time.time()
        history = equilibrium_chain(net, hash_rate_per_miner * NODES, time.time() + startup_guess,
                                    make_addresses(net, 1, seed=b'simvalid-history')[0], REGTEST_BITS, tip)
        history_seconds = time.time() - built
        for i in range(NODES):
            folder = os.path.join(root, 'node%d' % i)
            os.makedirs(config.datadir_for(folder, net))
            store = ShareStore(os.path.join(config.datadir_for(folder, net), 'p2pool.sqlite3'))
            store.add_shares(history)
            store.close()
            args = [sys.executable, '-m', 'p2pool.app.main', '--net', 'bsv_regtest', '--datadir', folder,
                    '--p2pool-port', str(p2p_ports[i]), '-w', '127.0.0.1:%d' % worker_ports[i], '--disable-upnp',
                    '--disable-advertise', '--outgoing-conns', '0', '-a', addresses[i]]
            for step in (1, 2):
                args += ['-n', '127.0.0.1:%d' % relay_ports[(i, (i + step) % NODES)]]
            args += bitcoind.cli_args()
            log = open(os.path.join(folder, 'console.log'), 'w')
            children.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + 120
        while any(_get(port, 'uptime') is None for port in worker_ports):
            if time.monotonic() > deadline:
                raise RuntimeError('the nodes did not start; see %s' % root)
            time.sleep(0.5)
        while time.monotonic() < deadline and any(
                len((_get(port, 'peer_addresses') or '').split()) < 4 for port in worker_ports):
            time.sleep(0.5)   # every node has its 2 outgoing and 2 incoming peers
        usernames = [address + MINER_SUFFIX for address in addresses]
        observer = Observer(worker_ports, usernames)
        observer.start()
        wait = history[-1].timestamp - time.time()
        time.sleep(max(0.0, wait))
        miners_started = time.time()
        for i in range(NODES):
            miners.append(subprocess.Popen(
                [sys.executable, '-m', 'p2pool.work.cpuminer', '--hash-rate=%g' % hash_rate_per_miner,
                 '127.0.0.1:%d' % worker_ports[i], usernames[i], str(mining_seconds)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        time.sleep(settle_seconds)
        started, before = time.time(), _counts(worker_ports)
        load['start'] = _load()
        time.sleep(mining_seconds - settle_seconds - 5)
        ended, after = time.time(), _counts(worker_ports)
        load['end'] = _load()
        miner_reports = [miner.communicate(timeout=60)[0].strip() for miner in miners]
        observer.stop()
        block_times = _block_times(bitcoind.log_path)
        delays = work_delays(observer.jobs, block_times, started, ended)
        total = sum(a[0] - b[0] for a, b in zip(after, before))
        orphan = sum(a[1] - b[1] for a, b in zip(after, before))
        dead = sum(a[2] - b[2] for a, b in zip(after, before))
        logged = [_log_shares(os.path.join(root, 'node%d' % i, 'console.log')) for i in range(NODES)]
        in_window = [entry for entries in logged for entry in entries if started <= entry[0] < ended]
        finders = {share_hash: index for index, entries in enumerate(logged) for _, share_hash, _ in entries}
        by_hops = share_delays(observer.jobs, block_times, finders, started, ended)
        result = {
            'shares': total, 'orphan': orphan, 'dead': dead, 'stale': orphan + dead,
            'rate': (orphan + dead) / total if total else None,
            'seconds': round(ended - started, 1),
            'interval_s': round((ended - started) / total, 3) if total else None,
            'doa_logged': sum(1 for _, _, doa in in_window if doa), 'shares_logged': len(in_window),
            'per_node': [a[0] - b[0] for a, b in zip(after, before)],
            'work_delay_ms': _summary_ms(delays),
            'share_to_work_ms': {str(hops): _summary_ms(values) for hops, values in sorted(by_hops.items())},
            'late_start_s': round(miners_started - history[-1].timestamp, 1),
            'history': {'shares': len(history), 'build_s': round(history_seconds, 1),
                        'last_target_bits': '%08x' % history[-1].share_info['bits']},
            'hash_rate_per_miner': hash_rate_per_miner, 'miners': miner_reports, 'load': load,
        }
    except BaseException:
        print('sim_vs_real_stale_ratio: the real run failed; its files are in %s' % root, file=sys.stderr)
        raise
    finally:
        if observer is not None and observer.is_alive():
            observer.stop()
        for child in miners + children:
            if child.poll() is None:
                child.terminate()
        for child in miners + children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        bitcoind.close()
    shutil.rmtree(root, ignore_errors=True)
    return result
