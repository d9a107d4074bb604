"""Found blocks out to bitcoind, and heights of parent blocks (worker.md §10.3, §10.1).

BlockSubmitter sends every block over both paths: the Bitcoin P2P `block`
message (retried while there is no P2P connection) and the `submitblock` RPC
(retried while bitcoind cannot be reached). A Litecoin MWEB block (a block dict with
`hogex` and `mweb`) goes over RPC only, serialized as `block || 0x01 || mweb bytes` with
the HogEx last: a Litecoin Core peer reads MWEB data in a P2P `block` message only from a
peer that negotiated MWEB serialization, which the P2P client here does not. The RPC answer is logged as
accepted, duplicate or rejected with bitcoind's reason, and compared with what
the caller expected from the proof of work.

ParentHeights caches block heights for the best-chain score (the [jt] rule:
heights relative to the highest block seen) from templates, getblockheader and,
without RPC support for it, from headers heard over P2P.
"""
import logging
from collections import OrderedDict
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task
from twisted.python.failure import Failure

from p2pool.bitcoin import data
from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.p2p import BitcoindP2P
from p2pool.bitcoin.rpc import METHOD_NOT_FOUND, RpcClient, RpcError, RpcFailure
from p2pool.bitcoin.template import Template

#: a block dict: header, txs and, for a Litecoin MWEB block, hogex and mweb
Block = dict[str, Any]

log = logging.getLogger(__name__)

SUBMIT_RETRIES = 10
SUBMIT_RETRY_DELAY = 10.0


@dataclass
class SubmitResult:
    status: str  # 'accepted', 'duplicate', 'rejected', or 'failed' (bitcoind never answered)
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status in ('accepted', 'duplicate')

    def __str__(self) -> str:
        return self.status if self.reason is None else '%s (%s)' % (self.status, self.reason)


def classify_submitblock(result: object) -> SubmitResult:
    """BIP22 answer of submitblock -> SubmitResult."""
    if result is None:
        return SubmitResult('accepted')
    if result == 'inconclusive':
        return SubmitResult('accepted', 'inconclusive')
    if result in ('duplicate', 'duplicate-inconclusive'):
        return SubmitResult('duplicate', result)
    return SubmitResult('rejected', str(result))


MWEB_BLOCK_MARKER = b'\x01'   # between a block's transactions and its MWEB extension block


def serialize_block(block: Block, segwit: bool = False) -> bytes:
    """Wire bytes of a block dict: header, transactions (witness form when `segwit`), then the
    HogEx (`block['hogex']`, a FinalTransaction) and `0x01 || block['mweb']` when present."""
    finals = [block['hogex']] if block.get('hogex') is not None else []
    tx_type = data.tx_type if segwit else data.tx_id_type
    out = bytearray(data.header_type.pack(block['header']))
    out += s.VarInt.pack(len(block['txs']) + len(finals))
    for tx in block['txs']:
        out += tx_type.pack(tx)
    for final in finals:
        out += final.raw
    if block.get('mweb') is not None:
        out += MWEB_BLOCK_MARKER + block['mweb']
    return bytes(out)


def block_from_template(header: data.Header, gentx: data.Tx, template: Template) -> Block | None:
    """The block of a solved `header` whose coinbase is `gentx` and whose other transactions are
    all of `template`'s (then its HogEx and MWEB data), or None when the header's merkle root
    says the miner chose other transactions (e.g. a peer's share on another template)."""
    txids = [data.txid(gentx)] + [data.txid(tx) for tx in template.transactions]
    txids += [txid for txid, _ in template.final_txids]
    if data.merkle_hash(txids) != header['merkle_root']:
        return None
    return {'header': header, 'txs': [gentx] + list(template.transactions),
            'hogex': template.hogex, 'mweb': template.mweb}


