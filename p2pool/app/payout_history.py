"""Payout history: the blocks found by the pool (through any node) whose coinbase pays
this node's payees, with their confirmations and state.

Every share that reaches the tracker and meets its block target is a block of the pool.
Its coinbase is read from bitcoind (`getblock HASH false`, the raw block) once; the
outputs paying one of this node's payees (its payout addresses and the addresses its
miners mine to) make the row. Confirmations come from `getblockheader` for the blocks
within REORG_CHECK_DEPTH of bitcoind's tip and those reaching maturity, on every refresh
(each new block template, at most every MIN_REFRESH_INTERVAL seconds); deeper immature
blocks count up with the tip. -1 (not in bitcoind's best chain) is 'orphaned', at least
COINBASE_MATURITY is 'mature' (the coinbase may be spent in the next block), else
'immature'. Mature rows are final. Rows that pay us go to the store
(p2pool.store.payouts); blocks that do not pay us are kept in memory only, so that the
recent-blocks table can still mark them orphaned.
"""
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet import defer

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin import serialize
from p2pool.bitcoin.data import bits_to_target, header_type, tx_type
from p2pool.bitcoin.rpc import RpcError, RpcFailure
from p2pool.store.schema import StoreError

log = logging.getLogger(__name__)

COINBASE_MATURITY = 100
MIN_REFRESH_INTERVAL = 2.0
#: blocks this close to bitcoind's tip are asked about on every refresh (a reorganisation may
#: orphan them or bring them back); deeper ones only when they reach maturity
REORG_CHECK_DEPTH = 12
#: a block bitcoind does not know yet is asked for again for this long, then forgotten
UNKNOWN_BLOCK_PATIENCE = 600.0
RPC_BLOCK_NOT_FOUND = -5


@dataclass
class PoolBlock:
    """One block of the pool as bitcoind sees it."""
    block_hash: int
    share_hash: int
    height: int = -1
    time: float = 0.0
    amounts: dict[str, int] = field(default_factory=dict)   # payee address -> satoshis
    confirmations: int = 0
    state: str = 'immature'

    def row(self) -> dict[str, Any]:
        return {'block_hash': '%064x' % self.block_hash, 'height': self.height, 'ts': self.time,
                'share_hash': '%064x' % self.share_hash, 'amounts': dict(self.amounts),
                'confirmations': self.confirmations, 'state': self.state}


def state_of(confirmations: int) -> str:
    if confirmations < 0:
        return 'orphaned'
    return 'mature' if confirmations >= COINBASE_MATURITY else 'immature'


def coinbase_outputs(raw_block: bytes) -> tuple[dict[str, Any], list[tuple[bytes, int]]]:
    """(header, [(script, satoshis)] of the coinbase) of a raw block; only the coinbase is decoded."""
    header, pos = header_type.read(raw_block, 0)
    _count, pos = serialize.VarInt.read(raw_block, pos)
    coinbase, _pos = tx_type.read(raw_block, pos)
    return header, [(out['script'], out['value']) for out in coinbase['tx_outs']]


