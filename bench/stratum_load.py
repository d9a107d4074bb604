"""The two sides of the Stratum benchmarks: a node (child process) and fleets of miner sockets.

    node = NodeProcess(connections)         # WorkBridge on a fixed template, Stratum + getwork on one port
    fleet = Fleet(node.port, username, connections, processes=4)
    fleet.fanout(node)                      # (arrived, read) ms from a template change to the last miner's job
    node.fanout_cpu_ms()                    # CPU the node spent on that change (user + system)
    fleet.submit_latencies(3000)            # ms round trips of valid mining.submit, one at a time
    node.rss_mb()

The node runs in its own process so that client and server never share an interpreter; the
miners are spread over several client processes (forked, each with a raised descriptor limit),
each holding its sockets with a selector and bound to its own 127.0.0.x source address, so that
the node's per-address cap is not what is measured. Clients look at notify lines without
decoding them, except for the jobs they submit on.
"""
import hashlib
import json
import multiprocessing
import os
import resource
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARE_TARGET = 2**246 - 1          # the network's MAX_TARGET: one pseudoshare in 16 is a share
PSEUDOSHARE_TARGET = 2**250        # every miner's fixed +D difficulty
BLOCK_BITS = 0x1d00ffff            # mainnet-hard: no blocks during the benchmark
NAP = float(os.environ.get('BENCH_NAP', '0.005'))
SO_TIMESTAMPNS = getattr(socket, 'SO_TIMESTAMPNS', 35)   # Linux: a received segment's kernel time
TIMESTAMP_SPACE = socket.CMSG_SPACE(16)


def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the node (child process) ---------------------------------------------------------------

def serve(connections):
    import types

    from twisted.internet import reactor
    from twisted.web import resource as web_resource

    from p2pool.bitcoin.template import Template
    from p2pool.config import load_network
    from p2pool.events import Event
    from p2pool.sharechain.tracker import Tracker
    from p2pool.testing.testchain import easy_network, make_addresses
    from p2pool.work.bridge import WorkBridge
    from p2pool.work.getwork import GetworkServer, attach_getwork
    from p2pool.work.stratum import StratumFactory
    from p2pool.work.switch import listen_worker_port
    from p2pool.work.username import PayeeResolver

    raise_file_limit()
    if os.environ.get('BENCH_LOG'):
        import logging
        logging.basicConfig(level=logging.DEBUG)
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
    root = web_resource.Resource()
    attach_getwork(root, GetworkServer(bridge))
    # the caps as a node would have them, so that their bookkeeping is measured too
    port = listen_worker_port(root, StratumFactory(bridge, net), 0, interface='127.0.0.1', reactor=reactor,
                              max_connections=connections + 100, max_per_address=connections)
    print(port.getHost().port, flush=True)

    def keep_fresh():   # as bitcoind's long poll would: the bridge refuses work on a template over a minute old
        source.current = template(source.current.previous_block)
    from twisted.internet import task
    task.LoopingCall(keep_fresh).start(20.0, now=False)
    profile = os.environ.get('BENCH_PROFILE')

    cpu = [0.0]

    def new_work(number):
        started, started_wall = time.monotonic(), time.time()
        cpu_started, times = time.process_time(), os.times()
        source.current = template(1000 + number)
        if profile:
            import cProfile
            cProfile.runctx('source.changed.happened(source.current)', globals(), locals(), profile)
        else:
            source.changed.happened(source.current)
        cpu[0] = (time.process_time() - cpu_started) * 1000
        if os.environ.get('BENCH_LOG'):
            after = os.times()
            print('fanout loop %.1f ms (user %.0f ms, system %.0f ms)' % (
                (time.monotonic() - started) * 1000, (after.user - times.user) * 1000,
                (after.system - times.system) * 1000), file=sys.stderr, flush=True)
        print(repr(started), repr(started_wall), flush=True)

    def rss():
        with open('/proc/self/status') as status:
            kb = next(int(line.split()[1]) for line in status if line.startswith('VmRSS:'))
        print(kb / 1024, flush=True)

    def commands():
        for number, line in enumerate(sys.stdin):
            command = line.strip()
            if command == 'newwork':
                reactor.callFromThread(new_work, number)
            elif command == 'rss':
                reactor.callFromThread(rss)
            elif command == 'cpu':      # CPU ms (user + system: the sends) of the last new-work event
                reactor.callFromThread(lambda: print(cpu[0], flush=True))
        reactor.callFromThread(reactor.stop)

    threading.Thread(target=commands, daemon=True).start()
    reactor.run(installSignalHandlers=False)


class NodeProcess:
    def __init__(self, connections):
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, 'stratum_load.py'), '--serve',
                                         str(connections)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    def ask(self, command):
        self.process.stdin.write(command + '\n')
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def new_work(self):
        """The node's (monotonic, wall-clock) times at the template change."""
        self.process.stdin.write('newwork\n')
        self.process.stdin.flush()
        monotonic, wall = self.process.stdout.readline().split()
        return float(monotonic), float(wall)

    def rss_mb(self):
        return self.ask('rss')

    def fanout_cpu_ms(self):
        return self.ask('cpu')

    def close(self):
        self.process.stdin.close()
        self.process.wait(60)


# --- the miners (client processes) ----------------------------------------------------------