class BlockSubmitter:
    """submit(block, ...) -> Deferred[SubmitResult] of the RPC path; the P2P path runs alongside."""

    def __init__(self, rpc: RpcClient, p2p: BitcoindP2P | None = None, retries: int = SUBMIT_RETRIES,
                 retry_delay: float = SUBMIT_RETRY_DELAY, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.rpc, self.p2p = rpc, p2p
        self.retries, self.retry_delay = retries, retry_delay
        self._reactor: Any = reactor

    def submit(self, block: Block, segwit: bool = False, expect_valid: bool = True,
               legacy: bool = False) -> defer.Deferred[SubmitResult]:
        """Submit `block` (a block dict); `segwit` selects the witness serialization for RPC.

        `expect_valid` is whether our own PoW check says the block meets its target;
        a disagreeing answer is logged as an error. `legacy` uses getmemorypool(hex).
        """
        block_hash = data.header_hash(block['header'])
        if block.get('mweb') is None:
            self._send_p2p(block, block_hash, self.retries)
            raw = (data.block_type if segwit else data.stripped_block_type).pack(block)
        else:
            raw = serialize_block(block, segwit)
        d = self._submit_rpc(raw.hex(), block_hash, legacy)
        d.addCallback(self._log_result, block_hash, expect_valid)
        return d

    def _send_p2p(self, block: Block, block_hash: int, tries_left: int) -> None:
        if self.p2p is None:
            return
        if self.p2p.send_block(block):
            log.info('Block %064x sent to bitcoind over P2P', block_hash)
        elif tries_left > 1:
            self._reactor.callLater(self.retry_delay, self._send_p2p, block, block_hash, tries_left - 1)
        else:
            log.error('Block %064x could not be sent over P2P: no connection to bitcoind', block_hash)

    @defer.inlineCallbacks
    def _submit_rpc(self, block_hex: str, block_hash: int,
                    legacy: bool) -> Generator[defer.Deferred[Any], Any, SubmitResult]:
        """§10.3: every error, a JSON-RPC error answer included, is retried (10 x 10 s)."""
        last_error: RpcFailure | None = None
        for attempt in range(1, self.retries + 1):
            try:
                if legacy:
                    answer = yield self.rpc.call('getmemorypool', block_hex)
                    return SubmitResult('accepted') if answer is True else SubmitResult('rejected', repr(answer))
                try:
                    answer = yield self.rpc.call('submitblock', block_hex)
                except RpcError as e:
                    if e.code != METHOD_NOT_FOUND:
                        raise
                    answer = yield self.rpc.call('getblocktemplate', {'mode': 'submit', 'data': block_hex})
                return classify_submitblock(answer)
            except RpcFailure as e:
                last_error = e
                log.warning('submitting block %064x to bitcoind failed (attempt %d of %d): %s',
                            block_hash, attempt, self.retries, e)
                if attempt < self.retries:
                    yield task.deferLater(self._reactor, self.retry_delay, lambda: None)
        if isinstance(last_error, RpcError):
            # bitcoind kept refusing the block itself (e.g. "Block decode failed")
            return SubmitResult('rejected', last_error.message)
        return SubmitResult('failed', str(last_error))

    @staticmethod
    def _log_result(result: SubmitResult, block_hash: int, expect_valid: bool) -> SubmitResult:
        if result.accepted:
            log.info('Block %064x submitted to bitcoind over RPC: %s', block_hash, result)
        else:
            log.error('Block %064x submitted to bitcoind over RPC: %s', block_hash, result)
        if result.status in ('accepted', 'rejected') and result.accepted != expect_valid:
            log.error('bitcoind disagrees with our proof-of-work check for block %064x: we expected it to be '
                      '%s, bitcoind says %s', block_hash, 'valid' if expect_valid else 'invalid', result)
        return result


class ParentHeights:
    """Heights of parent-chain blocks by hash (integer), cached and fetched on demand."""

    def __init__(self, rpc: RpcClient | None = None, p2p: BitcoindP2P | None = None, limit: int = 20000) -> None:
        self.rpc, self.limit = rpc, limit
        self._heights: OrderedDict[int, int] = OrderedDict()
        self._pending: dict[int, list[defer.Deferred[int]]] = {}
        self._rpc_has_getblockheader = True
        self.best_height = 0
        if p2p is not None:
            p2p.new_headers.watch(self._learn_headers)

    def record(self, block_hash: int, height: int) -> None:
        self._heights[block_hash] = height
        self._heights.move_to_end(block_hash)
        while len(self._heights) > self.limit:
            self._heights.popitem(last=False)
        self.best_height = max(self.best_height, height)

    def known(self, block_hash: int) -> int | None:
        return self._heights.get(block_hash)

    def get(self, block_hash: int) -> defer.Deferred[int]:
        """Deferred firing with the height of `block_hash` (fails with RpcFailure or KeyError)."""
        if block_hash in self._heights:
            return defer.succeed(self._heights[block_hash])
        if block_hash in self._pending:
            waiter: defer.Deferred[int] = defer.Deferred()
            self._pending[block_hash].append(waiter)
            return waiter
        if self.rpc is None:
            return defer.fail(KeyError('height of block %064x is unknown' % block_hash))
        self._pending[block_hash] = []
        d = self._fetch(block_hash)
        d.addBoth(self._fetched, block_hash)
        return d

    @defer.inlineCallbacks
    def _fetch(self, block_hash: int) -> Generator[defer.Deferred[Any], Any, int]:
        assert self.rpc is not None, 'get() fetches only with an RPC client'
        hex_hash = '%064x' % block_hash
        if self._rpc_has_getblockheader:
            try:
                header = yield self.rpc.call('getblockheader', hex_hash)
                return int(header['height'])
            except RpcError as e:
                if e.code != METHOD_NOT_FOUND:
                    raise
                self._rpc_has_getblockheader = False
        block = yield self.rpc.call('getblock', hex_hash)
        return int(block['height'])

    def _fetched(self, result: int | Failure, block_hash: int) -> int | Failure:
        waiters = self._pending.pop(block_hash, [])
        if isinstance(result, int):
            self.record(block_hash, result)
        for d in waiters:
            if isinstance(result, int):
                d.callback(result)
            else:
                d.errback(result)
        return result

    def height_now(self, block_hash: int | None, default: int | None = None) -> int | None:
        """The cached height, or `default` while a lookup is started in the background."""
        if block_hash is None:
            return default
        if block_hash in self._heights:
            return self._heights[block_hash]
        if self.rpc is not None and block_hash not in self._pending:
            self.get(block_hash).addErrback(lambda failure: log.debug(
                'height lookup of %064x failed: %s', block_hash, failure.getErrorMessage()))
        return default

    def rel_height(self, block_hash: int | None, best_block_hash: int | None = None) -> int:
        """Height of `block_hash` minus the highest height seen (0 for the best; unknown counts as 0)."""
        this_height = self.height_now(block_hash, 0) or 0
        best = (self.height_now(best_block_hash, 0) or 0) if best_block_hash is not None else 0
        self.best_height = max(self.best_height, this_height, best)
        return this_height - self.best_height

    def _learn_headers(self, headers: Iterable[data.Header]) -> None:
        for header in headers:
            parent_height = self._heights.get(header['previous_block'])
            if parent_height is not None:
                self.record(data.header_hash(header), parent_height + 1)
