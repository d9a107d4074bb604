"""A Stratum miner that hashes flat out and submits without waiting for replies, as cpuminer does.

For measuring how many of a fast miner's submissions a node accepts (issue 16 finding 12):
on a regtest network every share is also a block, so work changes all the time, and a
miner that waits for each reply, as p2pool.work.cpuminer.StratumMiner does, hides the
problem. This one keeps hashing while its submissions are in flight, restarts at once on
a `clean_jobs` notify (cpuminer's "Stratum requested work restart") and otherwise
takes up new work when its scan returns (after each solution). Hashing is Python's
hashlib (some 0.2-0.7 MH/s on one core), so it is a fast miner relative to bsv_regtest's
targets (256 hashes a share), not to a real network.

    miner = FastStratumMiner('127.0.0.1', port, address).connect()
    outcome = miner.run(seconds=20)   # {'submitted', 'accepted', 'rejected', 'reasons', 'hashes', ...}
"""
import select
import struct
import time
from collections import Counter
from typing import Any

from p2pool.bitcoin.data import difficulty_to_target
from p2pool.work.cpuminer import StratumMiner, scan

BATCH = 4096            # hashes between looks at the socket


class FastStratumMiner(StratumMiner):
    """StratumMiner with a pipelined mining loop (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outstanding = set()
        self.outcomes = Counter()
        self.restarts = 0

    def _notification(self, method, params):
        super()._notification(method, params)
        if method == 'mining.notify' and len(params) > 8 and params[8]:
            self.restarts += 1

    def _read_available(self):
        """Whatever the socket holds now, into the buffer (without waiting)."""
        while select.select([self.sock], [], [], 0)[0]:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError('the server closed the connection')
            self._buffer += chunk

    def _take_replies(self):
        """Apply what the server sent; count the replies to our submissions."""
        self._read_available()
        while b'\n' in self._buffer:
            message = self.read_message(0)
            request_id = message.get('id')
            if 'method' in message or request_id not in self.outstanding:
                continue
            self.outstanding.discard(request_id)
            error = message.get('error')
            if message.get('result') is True:
                self.outcomes['accepted'] += 1
            elif error:
                self.outcomes['error %s %s' % (error.get('code'), error.get('message'))] += 1
            else:
                self.outcomes['stale (result false)'] += 1

    def run(self, seconds, drain_seconds=5.0, max_outstanding=None) -> dict[str, Any]:
        """Mine for `seconds`, then wait up to `drain_seconds` for the outstanding replies.

        `max_outstanding`: at most this many submissions in flight (None: no limit). Without a
        limit a miner faster than the node builds a backlog at the node, and every submission
        in it is a block, so each one waits behind that many newer jobs: past the node's
        MAX_JOBS kept per connection it is "Job not found". A limit keeps what the run measures
        about stale work, not about how fast this machine's node processes a flood.
        """
        deadline = time.monotonic() + seconds
        hashes = submitted = 0
        job: Any = None
        extranonce2: Any = None
        prefix = target = None
        nonce = 0
        found_one = False
        started = time.monotonic()
        while time.monotonic() < deadline:
            self._take_replies()
            if max_outstanding is not None and len(self.outstanding) >= max_outstanding:
                select.select([self.sock], [], [], 0.05)
                continue
            latest = self.job
            # cpuminer's loop: a clean notify interrupts the scan; other new work is taken up
            # once the scan returns, after a solution or at the end of the nonce range
            restart = latest is not job and (job is None or latest.get('clean') or found_one
                                             or nonce >= 2**32 - BATCH)
            found_one = False
            if restart:
                job, nonce = latest, 0
                self.extranonce2 += 1
                extranonce2 = struct.pack('<I', self.extranonce2 % 2**32)
                prefix, target = self.header_prefix(job, extranonce2), difficulty_to_target(job['difficulty'])
            found = scan(prefix, target, nonce, BATCH)
            done = BATCH if found is None else found - nonce + 1
            hashes += done
            nonce += done
            if found is not None:
                params = [self.username, job['job_id'], extranonce2.hex(), job['ntime'], '%08x' % found]
                self.outstanding.add(self.send('mining.submit', params))
                submitted += 1
                found_one = True
        elapsed = time.monotonic() - started
        drain_until = time.monotonic() + drain_seconds
        while self.outstanding and time.monotonic() < drain_until:
            select.select([self.sock], [], [], 0.05)
            self._take_replies()
        accepted = self.outcomes['accepted']
        return {'submitted': submitted, 'accepted': accepted, 'unanswered': len(self.outstanding),
                'accepted_pct': 100.0 * accepted / submitted if submitted else 0.0,
                'hash_rate': hashes / elapsed if elapsed > 0 else 0.0, 'restarts': self.restarts,
                'jobs': self.jobs_received, 'reasons': dict(self.outcomes)}
