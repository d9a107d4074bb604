"""Block templates from bitcoind (worker.md §1.1): parsing, long polling, refresh.

parse_template() turns a getblocktemplate answer into a Template (or raises
TemplateError). TemplateSource keeps `current` fresh from three triggers:

* a long poll (getblocktemplate with `longpollid`) running in its own worker thread,
* a periodic refresh (every 15 s; every second while bitcoind is unreachable),
* an immediate refresh when the Bitcoin P2P connection announces a block.

Fetching and parsing both happen in RPC worker threads; the reactor only swaps the
finished Template in. Malformed answers are logged and skipped (the last good work stays
current). When bitcoind stops
answering the source logs "lost contact with bitcoind" once, fires
contact_changed(False), and keeps retrying; work resumes on the first good answer.

Core-lineage daemons: the request carries the rules the daemon requires. The source starts
with the network's (segwit) and learns more from the daemon itself: a -8 refusal naming the
rule sets it must be called with (Litecoin Core 0.21.2: "must be called with the segwit & mweb
rule sets (call with {"rules": ["mweb", "segwit"]})") is retried once with them, and every
"!rule" of a template's `rules` is asked for from then on.

Litecoin MWEB (from the activation height on): the template has a `mweb` field (hex, the
extension block) and its last transaction is the HogEx (integrating transaction), serialized
with flag byte 0x08 after the segwit marker. The HogEx is carried as opaque bytes with the
txid and hash the template gives, kept out of `transactions` (so shares never reference it)
and put back last when a block is assembled (p2pool.bitcoin.blocks).

Block submission and parent-block heights live in p2pool.bitcoin.blocks.
"""
import json
import logging
import re
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, task
from twisted.python.failure import Failure

from p2pool.bitcoin import data
from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.hashes import hash256
from p2pool.bitcoin.mweb import spent_txids
from p2pool.bitcoin.events import Event
from p2pool.bitcoin.rpc import METHOD_NOT_FOUND, RpcBadReply, RpcClient, RpcError, RpcFailure, gbt_rules

log = logging.getLogger(__name__)

POLL_INTERVAL = 15.0
RETRY_INTERVAL = 1.0
STALE_AFTER = 60.0
LONGPOLL_TIMEOUT = 600.0


MWEB_FLAG = 0x08      # transaction flag bit: an MWEB part follows the outputs (Litecoin)
RULES_ERROR = -8      # RPC_INVALID_PARAMETER: also "must be called with the ... rule sets"


class TemplateError(ValueError):
    """A getblocktemplate answer that cannot be turned into work."""


@dataclass(frozen=True)
class FinalTransaction:
    """A transaction that must end the block unchanged (Litecoin's HogEx): bytes as received,
    txid and wtxid (integers) as the template gives them, and the txids its inputs spend (a
    HogEx spends the previous HogEx's output and every peg-in output of its block, so the
    peg-in transactions must stay in any block that ends with it)."""
    raw: bytes
    txid: int
    wtxid: int
    spends: frozenset[int] = frozenset()


def is_mweb_flagged(raw: bytes) -> bool:
    """Whether `raw` is a transaction serialized with the segwit marker and the MWEB flag bit."""
    return len(raw) > 6 and raw[4] == 0 and bool(raw[5] & MWEB_FLAG)


def rules_from_refusal(message: str) -> list[str]:
    """Rule names a getblocktemplate refusal says the call needs ([] when it names none)."""
    found = re.search(r'\{.*\}', message)
    if found:
        try:
            rules = json.loads(found.group(0)).get('rules')
        except (ValueError, AttributeError):
            rules = None
        if isinstance(rules, list) and all(isinstance(rule, str) for rule in rules):
            return list(rules)
    named = re.search(r'must be called with the ([\w ,&-]+?) rule set', message)
    if named:
        return [name for name in re.split(r'[\s,&]+', named.group(1)) if name and name != 'and']
    return []


