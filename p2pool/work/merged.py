"""Merged mining of auxiliary chains (worker.md §9): polling, aux tree, commitment, auxpow.

* MergedDaemon polls one `--merged http://user:pass@host:port/` daemon every second
  with `getauxblock()` (or `createauxblock(address)` when a payout address for
  that chain is configured), backing off 30 s after an error, and submits
  solutions with `getauxblock(hash, auxpow)` / `submitauxblock(hash, auxpow)`.
* MergedMining combines the daemons: `commitment()` builds the aux merkle tree
  (make_auxpow_tree's slot formula) and the 44-byte `mm_data` that goes into the
  parent coinbase right after the BIP34 height; `submit_solution()` builds an
  auxpow for every chain whose target the solved header meets.

The AuxCommitment a job was built with must be handed back with its solution:
the auxpow has to prove the very tree that the miner's coinbase committed to.
"""
from collections.abc import Generator
import logging
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task

from p2pool.bitcoin import data
from p2pool.events import Event
from p2pool.bitcoin.rpc import METHOD_NOT_FOUND, RpcClient, RpcError, RpcFailure

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
ERROR_DELAY = 30.0
SUBMIT_RETRIES = 10
SUBMIT_RETRY_DELAY = 10.0
MAX_TREE_HEIGHT = 30
MERGED_RPC_TIMEOUT = 5.0


class MergedMiningError(ValueError):
    """Bad merged-mining input: duplicate chain ids, malformed daemon answers, bad URLs."""


def chain_slot(chain_id, size, nonce=0) -> int:
    """Slot of `chain_id` in an aux tree of `size` leaves (Namecoin's rule, 32-bit arithmetic).

    With nonce 0 this is (1103515245·chain_id + 1103515245·12345 + 12345) mod size.
    """
    rand = (nonce * 1103515245 + 12345) & 0xffffffff
    rand = (rand + chain_id) & 0xffffffff
    rand = (rand * 1103515245 + 12345) & 0xffffffff
    return rand % size


def make_auxpow_tree(chain_ids) -> tuple[dict[int, int], int]:
    """({slot: chain_id}, size) for the smallest power-of-two size giving distinct slots."""
    chain_ids = list(chain_ids)
    for height in range(MAX_TREE_HEIGHT + 1):
        size = 2 ** height
        if size < len(chain_ids):
            continue
        slots = {}
        for chain_id in chain_ids:
            slot = chain_slot(chain_id, size)
            if slot in slots:
                break
            slots[slot] = chain_id
        else:
            return slots, size
    raise MergedMiningError('no aux tree of up to 2^%d slots separates chain ids %r'
                            % (MAX_TREE_HEIGHT, chain_ids))


@dataclass
class AuxCommitment:
    """What the parent coinbase commits to: the tree of aux block hashes and its 44 bytes."""
    works: dict  # chain_id -> AuxWork
    slots: dict  # chain_id -> slot
    size: int
    mm_hashes: list  # aux block hash per slot, 0 for empty slots
    data: bytes  # fabe6d6d || root (big-endian) || u32 size || u32 nonce 0

    @property
    def merkle_root(self) -> int:
        return data.merkle_hash(self.mm_hashes)


@dataclass
class AuxWork:
    chain_id: int
    hash: int  # aux block hash (integer of the display hex)
    target: object  # integer target, or 'p2pool' meaning "use the share target"
    daemon: object | None = None


def build_commitment(works) -> 'AuxCommitment | None':
    """AuxCommitment for {chain_id: AuxWork} (None when there is nothing to merge-mine)."""
    if not works:
        return None
    tree, size = make_auxpow_tree(works)
    slots = {chain_id: slot for slot, chain_id in tree.items()}
    mm_hashes = [works[tree[slot]].hash if slot in tree else 0 for slot in range(size)]
    record = data.aux_pow_coinbase_type.pack({'merkle_root': data.merkle_hash(mm_hashes),
                                              'size': size, 'nonce': 0})
    return AuxCommitment(works=dict(works), slots=slots, size=size, mm_hashes=mm_hashes,
                         data=data.MERGED_MINING_MAGIC + record)


