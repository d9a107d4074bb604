"""Takeover (issue 11, item 1): a second node process takes the sockets of the running one.

Two miners stay connected throughout: the built-in CPU miner (p2pool/work/cpuminer.py)
hashing in a thread, and a raw-socket Stratum client written here, which holds a job
of the old process and submits a solution of it once the new one has taken over. A
third client leaves before the takeover and resumes its session afterwards.
"""
import hashlib
import json
import os
import signal
import socket
import struct
import threading
import time

import pytest

from node_processes import NodeProcess, node_factory, ports_below_ephemeral, wait_until  # noqa: F401 (fixture)
from p2pool.bitcoin.data import difficulty_to_target
from p2pool.work.cpuminer import StratumMiner

pytestmark = [pytest.mark.bitcoind, pytest.mark.slow]


def sha256d(raw):
    return hashlib.sha256(hashlib.sha256(raw).digest()).digest()


class RawStratum:
    """A Stratum client on a plain socket: subscribe, authorize, keep the jobs, solve one by hand."""

    def __init__(self, port, username):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.buffer, self.next_id, self.jobs, self.difficulty = b'', 1, [], None
        self.username = username

    def send(self, method, params):
        request_id, self.next_id = self.next_id, self.next_id + 1
        self.sock.sendall(json.dumps({'id': request_id, 'method': method, 'params': params}).encode() + b'\n')
        return request_id

    def message(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buffer:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('the node closed the connection')
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b'\n', 1)
        message = json.loads(line)
        if message.get('method') == 'mining.notify':
            self.jobs.append((self.difficulty, message['params']))
        elif message.get('method') == 'mining.set_difficulty':
            self.difficulty = message['params'][0]
        return message

    def call(self, method, params):
        request_id = self.send(method, params)
        while True:
            message = self.message()
            if message.get('id') == request_id and 'method' not in message:
                return message.get('result'), message.get('error')

    def start(self, session_id=None):
        result, _ = self.call('mining.subscribe', ['raw/1'] + ([session_id] if session_id else []))
        self.session_id, self.extranonce1 = result[0][1], bytes.fromhex(result[1])
        assert self.call('mining.authorize', [self.username, 'x']) == (True, None)
        while not self.jobs:
            self.message()
        return self

    def solve(self, job):
        """(params of mining.submit) for a solution of `job` at its difficulty."""
        difficulty, (job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime, _clean) = job
        extranonce2 = os.urandom(4)
        coinbase = bytes.fromhex(coinb1) + self.extranonce1 + extranonce2 + bytes.fromhex(coinb2)
        root = sha256d(coinbase)
        for step in branch:
            root = sha256d(root + bytes.fromhex(step))
        prev = bytes.fromhex(prevhash)
        prev = b''.join(prev[i:i + 4][::-1] for i in range(0, 32, 4))
        head = struct.pack('<I', int(version, 16)) + prev + root + struct.pack('<II', int(ntime, 16), int(nbits, 16))
        target = difficulty_to_target(difficulty)
        for nonce in range(2**32):
            if int.from_bytes(sha256d(head + struct.pack('<I', nonce)), 'little') <= target:
                return [self.username, job_id, extranonce2.hex(), ntime, '%08x' % nonce]

    def close(self):
        self.sock.close()


def successor(node, **kwargs):
    """A second NodeProcess on the same data directory and ports, with --takeover."""
    new = NodeProcess(node.bitcoind, node.datadir, name=node.name + '-new', address=node.address,
                      p2p_port=node.p2p_port, worker_port=node.worker_port, extra_args=['--takeover'], **kwargs)
    new.starts = 100        # its console files must not overwrite the old process's
    return new


def mining(miner):
    stop, errors = threading.Event(), []

    def run():
        try:
            miner.mine(stop=stop.is_set, hash_rate=2000)
        except Exception as e:  # reported by the test
            errors.append(e)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop, thread, errors


def accepted_since(miner, count):
    return sum(1 for result, error in miner.submissions[count:] if error is None)


