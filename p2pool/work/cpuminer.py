"""A small CPU miner speaking Stratum or getwork, for tests, the demo and benchmarks.

Plain blocking sockets (no reactor): run it in its own thread or from a test's main
thread while the node's reactor runs elsewhere. Hashing is SHA-256d with hashlib,
which is plenty at regtest difficulty, or scrypt (`pow_func='scrypt'`, Litecoin; about
1,000-2,000 hashes/s per thread with hashlib.scrypt), whose stratum difficulties are
scaled by `difficulty_scale` (the network's DUMB_SCRYPT_DIFF, 2**16 on Litecoin).

    miner = StratumMiner('127.0.0.1', port, 'ADDRESS.rig1')
    miner.connect()                      # subscribe + authorize, waits for the first job
    report = miner.mine(seconds=5)       # hash, submit what meets the difficulty
    miner.close()

    GetworkMiner('127.0.0.1', port, 'ADDRESS').mine(max_submissions=3)

Both keep every submission's outcome in `submissions` as (result, error), and
expose the raw request functions so tests can send bad input on purpose.
Command line: python -m p2pool.work.cpuminer [--getwork] [--scrypt] [--hash-rate=H] HOST:PORT USERNAME [SECONDS]
"""
import base64
import hashlib
import http.client
import json
import select
import socket
import struct
import sys
import time
from typing import Any

from p2pool.bitcoin.data import difficulty_to_target
from p2pool.bitcoin.hashes import POW_FUNCTIONS
from p2pool.work.getwork import DATA_PADDING, decode_data, decode_target, swap4

BATCH = 4096                   # hashes between looks at the socket
SLOW_POW_BATCH = 128           # the same for scrypt, about a tenth of a second
PACED_BATCH_SECONDS = 0.005    # a paced miner looks at the socket this often (new work is not left waiting)
_HEADER = struct.Struct('<I32s32sII')


class MinerError(Exception):
    """The server answered something a miner cannot work with."""


def sha256d_int(raw) -> int:
    return int.from_bytes(hashlib.sha256(hashlib.sha256(raw).digest()).digest(), 'little')


def scan(prefix76, target, start, count, pow_func='sha256d') -> int | None:
    """First nonce in [start, start+count) whose header's proof of work meets `target`, or None."""
    if pow_func != 'sha256d':
        pow_hash, pack_nonce = POW_FUNCTIONS[pow_func], struct.Struct('<I').pack
        for nonce in range(start, start + count):
            if pow_hash(prefix76 + pack_nonce(nonce)) <= target:
                return nonce
        return None
    sha256 = hashlib.sha256
    pack = struct.Struct('<I').pack
    from_bytes = int.from_bytes
    for nonce in range(start, start + count):
        if from_bytes(sha256(sha256(prefix76 + pack(nonce)).digest()).digest(), 'little') <= target:
            return nonce
    return None


class _Pacer:
    """Keeps the hash rate under `hash_rate` hashes per second (None: flat out)."""

    def __init__(self, hash_rate) -> None:
        self.hash_rate, self.start, self.done = hash_rate, time.monotonic(), 0

    def hashed(self, count) -> None:
        self.done += count
        if self.hash_rate:
            ahead = self.done / self.hash_rate - (time.monotonic() - self.start)
            if ahead > 0:
                time.sleep(ahead)