@dataclass
class Template:
    """One unit of bitcoind work; integers for hashes (display hex -> int)."""
    version: int
    previous_block: int
    height: int
    bits: int
    time: int
    subsidy: int  # coinbasevalue: block reward plus fees, in base units
    coinbaseflags: bytes
    transactions: list[data.Tx]  # tx dicts, template order
    transaction_keys: list[int]  # P2Pool keys: hash256 of each tx's bytes as sent
    transaction_fees: list[int | None]  # int or None, aligned with transactions
    rules: list[str]
    last_update: float
    default_witness_commitment: bytes | None = None  # output script, when bitcoind sends one
    longpollid: str | None = None
    mintime: int | None = None
    raw_transactions: list[bytes] = field(default_factory=list, repr=False)  # bytes as received
    mweb: bytes | None = None  # Litecoin MWEB extension block as the template sends it, else None
    hogex: FinalTransaction | None = None  # the MWEB integrating transaction, last in every block
    #: per transaction, the indices (into `transactions`) of the ones it spends from (`depends`)
    transaction_depends: list[tuple[int, ...]] = field(default_factory=list, repr=False)

    @property
    def final_txids(self) -> list[tuple[int, int]]:
        """(txid, wtxid) of the transactions that end the block after the selected ones."""
        return [] if self.hogex is None else [(self.hogex.txid, self.hogex.wtxid)]

    @property
    def block_target(self) -> int:
        return data.bits_to_target(self.bits)

    @property
    def segwit(self) -> bool:
        """True when blocks must be submitted with witness serialization."""
        return 'segwit' in self.rules or '!segwit' in self.rules


def _hex_int(result: Mapping[str, Any], key: str) -> int:
    value = result.get(key)
    if not isinstance(value, str):
        raise TemplateError('template field %r is missing or not text' % key)
    try:
        return int(value, 16)
    except ValueError:
        raise TemplateError('template field %r is not hex: %r' % (key, value)) from None