def test_miners_stay_connected_through_a_takeover(node_factory, regtest_node):
    address = regtest_node.wallet_address()
    p2p_port, worker_port = ports_below_ephemeral(2)
    old = node_factory(regtest_node, name='old', address=address, p2p_port=p2p_port,
                       worker_port=worker_port).start().wait_ready()
    mode = os.stat(os.path.join(old.net_dir, 'takeover.sock')).st_mode & 0o777
    assert mode == 0o600
    cpu = StratumMiner('127.0.0.1', old.worker_port, address + '.cpu').connect()
    raw = RawStratum(old.worker_port, address + '.raw').start()
    leaver = RawStratum(old.worker_port, address + '.leaver').start()
    leaver_session = (leaver.session_id, leaver.extranonce1, leaver.difficulty)
    leaver.close()
    stop, thread, errors = mining(cpu)
    try:
        wait_until(lambda: accepted_since(cpu, 0) >= 3, 30, 'shares accepted by the old process')
        old_job = raw.jobs[-1]
        raw_extranonce1 = raw.extranonce1
        before = len(cpu.submissions)
        new = successor(old)
        new.start().wait_ready()
        old.wait_exit(10)
        assert old.process.returncode == 0
        assert 'took over from process %d: 2 miner connections kept' % old.pid in new.console()
        assert new.get('/web/version')                 # the worker port's HTTP side is the new one's
        for name in ('control.sock', 'takeover.sock', 'ready_flag'):      # the old one left them alone
            assert os.path.exists(os.path.join(new.net_dir, name)), name
        assert open(os.path.join(new.net_dir, 'lock')).read().strip() == str(new.pid)
        wait_until(lambda: accepted_since(cpu, before) >= 3, 30, 'shares accepted by the new process')
        # a job of the old process, solved and judged by the new one
        result, error = raw.call('mining.submit', raw.solve(old_job))
        assert error is None, error          # not 'job not found', not low difficulty: the old job is known
        assert raw.extranonce1 == raw_extranonce1
        # a miner that left before the takeover resumes its session with the new process
        back = RawStratum(new.worker_port, address + '.leaver').start(session_id=leaver_session[0])
        assert (back.session_id, back.extranonce1, back.difficulty) == leaver_session
        back.close()
    finally:
        stop.set()
        thread.join(30)
        cpu.close()
        raw.close()
    assert not errors, errors                      # no disconnect: the miner's socket never failed
    # sessions also survive a plain restart (kept in the store at shutdown)
    raw_session = (raw.session_id, raw.extranonce1, raw.difficulty)
    assert new.stop() == 0
    again = NodeProcess(old.bitcoind, old.datadir, name='restarted', address=address, p2p_port=p2p_port,
                        worker_port=worker_port)
    again.starts = 200
    try:
        again.start().wait_ready()
        resumed = RawStratum(again.worker_port, address + '.raw').start(session_id=raw_session[0])
        assert (resumed.session_id, resumed.extranonce1) == raw_session[:2]
        resumed.close()
    finally:
        again.stop()


def test_kill_9_of_the_new_process_mid_takeover_leaves_the_old_one_serving(node_factory, regtest_node,
                                                                          monkeypatch):
    address = regtest_node.wallet_address()
    p2p_port, worker_port = ports_below_ephemeral(2)
    old = node_factory(regtest_node, name='kept', address=address, p2p_port=p2p_port,
                       worker_port=worker_port).start().wait_ready()
    cpu = StratumMiner('127.0.0.1', old.worker_port, address + '.cpu').connect()
    stop, thread, errors = mining(cpu)
    try:
        wait_until(lambda: accepted_since(cpu, 0) >= 2, 30, 'shares accepted by the old process')
        monkeypatch.setenv('P2POOL_TAKEOVER_HOLD', '30')
        new = successor(old)
        new.start()
        wait_until(lambda: 'received the sockets and 1 miner connections' in new.console(), 60,
                   'the new process to hold the sockets')
        os.kill(new.pid, signal.SIGKILL)
        new.process.wait(10)
        wait_until(lambda: 'takeover abandoned' in old.console(), 10, 'the old process to read on')
        before = len(cpu.submissions)
        wait_until(lambda: accepted_since(cpu, before) >= 2, 30, 'shares accepted again by the old process')
        assert old.running
    finally:
        stop.set()
        thread.join(30)
        cpu.close()
    assert not errors, errors
