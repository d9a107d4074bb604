"""Figures for the worker port with 1,000 and with 10,000 simultaneous Stratum connections.

The node side (WorkBridge on a fixed template, Stratum + getwork on one port, the connection caps
on) runs in a child process; the miners are spread over client processes (bench/stratum_load.py).

    notify_fanout_ms         median over 5 template changes of the time from the change (in the
                             node) until the new job of the last of 1,000 miners had arrived: the
                             kernel's receive time of that miner's segment (SO_TIMESTAMPNS), as a
                             miner on another machine would have it
    getwork_rps              getwork requests answered per second (8 keep-alive clients), 1,000
                             Stratum connections held meanwhile
    notify_fanout_10000_ms   the same fan-out to 10,000 miners (goal < 250 ms)
    notify_fanout_10000_read_ms  the same, until the last client process had also read it: adds
                             the client processes' own time, which shares this machine's 2 cores
    notify_fanout_10000_cpu_ms  CPU time (user + system) the node spends on one such change: the
                             part of the fan-out that does not depend on how busy the machine is
    stratum_submit_p50_ms / _p99_ms  round trip of one valid mining.submit (about one in 16 is also
                             a share), one at a time over the miners, with 10,000 connected (p99 < 10)
    stratum_rss_10000_mb     the node's resident memory holding 10,000 authorized connections (< 400)

Each measurement runs once per bench/run.py invocation and is shared by its figures.
"""
import base64
import http.client
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from common import measured_once, percentile  # noqa: E402  (bench/ is not a package)
import stratum_load  # noqa: E402

FANOUT_ROUNDS = 5
SUBMISSIONS = 3000
GETWORK_SECONDS = 3.0
GETWORK_CLIENTS = 8
CLIENT_PROCESSES = 4


def _username():
    from p2pool.bitcoin.data import target_to_difficulty
    from p2pool.config import load_network
    from p2pool.testing.testchain import make_addresses
    net = load_network('bsv_regtest')
    return '%s.bench+%r' % (make_addresses(net, 1, seed=b'bench')[0],
                            target_to_difficulty(stratum_load.PSEUDOSHARE_TARGET))


def _getwork_rps(port, username):
    auth = 'Basic ' + base64.b64encode(username.encode() + b':x').decode()
    body = b'{"id":1,"method":"getwork","params":[]}'
    counts, stop = [0] * GETWORK_CLIENTS, time.monotonic() + GETWORK_SECONDS

    def client(index):
        connection = http.client.HTTPConnection('127.0.0.1', port)
        while time.monotonic() < stop:
            connection.request('POST', '/', body, {'Authorization': auth, 'Content-Type': 'application/json'})
            if 'result' in json.loads(connection.getresponse().read()):
                counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(GETWORK_CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def measure(connections, submissions=0, getwork=False):
    username = _username()
    node = stratum_load.NodeProcess(connections)
    fleet = None
    try:
        fleet = stratum_load.Fleet(node.port, username, connections, CLIENT_PROCESSES)
        result = {'rss': node.rss_mb()}
        fanouts, reads, cpu = [], [], []
        for _ in range(FANOUT_ROUNDS):
            arrived, read = fleet.fanout(node)
            fanouts.append(arrived)
            reads.append(read)
            cpu.append(node.fanout_cpu_ms())
        result.update(fanout=percentile(fanouts, 0.5), fanout_read=percentile(reads, 0.5),
                      fanout_cpu=percentile(cpu, 0.5))
        if submissions:
            latencies = fleet.submit_latencies(submissions)
            result.update(submit_p50=percentile(latencies, 0.5), submit_p99=percentile(latencies, 0.99))
        if getwork:
            result['getwork_rps'] = _getwork_rps(node.port, username)
    finally:
        if fleet is not None:
            fleet.close()
        node.close()
    return result


def _small():
    return measured_once('stratum1000', lambda: measure(1000, getwork=True))


def _large():
    return measured_once('stratum10000', lambda: measure(10000, submissions=SUBMISSIONS))


BENCHMARKS = {
    'notify_fanout_ms': lambda: (round(_small()['fanout'], 3), 'ms'),
    'getwork_rps': lambda: (round(_small()['getwork_rps'], 1), 'requests/s'),
    'notify_fanout_10000_ms': lambda: (round(_large()['fanout'], 3), 'ms'),
    'notify_fanout_10000_read_ms': lambda: (round(_large()['fanout_read'], 3), 'ms'),
    'notify_fanout_10000_cpu_ms': lambda: (round(_large()['fanout_cpu'], 3), 'ms'),
    'stratum_submit_p50_ms': lambda: (round(_large()['submit_p50'], 3), 'ms'),
    'stratum_submit_p99_ms': lambda: (round(_large()['submit_p99'], 3), 'ms'),
    'stratum_rss_10000_mb': lambda: (round(_large()['rss'], 1), 'MB'),
}


if __name__ == '__main__':
    for connections in (1000, 10000):
        for name, value in measure(connections, submissions=SUBMISSIONS, getwork=connections == 1000).items():
            print(connections, name, round(value, 3))