class StratumMiner:
    def __init__(self, host, port, username, password='x', timeout=10.0, pow_func='sha256d',
                 difficulty_scale=1) -> None:
        self.host, self.port, self.username, self.password, self.timeout = host, port, username, password, timeout
        self.pow_func, self.difficulty_scale = pow_func, difficulty_scale
        self.batch = BATCH if pow_func == 'sha256d' else SLOW_POW_BATCH
        self.sock: Any = None
        self._buffer = b''
        self._next_id = 1
        self.extranonce1 = b''
        self.session_id = None     # the subscription id: resumes the session on the next connect
        self.extranonce2_size = 4
        self.difficulty = 1.0
        self.job: Any = None            # dict of the latest mining.notify
        self.jobs_received = 0
        self.notifications: list[Any] = []    # every (method, params) the server sent
        self.submissions: list[Any] = []      # (result, error) of each mining.submit
        self.extranonce2 = 0

    # --- wire ---------------------------------------------------------------------

    def open(self) -> 'StratumMiner':
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        return self

    def connect(self, version_rolling=False, session_id=None) -> 'StratumMiner':
        """Open, (configure,) subscribe (resuming `session_id` if given), authorize, wait for the first job."""
        self.open()
        if version_rolling:
            self.request('mining.configure', [['version-rolling'], {'version-rolling.mask': 'ffffffff'}])
        params = ['p2pool-cpuminer/1'] + ([session_id] if session_id is not None else [])
        result = self.request('mining.subscribe', params)[0]
        self.session_id = result[0][1]
        self.extranonce1, self.extranonce2_size = bytes.fromhex(result[1]), result[2]
        self.request('mining.authorize', [self.username, self.password])
        self.wait_for_job()
        return self

    def send_raw(self, raw) -> None:
        self.sock.sendall(raw)

    def send(self, method, params, request_id=None) -> int:
        if request_id is None:
            request_id, self._next_id = self._next_id, self._next_id + 1
        self.send_raw(json.dumps({'id': request_id, 'method': method, 'params': params}).encode() + b'\n')
        return request_id

    def read_message(self, timeout=None) -> dict[str, Any] | None:
        """The next JSON object from the server (None on timeout); notifications are applied."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b'\n' not in self._buffer:
            # a zero timeout still looks once at what has arrived (poll() relies on that)
            remaining = max(0.0, deadline - time.monotonic())
            if not select.select([self.sock], [], [], remaining)[0]:
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError('the server closed the connection')
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b'\n', 1)
        message = json.loads(line)
        if 'method' in message:
            self._notification(message['method'], message.get('params', []))
        return message

    def next_reply(self, timeout=None) -> dict[str, Any] | None:
        """The next message that is not a notification from the server (None on timeout)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            message = self.read_message(deadline - time.monotonic())
            if message is not None and 'method' not in message:
                return message
        return None

    def request(self, method, params) -> tuple[Any, Any]:
        """(result, error) of one call, applying notifications that arrive meanwhile."""
        request_id = self.send(method, params)
        return self.reply_to(request_id)

    def reply_to(self, request_id) -> tuple[Any, Any]:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = self.read_message(deadline - time.monotonic())
            if message is not None and 'method' not in message and message.get('id') == request_id:
                return message.get('result'), message.get('error')
        raise TimeoutError('no reply to request %r' % request_id)

    def _notification(self, method, params) -> None:
        self.notifications.append((method, params))
        if method == 'mining.set_difficulty':
            self.difficulty = params[0]
        elif method == 'mining.notify':
            keys = ('job_id', 'prevhash', 'coinb1', 'coinb2', 'branch', 'version', 'nbits', 'ntime', 'clean')
            self.job = dict(zip(keys, params), difficulty=self.difficulty)
            self.jobs_received += 1

    def wait_for_job(self, timeout=None) -> dict[str, Any]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self.job is None and time.monotonic() < deadline:
            self.read_message(deadline - time.monotonic())
        if self.job is None:
            raise TimeoutError('no job from the server')
        return self.job

    def poll(self) -> None:
        """Apply whatever the server has sent without waiting."""
        while self.read_message(0) is not None:
            pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # --- hashing ------------------------------------------------------------------

    def header_prefix(self, job, extranonce2, ntime=None) -> bytes:
        coinbase = bytes.fromhex(job['coinb1']) + self.extranonce1 + extranonce2 + bytes.fromhex(job['coinb2'])
        root = hashlib.sha256(hashlib.sha256(coinbase).digest()).digest()
        for branch in job['branch']:
            root = hashlib.sha256(hashlib.sha256(root + bytes.fromhex(branch)).digest()).digest()
        previous = swap4(bytes.fromhex(job['prevhash']))
        return _HEADER.pack(int(job['version'], 16), previous, root,
                            int(ntime or job['ntime'], 16), int(job['nbits'], 16))

    def submit(self, job, extranonce2, nonce, ntime=None, version_bits=None) -> Any:
        params = [self.username, job['job_id'], extranonce2.hex(), ntime or job['ntime'], '%08x' % nonce]
        if version_bits is not None:
            params.append('%08x' % version_bits)
        outcome = self.request('mining.submit', params)
        self.submissions.append(outcome)
        return outcome

    def find(self, job, extranonce2=None, target=None, max_hashes=2**32) -> tuple[bytes, int | None]:
        """(extranonce2, nonce) of a solution for `job` at `target` (default: its difficulty)."""
        if extranonce2 is None:
            self.extranonce2 += 1
            extranonce2 = struct.pack('<I', self.extranonce2 % 2**32)
        target = self.job_target(job) if target is None else target
        nonce = scan(self.header_prefix(job, extranonce2), target, 0, max_hashes, self.pow_func)
        return extranonce2, nonce

    def job_target(self, job) -> int:
        """The target a job's stratum difficulty stands for (scaled for scrypt miners)."""
        return difficulty_to_target(job['difficulty'] / self.difficulty_scale)

    def mine(self, seconds=None, max_submissions=None, hash_rate=None, stop=None) -> int:
        """Hash the current job, submitting solutions; returns the number of hashes done."""
        deadline = None if seconds is None else time.monotonic() + seconds
        pacer, hashes, submitted = _Pacer(hash_rate), 0, 0
        job, prefix, nonce = None, None, 0
        # a paced miner sleeps after each batch: keep a batch short, or new work would wait for the sleep
        batch = self.batch if not hash_rate else max(16, min(self.batch, int(hash_rate * PACED_BATCH_SECONDS)))
        while (deadline is None or time.monotonic() < deadline) and (
                max_submissions is None or submitted < max_submissions) and not (stop and stop()):
            self.poll()
            if self.job is None:
                self.wait_for_job()
            if self.job is not job or nonce >= 2**32 - batch:
                job, nonce = self.job, 0
                self.extranonce2 += 1
                extranonce2 = struct.pack('<I', self.extranonce2 % 2**32)
                prefix, target = self.header_prefix(job, extranonce2), self.job_target(job)
            found = scan(prefix, target, nonce, batch, self.pow_func)
            done = batch if found is None else found - nonce + 1
            hashes += done
            pacer.hashed(done)
            nonce += done
            if found is not None:
                self.submit(job, extranonce2, found)
                submitted += 1
        return hashes