class PayoutHistory:
    """Follows the pool's blocks at bitcoind (see the module docstring)."""

    def __init__(self, net: Any, tracker: Any, rpc: Any, store: Any, payees: Callable[[], set[str]],
                 clock: Callable[[], float]) -> None:
        self.net, self.tracker, self.rpc, self.store = net, tracker, rpc, store
        self.payees, self.clock = payees, clock
        self.blocks: dict[int, PoolBlock] = {}
        self._waiting: dict[int, tuple[int, float]] = {}     # block hash -> (share hash, first seen)
        self._running: defer.Deferred | None = None
        self._last_refresh = 0.0
        self._load()
        tracker.on_added.append(self._share_added)
        for share in list(tracker.items.values()):
            self._share_added(share)

    def _load(self) -> None:
        if self.store is None:
            return
        for row in self.store.load_payouts():
            try:
                block = PoolBlock(int(row['block_hash'], 16), int(row['share_hash'], 16), row['height'], row['ts'],
                                  {str(k): int(v) for k, v in row['amounts'].items()}, row['confirmations'],
                                  row['state'])
            except (ValueError, TypeError, AttributeError):
                log.warning('skipping a damaged payout record %r', row.get('block_hash'))
                continue
            self.blocks[block.block_hash] = block

    def _share_added(self, share: Any) -> None:
        if share.pow_hash > bits_to_target(share.header['bits']):
            return
        if share.hash not in self.blocks and share.hash not in self._waiting:
            self._waiting[share.hash] = (share.hash, self.clock())

    # --- bitcoind ------------------------------------------------------------------------

    def refresh(self) -> defer.Deferred:
        """Examine new blocks and update confirmations; one refresh at a time."""
        now = self.clock()
        if self._running is not None or now < self._last_refresh + MIN_REFRESH_INTERVAL:
            return defer.succeed(None)
        self._last_refresh = now
        running = self._running = self._refresh(now)

        def done(result: Any) -> Any:
            self._running = None
            return result
        running.addBoth(done)      # may run at once: the refresh can complete synchronously
        running.addErrback(lambda failure: log.error('payout history refresh failed: %s',
                                                     failure.getErrorMessage()))
        return running

    @defer.inlineCallbacks
    def _refresh(self, now: float) -> Any:
        scripts = self._payee_scripts()
        for block_hash, (share_hash, first_seen) in list(self._waiting.items()):
            try:
                raw = yield self.rpc.call('getblock', '%064x' % block_hash, False)
                header, outputs = coinbase_outputs(bytes.fromhex(raw))
            except RpcError as e:
                if e.code == RPC_BLOCK_NOT_FOUND and now < first_seen + UNKNOWN_BLOCK_PATIENCE:
                    continue
                log.info('block %064x of the pool is not at bitcoind (%s); not followed', block_hash, e.message)
                del self._waiting[block_hash]
                continue
            except RpcFailure as e:
                log.debug('payout history: bitcoind unreachable: %s', e)
                return
            except (serialize.DecodeError, ValueError, TypeError) as e:
                log.warning('block %064x from bitcoind does not decode: %s', block_hash, e)
                del self._waiting[block_hash]
                continue
            del self._waiting[block_hash]
            amounts: dict[str, int] = {}
            for script, value in outputs:
                address = scripts.get(script)
                if address is not None:
                    amounts[address] = amounts.get(address, 0) + value
            self.blocks[block_hash] = PoolBlock(block_hash, share_hash, time=float(header['timestamp']),
                                                amounts=amounts)
            if amounts:
                log.info('Block %064x of the pool pays %s', block_hash, ', '.join(
                    '%s %.8f' % (address, value / 1e8) for address, value in sorted(amounts.items())))
        try:
            tip = int((yield self.rpc.call('getblockcount')))
        except (RpcFailure, TypeError, ValueError) as e:
            log.debug('payout history: no block count from bitcoind: %s', e)
            return
        for block in list(self.blocks.values()):
            if block.state == 'mature':
                continue
            depth = tip - block.height + 1
            if block.height >= 0 and depth > REORG_CHECK_DEPTH and (
                    block.state == 'orphaned' or depth < COINBASE_MATURITY):
                # deep in the chain: a reorganisation would not reach it; only the count moves
                changed = block.state == 'immature' and self._update(block, {'confirmations': depth}, now)
            else:
                try:
                    info = yield self.rpc.call('getblockheader', '%064x' % block.block_hash)
                except RpcFailure as e:
                    log.debug('getblockheader %064x failed: %s', block.block_hash, e)
                    continue
                changed = self._update(block, info, now)
            if changed and block.amounts:
                self._save(block)

    def _update(self, block: PoolBlock, info: Any, now: float) -> bool:
        confirmations = int(info.get('confirmations', 0)) if isinstance(info, dict) else 0
        height = int(info.get('height', block.height)) if isinstance(info, dict) else block.height
        state = state_of(confirmations)
        changed = (confirmations, height, state) != (block.confirmations, block.height, block.state)
        block.confirmations, block.height, block.state = confirmations, height, state
        return changed

    def _save(self, block: PoolBlock) -> None:
        if self.store is None:
            return
        try:
            self.store.save_payout(block.row())
        except StoreError as e:
            log.warning('could not store the payout of block %064x: %s', block.block_hash, e)

    def _payee_scripts(self) -> dict[bytes, str]:
        scripts = {}
        for address in self.payees():
            for padding in (True, False):
                try:
                    scripts[bitcoin_address.address_to_script(address, self.net.PARENT, padding)] = address
                except ValueError:     # AddressError: not an address of this network
                    break
        return scripts

    # --- what the web, /metrics and ctl show -------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """Blocks paying our payees, newest first, in coins (for /web/payouts and `ctl payouts`)."""
        paying = sorted((block for block in self.blocks.values() if block.amounts and block.height >= 0),
                        key=lambda block: (block.height, block.time), reverse=True)
        return [{'height': block.height, 'hash': '%064x' % block.block_hash, 'time': block.time,
                 'share': '%064x' % block.share_hash,
                 'payouts': {address: value / 1e8 for address, value in sorted(block.amounts.items())},
                 'total': sum(block.amounts.values()) / 1e8,
                 'confirmations': block.confirmations, 'state': block.state} for block in paying]

    def totals(self) -> dict[str, float]:
        """{state: coins} over all rows."""
        totals = {state: 0 for state in ('immature', 'mature', 'orphaned')}
        for block in self.blocks.values():
            totals[block.state] += sum(block.amounts.values())
        return {state: value / 1e8 for state, value in totals.items()}

    def block_state(self, block_hash: int) -> str | None:
        block = self.blocks.get(block_hash)
        return block.state if block is not None and block.height >= 0 else None