def _int(result: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = result.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TemplateError('template field %r is missing or not a non-negative integer: %r' % (key, value))
    return value


def _depends(entry: Mapping[str, Any], index: int) -> tuple[int, ...]:
    """The 0-based indices of the earlier transactions entry `index` spends from (BIP 22 `depends`
    counts from 1)."""
    depends = entry.get('depends', [])
    if not isinstance(depends, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= index for d in depends):
        raise TemplateError('template transaction %d has a bad depends list %r' % (index, depends))
    return tuple(d - 1 for d in depends)


def _coinbaseflags(result: Mapping[str, Any]) -> bytes:
    try:
        if 'coinbaseflags' in result:
            return bytes.fromhex(result['coinbaseflags'])
        aux = result.get('coinbaseaux') or {}
        if not isinstance(aux, dict):
            raise TemplateError('template field coinbaseaux is not an object')
        return b''.join(bytes.fromhex(value) for value in aux.values())
    except (TypeError, ValueError) as e:
        raise TemplateError('template coinbase flags are not hex: %s' % e) from None


def parse_template(result: Any, now: float | None = None, height: int | None = None) -> Template:
    """Template from a getblocktemplate (or legacy getmemorypool) answer; raises TemplateError.

    `height` is used when the answer has none (the caller looked it up).
    """
    if not isinstance(result, dict):
        raise TemplateError('getblocktemplate answered %s, not an object' % type(result).__name__)
    transactions: list[data.Tx] = []
    keys: list[int] = []
    fees: list[int | None] = []
    raw_list: list[bytes] = []
    depends: list[tuple[int, ...]] = []
    hogex: FinalTransaction | None = None
    entries = result.get('transactions', [])
    if not isinstance(entries, list):
        raise TemplateError('template field transactions is not a list')
    for index, entry in enumerate(entries):
        if isinstance(entry, str):  # getmemorypool lists bare hex
            entry = {'data': entry}
        if not isinstance(entry, dict) or not isinstance(entry.get('data'), str):
            raise TemplateError('template transaction %d has no hex data' % index)
        try:
            raw = bytes.fromhex(entry['data'])
        except ValueError as e:
            raise TemplateError('template transaction %d is not hex: %s' % (index, e)) from None
        if is_mweb_flagged(raw):
            if index != len(entries) - 1:
                raise TemplateError('MWEB-flagged transaction %d is not the last of the template' % index)
            try:
                spends = spent_txids(raw)
            except ValueError as e:
                raise TemplateError('the HogEx (template transaction %d) %s' % (index, e)) from None
            hogex = FinalTransaction(raw, _hex_int(entry, 'txid'), _hex_int(entry, 'hash'), spends)
            continue
        try:
            tx = data.tx_type.unpack(raw)
        except (ValueError, s.DecodeError) as e:
            raise TemplateError('template transaction %d does not decode: %s' % (index, e)) from None
        fee = entry.get('fee')
        if fee is not None and (isinstance(fee, bool) or not isinstance(fee, int)):
            raise TemplateError('template transaction %d has a non-integer fee %r' % (index, fee))
        depends.append(_depends(entry, index))
        transactions.append(tx)
        raw_list.append(raw)
        keys.append(hash256(raw))
        fees.append(fee)
    if height is None:
        height = _int(result, 'height')
    commitment_hex = result.get('default_witness_commitment')
    try:
        commitment = bytes.fromhex(commitment_hex) if commitment_hex is not None else None
    except (TypeError, ValueError):
        raise TemplateError('default_witness_commitment is not hex') from None
    rules = result.get('rules', [])
    if not isinstance(rules, list) or not all(isinstance(rule, str) for rule in rules):
        raise TemplateError('template field rules is not a list of names')
    longpollid = result.get('longpollid')
    mweb_hex = result.get('mweb')
    mweb: bytes | None = None
    if mweb_hex is not None:
        try:
            mweb = bytes.fromhex(mweb_hex)
        except (TypeError, ValueError):
            raise TemplateError('template field mweb is not hex') from None
    if (mweb is None) != (hogex is None):
        raise TemplateError('template has %s' % ('MWEB data but no HogEx as its last transaction' if hogex is None
                                                 else 'a HogEx but no mweb field'))
    return Template(
        version=_int(result, 'version'),
        previous_block=_hex_int(result, 'previousblockhash'),
        height=height,
        bits=_hex_int(result, 'bits'),
        time=_int(result, 'time') if 'time' in result else _int(result, 'curtime'),
        subsidy=_int(result, 'coinbasevalue'),
        coinbaseflags=_coinbaseflags(result),
        transactions=transactions,
        transaction_keys=keys,
        transaction_fees=fees,
        rules=list(rules),
        last_update=time.time() if now is None else now,
        default_witness_commitment=commitment,
        longpollid=longpollid if isinstance(longpollid, str) else None,
        mintime=result.get('mintime') if isinstance(result.get('mintime'), int) else None,
        raw_transactions=raw_list,
        mweb=mweb,
        hogex=hogex,
        transaction_depends=depends,
    )


class TemplateSource:
    """The freshest bitcoind Template; fires `changed(template)` on every accepted update.

    Events: changed(template); contact_changed(bool) on losing / regaining bitcoind.
    `heights` (optional, a p2pool.bitcoin.blocks.ParentHeights) learns the height
    of every template's previous block.
    """

    def __init__(self, rpc: RpcClient, net: Any, p2p: Any = None, heights: Any = None,
                 rules: list[str] | None = None, poll_interval: float = POLL_INTERVAL,
                 retry_interval: float = RETRY_INTERVAL, longpoll: bool = True, reactor: Any = None) -> None:
        # p2p: a p2pool.bitcoin.p2p.BitcoindP2P; heights: a p2pool.bitcoin.blocks.ParentHeights
        # (both import this module)
        if reactor is None:
            from twisted.internet import reactor
        self.rpc, self.net, self.p2p, self.heights = rpc, net, p2p, heights
        self.rules = gbt_rules(net) if rules is None else list(rules)
        self.poll_interval, self.retry_interval = poll_interval, retry_interval
        self._reactor: Any = reactor
        self._longpoll_enabled = longpoll
        self._longpoll_rpc: RpcClient | None = None
        self.current: Template | None = None
        self.last_latency: float | None = None  # seconds of the last plain getblocktemplate round trip
        self.contact: bool | None = None  # None until the first answer, then True / False
        self.last_error: str | None = None
        self.changed = Event()
        self.contact_changed = Event()
        self._sequence = 0  # request counter: newer requests win over older ones
        self._applied_sequence = -1
        self._poller: task.LoopingCall | None = None
        self._running = False
        self._use_getmemorypool = False
        self._retry_call: Any = None
        self._longpoll_running = False

    # --- life cycle -----------------------------------------------------------

    def start(self) -> defer.Deferred[Template | None]:
        """Start polling; Deferred firing with the first template, or None if bitcoind did not
        answer (then it is retried every retry_interval until it does)."""
        self._running = True
        if self.p2p is not None:
            self.p2p.new_block.watch(self._on_block_announced)
        poller = self._poller = task.LoopingCall(self._periodic)
        poller.clock = self._reactor
        poller.start(self.poll_interval, now=False)
        if self._longpoll_enabled:
            self._longpoll_rpc = self.rpc.clone(timeout=LONGPOLL_TIMEOUT, max_threads=1,
                                                name=self.rpc.name + '-longpoll')
        return self.refresh()  # the first template also starts the long poll (_apply)

    def stop(self) -> None:
        self._running = False
        if self.p2p is not None:
            try:
                self.p2p.new_block.unwatch(self._on_block_announced)
            except ValueError:
                pass
        if self._poller is not None and self._poller.running:
            self._poller.stop()
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        if self._longpoll_rpc is not None:
            self._longpoll_rpc.close()
            self._longpoll_rpc = None

    def is_stale(self, now: float | None = None) -> bool:
        """True when there is no template or the last good one is older than 60 s."""
        now = time.time() if now is None else now
        return self.current is None or now - self.current.last_update > STALE_AFTER

    @property
    def legacy(self) -> bool:
        """True while work comes from getmemorypool: blocks then go back with getmemorypool(hex)."""
        return self._use_getmemorypool

    # --- polling --------------------------------------------------------------

    def _periodic(self) -> None:
        self.refresh()

    def _on_block_announced(self, block_hash: int) -> None:
        if self.current is None or block_hash != self.current.previous_block:
            log.debug('bitcoind announced block %064x; refreshing work', block_hash)
            self.refresh()

    def refresh(self) -> defer.Deferred[Template | None]:
        """Fetch a template now; Deferred firing with the Template or None (failure logged)."""
        self._sequence += 1
        sequence = self._sequence
        d = self.rpc.run_in_pool(self._fetch_blocking, self.rpc, None, attempts=3)
        return d.addCallbacks(self._apply, self._failed, callbackArgs=(sequence,))

    def _fetch_blocking(self, client: RpcClient, longpollid: str | None, attempts: int = 1,
                        timeout: float | None = None) -> Template:
        """Runs in a worker thread: getblocktemplate (or getmemorypool) and parsing."""
        for attempt in range(1, attempts + 1):
            try:
                return self._fetch_once(client, longpollid, timeout)
            except (TemplateError, RpcBadReply):
                raise
            except RpcFailure:
                if attempt == attempts:
                    raise
        raise ValueError('attempts must be at least 1')

    def _fetch_once(self, client: RpcClient, longpollid: str | None, timeout: float | None) -> Template:
        # §1.1: a "method not found" from one call switches to the other one (in both directions)
        try:
            result = self._call_template(client, longpollid, timeout)
        except RpcError as e:
            if e.code != METHOD_NOT_FOUND:
                raise
            missing, other = (('getmemorypool', 'getblocktemplate') if self._use_getmemorypool
                              else ('getblocktemplate', 'getmemorypool'))
            log.warning('bitcoind has no %s; switching to %s', missing, other)
            self._use_getmemorypool = not self._use_getmemorypool
            result = self._call_template(client, longpollid, timeout)
        height = None
        if isinstance(result, dict) and 'height' not in result and isinstance(
                result.get('previousblockhash'), str):
            try:
                height = client.call_blocking('getblock', result['previousblockhash'])['height'] + 1
            except (KeyError, TypeError):
                raise TemplateError('cannot learn the height of the template\'s parent block') from None
        return parse_template(result, height=height)

    def _call_template(self, client: RpcClient, longpollid: str | None, timeout: float | None) -> Any:
        if self._use_getmemorypool:
            return client.call_blocking('getmemorypool', timeout=timeout)
        started = time.monotonic()
        try:
            result = client.call_blocking('getblocktemplate', self._request(longpollid), timeout=timeout)
        except RpcError as e:
            # a Core-lineage daemon names the rule sets it needs: learn them and ask again once
            missing = [rule for rule in rules_from_refusal(e.message) if rule not in self.rules]
            if e.code != RULES_ERROR or not missing:
                raise
            self.rules = self.rules + missing
            log.info('bitcoind needs the getblocktemplate rules %s; asking with %s',
                     ', '.join(missing), ', '.join(self.rules))
            result = client.call_blocking('getblocktemplate', self._request(longpollid), timeout=timeout)
        if longpollid is None:   # a long poll's duration is the wait for a block, not latency
            self.last_latency = time.monotonic() - started
        if isinstance(result, dict) and isinstance(result.get('rules'), list):
            # "!rule": the daemon requires the client to know it; ask for it from now on
            required = [rule[1:] for rule in result['rules'] if isinstance(rule, str) and rule.startswith('!')]
            self.rules = self.rules + [rule for rule in required if rule not in self.rules]
        return result

    def _request(self, longpollid: str | None) -> dict[str, Any]:
        request: dict[str, Any] = {'mode': 'template'}
        if self.rules:
            request['rules'] = list(self.rules)
        if longpollid is not None:
            request['longpollid'] = longpollid
        return request

    def _apply(self, template: Template, sequence: int) -> Template | None:
        if not self._running:
            return None
        current = self.current
        # A reply from an older request may arrive after a newer one; it only wins
        # when it is for a higher block (a long poll returning after a refresh began).
        if current is not None and sequence < self._applied_sequence and template.height <= current.height:
            self._mark_contact(True)
            return current
        self._applied_sequence = max(sequence, self._applied_sequence)
        self.current = template
        if self.heights is not None and template.height > 0:
            self.heights.record(template.previous_block, template.height - 1)
        self._mark_contact(True)
        if self._longpoll_rpc is not None and not self._longpoll_running:
            self._longpoll_loop()
        if current is None or current.previous_block != template.previous_block:
            log.info('New work for block %d on top of %064x (%d transactions)',
                     template.height, template.previous_block, len(template.transactions))
        self.changed.happened(template)
        return template

    def _failed(self, failure: Failure) -> Failure | None:
        error = failure.value
        if isinstance(error, (TemplateError, RpcBadReply)):
            # bitcoind answered, so contact is fine; this one answer is just unusable
            log.warning('skipping a malformed block template from bitcoind: %s', error)
            return None
        if isinstance(error, (RpcFailure, KeyError, TypeError)):
            self.last_error = str(error)
            self._mark_contact(False)
            if self._running and (self._retry_call is None or not self._retry_call.active()):
                self._retry_call = self._reactor.callLater(self.retry_interval, self._retry_while_lost)
            return None
        return failure

    def _retry_while_lost(self) -> None:
        if self._running and self.contact is False:
            self.refresh()

    def _mark_contact(self, ok: bool) -> None:
        if ok == self.contact:
            return
        previous, self.contact = self.contact, ok
        if ok and previous is False:
            log.warning('contact with bitcoind restored')
        elif not ok:
            log.warning('lost contact with bitcoind: %s', self.last_error)
        self.contact_changed.happened(ok)

    # --- long polling ---------------------------------------------------------

    @defer.inlineCallbacks
    def _longpoll_loop(self) -> Generator[defer.Deferred[Any], Any, None]:
        """getblocktemplate with longpollid, again and again, in a worker thread of its own.

        Started by the first template; runs until stop() or a daemon without long polling.
        """
        self._longpoll_running = True
        try:
            while self._running and self._longpoll_rpc is not None:
                current = self.current
                if current is None or current.longpollid is None:
                    log.info('bitcoind offers no long polling; relying on P2P and periodic refresh')
                    return
                self._sequence += 1
                sequence, sent_id, started = self._sequence, current.longpollid, time.monotonic()
                rpc = self._longpoll_rpc
                try:
                    template = yield rpc.run_in_pool(self._fetch_blocking, rpc, sent_id)
                except (TemplateError, RpcBadReply) as e:
                    log.warning('skipping a malformed long-poll template from bitcoind: %s', e)
                    template = None
                except RpcFailure as e:
                    log.debug('long poll failed: %s', e)
                    template = None
                    if self._running and self.contact is not False:
                        self.refresh()  # confirms (and announces) a lost contact at once
                if not self._running:
                    return
                if template is not None:
                    self._apply(template, sequence)
                # Guard against a daemon that answers long polls at once with the same id.
                if template is None or (template.longpollid == sent_id
                                        and time.monotonic() - started < self.retry_interval):
                    yield task.deferLater(self._reactor, self.retry_interval, lambda: None)
        finally:
            self._longpoll_running = False