class GetworkMiner:
    def __init__(self, host, port, username, password='x', timeout=10.0, user_agent='p2pool-cpuminer/1',
                 pow_func='sha256d') -> None:
        self.host, self.port, self.timeout, self.pow_func = host, port, timeout, pow_func
        credentials = base64.b64encode(('%s:%s' % (username, password)).encode()).decode()
        self.headers = {'Authorization': 'Basic ' + credentials, 'Content-Type': 'application/json',
                        'User-Agent': user_agent}
        self.submissions: list[Any] = []

    def post(self, path, body, headers=None, method='POST') -> tuple[int, dict[str, str], bytes]:
        """(HTTP status, response headers as a dict with lower-case names, body bytes)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=dict(self.headers, **(headers or {})))
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def call(self, method, params, path='/') -> tuple[Any, dict[str, str]]:
        """(reply object, response headers)."""
        status, headers, body = self.post(path, json.dumps({'id': 1, 'method': method, 'params': params}))
        if status != 200:
            raise MinerError('HTTP %d: %r' % (status, body[:200]))
        return json.loads(body), headers

    def getwork(self, path='/') -> tuple[Any, dict[str, str]]:
        reply, headers = self.call('getwork', [], path)
        if reply.get('error'):
            raise MinerError('getwork failed: %r' % (reply['error'],))
        return reply['result'], headers

    def solve(self, work, max_hashes=2**32) -> str | None:
        """The submission `data` for `work`, or None when no nonce in range meets its target."""
        decode_data(work['data'])   # refuses malformed data with GetworkError
        target = decode_target(work['target'])
        prefix = swap4(bytes.fromhex(work['data'])[:80])[:76]
        nonce = scan(prefix, target, 0, max_hashes, self.pow_func)
        if nonce is None:
            return None
        return swap4(prefix + struct.pack('<I', nonce)).hex() + DATA_PADDING.hex()

    def submit(self, data_hex) -> Any:
        reply, headers = self.call('getwork', [data_hex])
        outcome = (reply.get('result'), reply.get('error'), headers.get('x-reject-reason'))
        self.submissions.append(outcome)
        return outcome

    def mine(self, max_submissions=1, seconds=None) -> list[Any]:
        deadline = None if seconds is None else time.monotonic() + seconds
        while len(self.submissions) < max_submissions and (deadline is None or time.monotonic() < deadline):
            data = self.solve(self.getwork()[0])
            if data is not None:
                self.submit(data)
        return self.submissions


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    use_getwork, use_scrypt = '--getwork' in args, '--scrypt' in args
    rates = [arg for arg in args if arg.startswith('--hash-rate=')]
    args = [arg for arg in args if arg not in ('--getwork', '--scrypt') and arg not in rates]
    try:
        hash_rate = float(rates[-1].partition('=')[2]) if rates else None
    except ValueError:
        hash_rate = 0.0
    if hash_rate is not None and hash_rate <= 0:
        print('--hash-rate takes a positive number of hashes per second', file=sys.stderr)
        return 2
    # scrypt: Litecoin's proof of work, stratum difficulties in units of 2**16 (DUMB_SCRYPT_DIFF)
    pow_options = {'pow_func': 'scrypt'} if use_scrypt else {}
    if len(args) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    host, _, port = args[0].rpartition(':')
    seconds = float(args[2]) if len(args) == 3 else 60.0
    hashes = None
    if use_getwork:
        results = GetworkMiner(host or '127.0.0.1', int(port), args[1], **pow_options).mine(
            max_submissions=10**9, seconds=seconds)
    else:
        scale = {'difficulty_scale': 2**16} if use_scrypt else {}
        miner = StratumMiner(host or '127.0.0.1', int(port), args[1], **pow_options, **scale).connect()
        started = time.monotonic()
        hashes = miner.mine(seconds=seconds, hash_rate=hash_rate)
        elapsed = time.monotonic() - started
        results = miner.submissions
        miner.close()
    accepted = sum(1 for result in results if result[0] is True)
    print('%d submissions, %d accepted' % (len(results), accepted)
          + ('' if hashes is None else ', %d hashes in %.1f s' % (hashes, elapsed)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
