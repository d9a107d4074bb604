"""Figures for the worker port with 1,000 simultaneous Stratum connections.

The node side (WorkBridge on a fixed template, Stratum + getwork on one port) runs
in a child process (`--serve`), so client and server do not share an interpreter;
this process holds the 1,000 connections with non-blocking sockets.

    stratum_submit_p50_ms / _p99_ms  round trip of one mining.submit (a valid
                     pseudoshare; about one in 16 is also a share), one at a time,
                     cycling over the 1,000 connected miners
    notify_fanout_ms the median over 5 template changes of the time from the change
                     (in the node) to the last of the 1,000 miners holding the new job
    getwork_rps      getwork requests answered per second (8 keep-alive clients)

All figures come from one measurement, cached on disk for the run.py process that
asked (bench/run.py starts a fresh process per figure).
"""
import base64
import hashlib
import http.client
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
from common import measured_once, percentile  # noqa: E402  (bench/ is not a package)

CONNECTIONS = 1000
SUBMISSIONS = 3000
FANOUT_ROUNDS = 5
GETWORK_SECONDS = 3.0
GETWORK_CLIENTS = 8
SHARE_TARGET = 2**246 - 1          # the network's MAX_TARGET: one pseudoshare in 16 is a share
PSEUDOSHARE_TARGET = 2**250        # every miner's fixed +D difficulty
BLOCK_BITS = 0x1d00ffff            # mainnet-hard: no blocks during the benchmark




# --- the node (child process) ------------------------------------------------------------

def serve():
    import types

    from twisted.internet import reactor
    from twisted.web import resource

    from p2pool.bitcoin.template import Template
    from p2pool.config import load_network
    from p2pool.testing.testchain import easy_network, make_addresses
    from p2pool.sharechain.tracker import Tracker
    from p2pool.events import Event
    from p2pool.work.bridge import WorkBridge
    from p2pool.work.getwork import GetworkServer, attach_getwork
    from p2pool.work.stratum import StratumFactory
    from p2pool.work.switch import listen_worker_port
    from p2pool.work.username import PayeeResolver

    net = easy_network(load_network('bsv_regtest'), max_target=SHARE_TARGET)

    def template(previous_block):
        now = time.time()
        return Template(version=0x20000000, previous_block=previous_block, height=1000, bits=BLOCK_BITS,
                        time=int(now), subsidy=5000000000, coinbaseflags=b'', transactions=[],
                        transaction_keys=[], transaction_fees=[], rules=[], last_update=now)

    source = types.SimpleNamespace(current=template(1), changed=Event())
    node = types.SimpleNamespace(peer_count=lambda: 1, best_share_hash=None, watch_new_work=lambda bump: None)
    tracker = Tracker()
    payees = PayeeResolver(net.PARENT, make_addresses(net, 1, seed=b'node')[0])
    bridge = WorkBridge(net, source, tracker, node, payees, on_share=lambda share, dead: tracker.add(share),
                        on_block=lambda block, segwit: None)
    root = resource.Resource()
    attach_getwork(root, GetworkServer(bridge))
    port = listen_worker_port(root, StratumFactory(bridge, net), 0, interface='127.0.0.1', reactor=reactor)
    print(port.getHost().port, flush=True)

    def new_work(number):
        started = time.monotonic()
        source.current = template(1000 + number)
        source.changed.happened(source.current)
        print(repr(started), flush=True)

    def commands():
        for number, line in enumerate(sys.stdin):
            if line.strip() == 'newwork':
                reactor.callFromThread(new_work, number)
        reactor.callFromThread(reactor.stop)

    threading.Thread(target=commands, daemon=True).start()
    reactor.run(installSignalHandlers=False)


# --- the miners (this process) --------------------------------------------------------------