def build_aux_pow(commitment, chain_id, header, coinbase_tx, coinbase_branch) -> bytes:
    """Serialized auxpow proving `header` (whose coinbase carries `commitment`) for `chain_id`.

    coinbase_tx is the parent coinbase (stripped form is what is serialized);
    coinbase_branch is its merkle branch in the parent block (index 0).
    """
    return data.aux_pow_type.pack({
        'merkle_tx': {
            'tx': coinbase_tx,
            'block_hash': data.header_hash(header),
            'merkle_link': {'branch': list(coinbase_branch), 'index': 0},
        },
        'merkle_link': data.calculate_merkle_link(commitment.mm_hashes, commitment.slots[chain_id]),
        'parent_block_header': header,
    })


def parse_aux_block(reply) -> 'AuxWork':
    """AuxWork from a getauxblock/createauxblock reply; raises MergedMiningError."""
    if not isinstance(reply, dict):
        raise MergedMiningError('aux block reply is not an object: %r' % (reply,))
    target_text: Any = reply.get('target', reply.get('_target'))
    target: int | str
    try:
        chain_id = reply['chainid']
        if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id < 0:
            raise ValueError('chainid %r' % (chain_id,))
        aux_hash = int(reply['hash'], 16)
        if not 0 <= aux_hash < 2**256:
            raise ValueError('hash out of range')
        if target_text == 'p2pool':
            target = 'p2pool'
        else:
            raw = bytes.fromhex(target_text)
            if len(raw) != 32:
                raise ValueError('target is %d bytes' % len(raw))
            target = int.from_bytes(raw, 'little')
    except (KeyError, TypeError, ValueError) as e:
        raise MergedMiningError('malformed aux block reply %r: %s' % (reply, e)) from None
    return AuxWork(chain_id=chain_id, hash=aux_hash, target=target)