class Miner:
    __slots__ = ('sock', 'buffer', 'jobs', 'last_notify', 'extranonce1', 'counter', 'replies', 'arrived')

    def __init__(self, port, username, source):
        self.sock = socket.create_connection(('127.0.0.1', port), source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.buffer, self.jobs, self.last_notify, self.extranonce1, self.counter = b'', 0, None, b'', 0
        self.arrived = 0.0
        self.replies = {}
        self.sock.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n'
                          b'{"id":2,"method":"mining.authorize","params":[%s,"x"]}\n' % json.dumps(username).encode())
        self.sock.setblocking(False)

    def read(self):
        try:
            chunk, ancillary, _, _ = self.sock.recvmsg(1 << 16, TIMESTAMP_SPACE)
        except BlockingIOError:
            return
        if not chunk:
            raise ConnectionError('the node closed a connection')
        *lines, self.buffer = (self.buffer + chunk).split(b'\n')
        for line in lines:
            if b'"method":"mining.notify"' in line:
                self.jobs += 1
                self.last_notify = line
                self.arrived = kernel_arrival(ancillary)
            elif b'"method":"mining.set_difficulty"' not in line and line.strip():
                message = json.loads(line)
                if message.get('id') == 1 and message.get('result'):
                    self.extranonce1 = bytes.fromhex(message['result'][1])
                self.replies[message.get('id')] = message

    def solution(self, username):
        job = json.loads(self.last_notify)['params']
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
                return [username, job[0], extranonce2.hex(), job[7], '%08x' % nonce]


def kernel_arrival(ancillary):
    """When the kernel received the bytes just read (SO_TIMESTAMPNS, wall clock), else now."""
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
            seconds, nanoseconds = struct.unpack('qq', payload[:16])
            return seconds + nanoseconds / 1e9
    return time.time()


def _pump(selector, until, timeout=120, nap=0.0):
    """Read until `until()`. With `nap`, sleep that long between rounds instead of waiting in the
    selector: on a shared machine the node then does not pay for waking a client per message, as
    it would not for miners on other machines."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError('the node did not answer in time')
        if nap:
            time.sleep(nap)
        for key, _ in selector.select(0 if nap else 0.5):
            key.data.read()


def _client(pipe, port, username, count, source):
    raise_file_limit()
    selector = selectors.DefaultSelector()
    miners = []
    for _ in range(count):
        miner = Miner(port, username, source)
        selector.register(miner.sock, selectors.EVENT_READ, miner)
        miners.append(miner)
    _pump(selector, lambda: all(m.last_notify is not None and m.extranonce1 for m in miners))
    pipe.send('ready')
    while True:
        command, argument = pipe.recv()
        if command == 'expect':          # every miner gets one more job: the time the last one did
            before = [m.jobs for m in miners]
            pipe.send('armed')
            _pump(selector, lambda before=before: all(m.jobs > b for m, b in zip(miners, before)), nap=NAP)
            pipe.send((time.monotonic(), max(m.arrived for m in miners)))
        elif command == 'submit':        # `argument` valid submissions in turn; their round trips
            latencies = []
            for index in range(argument):
                miner = miners[index % count]
                params = miner.solution(username)
                request_id = 1000 + index
                started = time.perf_counter()
                miner.sock.sendall(json.dumps({'id': request_id, 'method': 'mining.submit',
                                               'params': params}).encode() + b'\n')
                while request_id not in miner.replies:
                    selector.select(1)
                    miner.read()
                latencies.append((time.perf_counter() - started) * 1000)
                reply = miner.replies.pop(request_id)
                if reply.get('result') is not True:
                    raise RuntimeError('submission refused: %r' % (reply,))
            pipe.send(latencies)
        else:
            for miner in miners:
                miner.sock.close()
            pipe.send('closed')
            return


class Fleet:
    def __init__(self, port, username, connections, processes):
        context = multiprocessing.get_context('fork')
        self.pipes, self.workers = [], []
        share = connections // processes
        for index in range(processes):
            count = share if index < processes - 1 else connections - share * (processes - 1)
            parent, child = context.Pipe()
            worker = context.Process(target=_client, args=(child, port, username, count, '127.0.0.%d' % (2 + index)),
                                     daemon=True)
            worker.start()
            self.pipes.append(parent)
            self.workers.append(worker)
        for pipe in self.pipes:
            if pipe.recv() != 'ready':
                raise RuntimeError('a client process failed')

    def fanout(self, node):
        """(arrived, read): ms from the node's template change until the new job of the last
        miner of the fleet had arrived (the kernel's receive time of its segment, SO_TIMESTAMPNS:
        what a miner on another machine sees), and until the last client process had read it
        (that also counts the client processes' own time on this shared machine)."""
        for pipe in self.pipes:
            pipe.send(('expect', None))
        for pipe in self.pipes:
            pipe.recv()
        started, started_wall = node.new_work()
        answers = [pipe.recv() for pipe in self.pipes]
        return ((max(arrived for _, arrived in answers) - started_wall) * 1000,
                (max(read for read, _ in answers) - started) * 1000)

    def submit_latencies(self, count):
        self.pipes[0].send(('submit', count))
        return self.pipes[0].recv()

    def close(self):
        for pipe in self.pipes:
            pipe.send(('close', None))
            pipe.recv()
        for worker in self.workers:
            worker.join(30)


if __name__ == '__main__':
    sys.path[:0] = [os.path.dirname(HERE)]
    serve(int(sys.argv[2]))