class Miner:
    def __init__(self, port, username):
        self.sock = socket.create_connection(('127.0.0.1', port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer, self.job, self.jobs, self.extranonce1 = b'', None, 0, b''
        self.username, self.counter = username, 0
        self.send(1, 'mining.subscribe', [])
        self.send(2, 'mining.authorize', [username, 'x'])

    def send(self, request_id, method, params):
        self.sock.sendall(json.dumps({'id': request_id, 'method': method, 'params': params}).encode() + b'\n')

    def read(self):
        """Messages available now (the socket is non-blocking)."""
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            raise ConnectionError('the node closed a connection')
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b'\n')
        messages = [json.loads(line) for line in lines if line.strip()]
        for message in messages:
            if message.get('method') == 'mining.notify':
                self.job, self.jobs = message['params'], self.jobs + 1
            elif message.get('id') == 1 and message.get('result'):
                self.extranonce1 = bytes.fromhex(message['result'][1])
        return messages

    def solution(self):
        job = self.job
        self.counter += 1
        extranonce2 = struct.pack('<I', self.counter)
        coinbase = bytes.fromhex(job[2]) + self.extranonce1 + extranonce2 + bytes.fromhex(job[3])
        root = hashlib.sha256(hashlib.sha256(coinbase).digest()).digest()
        for branch in job[4]:
            root = hashlib.sha256(hashlib.sha256(root + bytes.fromhex(branch)).digest()).digest()
        previous = bytes.fromhex(job[1])
        previous = b''.join(previous[i:i + 4][::-1] for i in range(0, 32, 4))
        prefix = struct.pack('<I32s32sII', int(job[5], 16), previous, root, int(job[7], 16), int(job[6], 16))
        for nonce in range(2**32):
            digest = hashlib.sha256(hashlib.sha256(prefix + struct.pack('<I', nonce)).digest()).digest()
            if int.from_bytes(digest, 'little') <= PSEUDOSHARE_TARGET:
                return [self.username, job[0], extranonce2.hex(), job[7], '%08x' % nonce]


def _pump(selector, until, timeout=60):
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError('the node did not answer in time')
        for key, _ in selector.select(0.5):
            key.data.read()


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


def measure():
    from p2pool.bitcoin.data import target_to_difficulty
    from p2pool.config import load_network
    from p2pool.testing.testchain import make_addresses

    net = load_network('bsv_regtest')
    username = '%s.bench+%r' % (make_addresses(net, 1, seed=b'bench')[0], target_to_difficulty(PSEUDOSHARE_TARGET))
    node = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--serve'], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    selector = selectors.DefaultSelector()
    miners = []
    try:
        port = int(node.stdout.readline())
        for _ in range(CONNECTIONS):
            miner = Miner(port, username)
            miner.sock.setblocking(False)
            selector.register(miner.sock, selectors.EVENT_READ, miner)
            miners.append(miner)
        _pump(selector, lambda: all(m.job is not None and m.extranonce1 for m in miners))

        latencies = []
        for index in range(SUBMISSIONS):
            miner = miners[index % CONNECTIONS]
            params = miner.solution()
            started = time.perf_counter()
            miner.send(1000 + index, 'mining.submit', params)
            reply = None
            while reply is None:
                selector.select(1)
                reply = next((m for m in miner.read() if m.get('id') == 1000 + index), None)
            latencies.append((time.perf_counter() - started) * 1000)
            if reply.get('result') is not True:
                raise RuntimeError('submission refused: %r' % (reply,))

        fanouts = []
        for _ in range(FANOUT_ROUNDS):
            before = [m.jobs for m in miners]
            node.stdin.write('newwork\n')
            node.stdin.flush()
            started = float(node.stdout.readline())
            _pump(selector, lambda before=before: all(m.jobs > b for m, b in zip(miners, before)))
            fanouts.append((time.monotonic() - started) * 1000)
        rps = _getwork_rps(port, username)
    finally:
        for miner in miners:
            miner.sock.close()
        node.stdin.close()
        node.wait(30)
    return {'submit_p50': percentile(latencies, 0.5), 'submit_p99': percentile(latencies, 0.99),
            'fanout': percentile(fanouts, 0.5), 'getwork_rps': rps}


def _cached():
    return measured_once('stratum', measure)


BENCHMARKS = {
    'stratum_submit_p50_ms': lambda: (round(_cached()['submit_p50'], 3), 'ms'),
    'stratum_submit_p99_ms': lambda: (round(_cached()['submit_p99'], 3), 'ms'),
    'notify_fanout_ms': lambda: (round(_cached()['fanout'], 3), 'ms'),
    'getwork_rps': lambda: (round(_cached()['getwork_rps'], 1), 'requests/s'),
}


if __name__ == '__main__':
    if sys.argv[1:] == ['--serve']:
        serve()
    else:
        for name, value in measure().items():
            print(name, round(value, 3))