class MergedDaemon:
    """One merged-mining daemon; `work` is its latest AuxWork (None until known or after errors)."""

    def __init__(self, url, payout_address=None, poll_interval=POLL_INTERVAL, error_delay=ERROR_DELAY,
                 submit_retries=SUBMIT_RETRIES, submit_retry_delay=SUBMIT_RETRY_DELAY, reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        try:
            self.rpc = RpcClient.from_url(url, timeout=MERGED_RPC_TIMEOUT, name='merged daemon',
                                          reactor=reactor)
        except ValueError as e:
            raise MergedMiningError(str(e)) from None
        self.payout_address = payout_address
        self.poll_interval, self.error_delay = poll_interval, error_delay
        self.submit_retries, self.submit_retry_delay = submit_retries, submit_retry_delay
        self._reactor = reactor
        self.work = None
        self.changed = Event()
        self._running = False
        self._call = None

    def start(self) -> 'MergedDaemon':
        self._running = True
        self._schedule(0)
        return self

    def stop(self) -> None:
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self.rpc.close()

    def _schedule(self, delay) -> None:
        if self._running:
            self._call = self._reactor.callLater(delay, self._poll_and_reschedule)

    def _poll_and_reschedule(self) -> None:
        self.poll().addCallback(lambda ok: self._schedule(self.poll_interval if ok else self.error_delay))

    def poll(self) -> defer.Deferred[Any]:
        """Fetch the daemon's aux block once; Deferred firing with True on success."""
        if self.payout_address is not None:
            d = self.rpc.call('createauxblock', self.payout_address)
        else:
            d = self.rpc.call('getauxblock')
        d.addCallback(parse_aux_block)
        d.addCallbacks(self._got_work, self._poll_failed)
        return d

    def _got_work(self, work) -> bool:
        work.daemon = self
        previous, self.work = self.work, work
        if previous is None or (previous.chain_id, previous.hash, previous.target) != (
                work.chain_id, work.hash, work.target):
            self.changed.happened(work)
        return True

    def _poll_failed(self, failure) -> bool:
        failure.trap(RpcFailure, MergedMiningError)
        log.warning('merged-mining daemon at %s: %s (retrying in %g s)',
                    self.rpc.endpoint, failure.getErrorMessage(), self.error_delay)
        if self.work is not None:
            self.work = None
            self.changed.happened(None)
        return False

    @defer.inlineCallbacks
    def submit(self, aux_hash, aux_pow, expect_valid=True) -> Generator[defer.Deferred[Any], Any, bool | None]:
        """Send an auxpow; fires with the daemon's boolean answer (None if it never answered)."""
        hash_hex = '%064x' % aux_hash
        for attempt in range(1, self.submit_retries + 1):
            error: str | RpcFailure = 'no answer'
            try:
                if self.payout_address is not None:
                    answer = yield self.rpc.call('submitauxblock', hash_hex, aux_pow.hex())
                else:
                    answer = yield self.rpc.call('getauxblock', hash_hex, aux_pow.hex())
            except RpcError as e:
                if e.code == METHOD_NOT_FOUND:
                    log.error('merged-mining daemon at %s cannot take aux blocks: %s', self.rpc.endpoint, e)
                    return None
                answer, error = None, e
            except RpcFailure as e:
                answer, error = None, e
            if answer is not None:
                accepted = bool(answer)
                log.info('Merged block %s submitted to daemon at %s: %s', hash_hex, self.rpc.endpoint,
                         'accepted' if accepted else 'rejected')
                if accepted != expect_valid:
                    log.error('merged daemon at %s %s an aux block we judged %s', self.rpc.endpoint,
                              'accepted' if accepted else 'rejected', 'valid' if expect_valid else 'invalid')
                if accepted:
                    self.poll()  # fetch the next aux block at once
                return accepted
            log.warning('submitting merged block %s (attempt %d of %d) failed: %s',
                        hash_hex, attempt, self.submit_retries, error)
            if attempt < self.submit_retries:
                yield task.deferLater(self._reactor, self.submit_retry_delay, lambda: None)
        return None


class MergedMining:
    """All merged daemons; `changed` fires when any chain's aux work changes."""

    def __init__(self, daemons=()) -> None:
        self.daemons = list(daemons)
        self.changed = Event()
        for daemon in self.daemons:
            daemon.changed.watch(lambda work: self.changed.happened())

    def start(self) -> 'MergedMining':
        for daemon in self.daemons:
            daemon.start()
        return self

    def stop(self) -> None:
        for daemon in self.daemons:
            daemon.stop()

    def works(self) -> dict[int, 'AuxWork']:
        """{chain_id: AuxWork} of the daemons with current work (the first daemon wins a chain id)."""
        works = {}
        for daemon in self.daemons:
            if daemon.work is not None and daemon.work.chain_id not in works:
                works[daemon.work.chain_id] = daemon.work
        return works

    def commitment(self) -> 'AuxCommitment | None':
        return build_commitment(self.works())

    def submit_solution(self, commitment, header, coinbase_tx, coinbase_branch, pow_hash, share_target) -> Any:
        """Submit an auxpow to every chain in `commitment` whose target `pow_hash` meets.

        Returns a list of Deferreds (one per submitted chain) firing with the daemons' answers.
        """
        submitted: list[Any] = []
        if commitment is None:
            return submitted
        for chain_id, work in commitment.works.items():
            target = share_target if work.target == 'p2pool' else work.target
            if pow_hash > target or work.daemon is None:
                continue
            aux_pow = build_aux_pow(commitment, chain_id, header, coinbase_tx, coinbase_branch)
            log.info('Merged-mining solution for chain %d (aux block %064x)', chain_id, work.hash)
            submitted.append(work.daemon.submit(work.hash, aux_pow, expect_valid=True))
        return submitted
