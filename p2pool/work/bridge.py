"""From the bitcoind template and the best share to miners' work, and from solutions back.

WorkBridge is the one object both miner front-ends (work.stratum, work.getwork)
talk to. It builds work records (worker.md §2), caches them (§3), computes the
share and pseudoshare targets (§4, in work.targets), resolves usernames (§5, in
work.username) and turns solved headers into blocks, aux blocks, shares and
pseudoshares (§8).

Wiring contract (p2pool.app.main / p2pool.sharechain.chain construct it once):

    bridge = WorkBridge(
        net,                 # p2pool.config Network
        template_source,     # .current: p2pool.bitcoin.template.Template or None
                             # .changed: Event fired with each new Template
        tracker,             # p2pool.sharechain.tracker.Tracker
        node,                # work.contracts.WorkNode: .peer_count() -> int; .best_share_hash (int or None);
                             # .watch_new_work(bump): the node calls bump(reason) when the
                             #   best share changes or "punish aggressively" turns on (§1.4);
                             # optional .punish_aggressively (bool)
        payees,              # work.username.PayeeResolver (node address, --fee)
        on_share=fn(share, dead),     # a share our miner found: add to the tracker,
                                      # relay (at once if it is a block), store; the node
                                      # re-evaluates the best chain only if not dead
                                      # (ShareChain.add_local_share fits)
        on_block=fn(block, segwit),   # submit at once (BitcoindBridge.submit_block fits)
        merged=MergedMining or None,  # work.merged: .commitment(), .changed, .submit_solution()
        donation_percentage=0.0,      # --give-author
        coinbtext=(),                 # --coinbtext strings (bytes or text)
        stale_accounting=StaleAccounting or None,   # sharechain.stats (§7): the one place
                             # its miners' shares are recorded (every share found, also those
                             # the children limit keeps out of the chain); asked for stale_info
        stale_info=fn() -> None | 'orphan' | 'doa',   # overrides stale_accounting's answer
        pool_attempts_per_second=fn(tracker, best_hash, lookbehind) -> number)   # default: stats'

Events the bridge fires (watch them for statistics and the web API):
    new_work(counter)                    the new-work counter of §1.4 changed: the one
                                         new-work event (templates, best share, merged work)
    pseudoshare_received(work, dead, user)
    share_found(share, dead, user)
    block_found(block_hash, user)
Rates: local_rates() per worker, local_addr_rates() per payee, hash_rate() (H).

Coinbase nonce space (§3): a miner's 8 coinbase nonce bytes are a 4-byte prefix
chosen by the node and 4 bytes the miner rolls. getwork requests get prefixes
0, 1, 2, ... below 2^31 from the per-entry counter of the work cache; each Stratum
connection reserves one prefix with the top bit set (reserve_extranonce1) and
keeps it as its extranonce1. So no two miners ever hash the same coinbase.
"""
import logging
import random
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin import mweb
from p2pool.bitcoin.hashes import hash256
from p2pool.bitcoin.script import coinbase_script
from p2pool.events import Event
from p2pool.sharechain import stats
from p2pool.sharechain.generate import GenerateError, generate_transaction, stripped_size_budget
from p2pool.sharechain.share import INITIAL_VERSION, voting_version
from p2pool.sharechain.voting import choose_share_version
from p2pool.work import targets
from p2pool.work.contracts import WorkNode
from p2pool.work.username import Username, parse_username

log = logging.getLogger(__name__)

NOT_CONNECTED = 'p2pool is not connected to any peers'
LOST_CONTACT = 'lost contact with bitcoind'
DOWNLOADING = 'p2pool is downloading shares'
UNKNOWN_RULE = 'unknown rule activated'

TEMPLATE_MAX_AGE = 60.0
GETWORK_PREFIX_LIMIT = 2**31        # getwork prefixes stay below; Stratum extranonce1 values above
MIN_HEADER_VERSION = 0x20000000
RATE_LOOKBACK = 600.0
MAX_CACHE_ENTRIES = 10000
#: miners whose last share difficulty is remembered for the statistics
MAX_DIFFICULTY_ENTRIES = 20000
CHILDREN_LIMIT = 4                  # [jt] a dead share joins the tracker only below this many siblings
NTIME_MAX_FUTURE = 7200             # bitcoind refuses blocks more than two hours ahead
_EMPTY_LINK = {'branch': [], 'index': 0}


def ntime_acceptable(job_time, ntime, now) -> bool:
    """Whether a miner's (rolled) header time is usable: not before the job's, not too far ahead."""
    return job_time <= ntime <= max(job_time, now) + NTIME_MAX_FUTURE


class WorkRefused(Exception):
    """The node will not hand out work now (§2.1); `message` is one of the four spec texts."""

    code = -12345

    def __init__(self, message) -> None:
        super().__init__(message)
        self.message = message


class WorkUnavailable(Exception):
    """Work could not be generated (the share generator failed); logged, reported as -32099."""


class SolutionError(ValueError):
    """A solution handler was called with impossible arguments (a front-end bug)."""


@dataclass(frozen=True)
class WorkRecord:
    """What a front-end hands to a miner (§2.4). Hashes and targets are integers."""
    version: int
    previous_block: int
    merkle_link: dict
    coinb1: bytes
    coinb2: bytes
    timestamp: int
    bits: int
    share_target: int        # pseudoshare target
    min_share_target: int    # the share's own target
    block_target: int
    identifier: int          # the new-work counter when the work was generated
    payee: str


@dataclass
class SolutionResult:
    """What became of a solution; `on_time` is the getwork/Stratum boolean (§8 step 9)."""
    on_time: bool
    block: bool = False
    share: object | None = None
    pseudoshare: str = 'accepted'   # 'accepted', 'duplicate', 'low-difficulty' or 'mismatch'


class BaseWork:
    """One generated gentx, shared by every requester with the same (payee, desired share target)."""

    def __init__(self, bridge, record, template, share_info, other_tx_keys, get_share, commitment, segwit) -> None:
        self.bridge, self.record, self.template = bridge, record, template
        self.share_info, self.other_tx_keys, self.get_share = share_info, other_tx_keys, get_share
        self.commitment, self.segwit = commitment, segwit
        self.counter = record.identifier
        self.share_target = record.min_share_target
        self.aux_max_target = -1    # no aux chain: no hash meets it
        if commitment is not None and commitment.works:
            self.aux_max_target = max(self.share_target if work.target == 'p2pool' else work.target
                                      for work in commitment.works.values())
        self.seen: set[Any] = set()        # header hashes of accepted pseudoshares (§8 steps 7-8)
        self.blocks: set[Any] = set()      # header hashes submitted as blocks
        self.cache: dict[Any, Any] = {}          # front-ends keep their encodings of this work here
        self.next_prefix = 0     # the getwork counter n of §3
        self.share_version: int | None = None

    def merkle_root_for(self, nonce8) -> int:
        """The header merkle root of this work with coinbase nonce bytes `nonce8`."""
        record = self.record
        return bitcoin_data.check_merkle_link(hash256(record.coinb1 + nonce8 + record.coinb2), record.merkle_link)

    def solve(self, header, nonce8, pseudoshare_target, user) -> 'SolutionResult':
        """Handle a solved header (§8); nonce8 = the node's 4 prefix bytes || the miner's 4 bytes."""
        return self.bridge.solve(self, header, nonce8, pseudoshare_target, user)


@dataclass
class _Request:
    username: Username
    payee: str
    desired_share_target: int
    hash_rate: object
    template: object


class WorkBridge:
    """Work for miners and the fate of their solutions; see the module docstring for wiring."""

    def __init__(self, net: Any, template_source: Any, tracker: Any, node: WorkNode, payees: Any,
                 on_share: Callable[[Any, bool], object], on_block: Callable[[Any, bool], object],
                 merged: Any = None, donation_percentage: float = 0.0, coinbtext: Iterable[str | bytes] = (),
                 stale_accounting: stats.StaleAccounting | None = None,
                 stale_info: Callable[[], str | None] | None = None,
                 pool_attempts_per_second: Callable[..., float] = stats.pool_attempts_per_second,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        if not 0 <= donation_percentage <= 100:
            raise ValueError('the donation must be a percentage between 0 and 100')
        self.net, self.template_source, self.tracker, self.node = net, template_source, tracker, node
        self.payees, self.on_share, self.on_block, self.merged = payees, on_share, on_block, merged
        self.donation_percentage = donation_percentage
        self.coinbtext = [text.encode('utf-8') if isinstance(text, str) else bytes(text) for text in coinbtext]
        self.stale_accounting = stale_accounting
        if stale_info is None and stale_accounting is not None:
            stale_info = lambda: stale_accounting.stale_info(node.best_share_hash)  # noqa: E731
        self.stale_info = stale_info or (lambda: None)
        self.pool_attempts_per_second = pool_attempts_per_second
        self.clock = clock
        self.rng = rng or random.SystemRandom()

        self.new_work_counter = 0
        self.new_work = Event()
        self.pseudoshare_received = Event()
        self.share_found = Event()
        self.block_found = Event()
        self.local_hash_rate = targets.LocalHashRate()
        self.local_rate_monitor = targets.RateMonitor(RATE_LOOKBACK)
        self.local_addr_rate_monitor = targets.RateMonitor(RATE_LOOKBACK)
        self._cache: OrderedDict[Any, Any] = OrderedDict()
        self._next_extranonce1 = 0
        self._work_key = None
        self._fit: tuple[Any, list[tuple[int, int | None]], int] | None = None   # template, block_transactions, count
        self._addr_rates_memo: tuple[Any, dict[Any, Any]] = (None, {})
        # statistics key (`address.worker`, as the rate monitors) -> difficulty of its last work's
        # share target; the oldest entries go beyond MAX_DIFFICULTY_ENTRIES
        self.last_share_difficulties: OrderedDict[Any, Any] = OrderedDict()

        template_source.changed.watch(self._template_changed)
        node.watch_new_work(self.bump)
        if merged is not None:
            merged.changed.watch(lambda *args: self.bump('merged-mining work changed'))
        if template_source.current is not None:
            self._work_key = self._key_of(template_source.current)

    # --- the new-work event (§1.4) ---------------------------------------------

    @staticmethod
    def _key_of(template):
        return template.version, template.previous_block, template.bits, bool(template.transactions)

    def _template_changed(self, template) -> None:
        key = self._key_of(template)
        old, self._work_key = self._work_key, key
        # transactions count only when the list goes from empty to non-empty
        if old is None or old[:3] != key[:3] or (key[3] and not old[3]):
            self.bump('new block template')

    def bump(self, reason='') -> None:
        """Start a new work epoch: clear the cache, wake long polls, re-notify Stratum miners."""
        self.new_work_counter += 1
        self._cache.clear()
        log.debug('new work %d: %s', self.new_work_counter, reason)
        self.new_work.happened(self.new_work_counter)

    # --- refusals (§2.1) ---------------------------------------------------------

    def refusal(self, now=None) -> str | None:
        """The -12345 message if the node refuses work now, else None."""
        now = self.clock() if now is None else now
        if self.net.PERSIST and self.node.peer_count() == 0:
            return NOT_CONNECTED
        template = self.template_source.current
        if template is None or now - template.last_update > TEMPLATE_MAX_AGE:
            return LOST_CONTACT
        if self.net.PERSIST and self.node.best_share_hash is None:
            return DOWNLOADING
        rules = {rule[1:] if rule.startswith('!') else rule for rule in template.rules} - {''}
        if not rules <= set(self.net.SOFTFORKS_REQUIRED):
            return UNKNOWN_RULE
        return None

    # --- producing work (§2, §3) ---------------------------------------------------

    def reserve_extranonce1(self) -> bytes:
        """A Stratum connection's own 4 coinbase nonce bytes (distinct from every getwork prefix)."""
        value = GETWORK_PREFIX_LIMIT | (self._next_extranonce1 % GETWORK_PREFIX_LIMIT)
        self._next_extranonce1 += 1
        return struct.pack('<I', value)

    def get_work(self, username) -> tuple[WorkRecord, Callable[..., Any]]:
        """getwork: (WorkRecord whose coinb1 ends with this request's 4 prefix bytes, handler).

        handler(header, user=None) -> SolutionResult; getwork miners cannot roll the
        coinbase, so their 4 nonce bytes are zero.
        """
        request = self._prepare(username)
        base = self._base_work(request)
        prefix = struct.pack('<I', base.next_prefix)
        base.next_prefix += 1
        if base.next_prefix >= GETWORK_PREFIX_LIMIT:
            self._cache.pop((request.payee, request.desired_share_target), None)
        record = replace(base.record, coinb1=base.record.coinb1 + prefix,
                         share_target=self._pseudoshare_target(request, base))
        nonce8 = prefix + b'\x00' * 4

        def handler(header, user=request.username.user):
            return base.solve(header, nonce8, record.share_target, user)
        return record, handler

    def get_stratum_work(self, username) -> tuple[WorkRecord, Any]:
        """Stratum: (WorkRecord without nonce bytes, BaseWork); solve with extranonce1 || extranonce2."""
        request = self._prepare(username)
        base = self._base_work(request)
        return replace(base.record, share_target=self._pseudoshare_target(request, base)), base

    def _prepare(self, username):
        now = self.clock()
        message = self.refusal(now)
        if message is not None:
            raise WorkRefused(message)
        if not isinstance(username, Username):
            username = parse_username(username)
        tracker, best = self.tracker, self.node.best_share_hash
        best_share = tracker.items.get(best) if best is not None else None
        payee = self.payees.payee(username, best_share.VERSION if best_share is not None else INITIAL_VERSION)
        template = self.template_source.current
        hash_rate = self.local_hash_rate.hash_rate()
        desired = targets.share_target(
            self.net, username.desired_share_target, hash_rate, bool(getattr(self.node, 'punish_aggressively', False)),
            self._expected_payout(payee, best, template, now), template.block_target, template.subsidy)
        return _Request(username, payee, desired, hash_rate, template)

    def _expected_payout(self, payee, best, template, now):
        """§4.1 step 4's expected payout per block of `payee`, or None where the step does not apply."""
        lookbehind = 3600 // self.net.SHARE_PERIOD
        if (self.pool_attempts_per_second is None or best is None or best not in self.tracker.items
                or self.tracker.get_height(best) <= lookbehind):
            return None
        pool_rate = self.pool_attempts_per_second(self.tracker, best, lookbehind)
        if not pool_rate:
            return None
        rate = self.local_addr_rates(now).get(payee, 0)
        return rate / pool_rate * template.subsidy * (1 - self.donation_percentage / 100)

    def _pseudoshare_target(self, request, base):
        aux = ()
        if base.commitment is not None:
            aux = [work.target for work in base.commitment.works.values() if work.target != 'p2pool']
        return targets.pseudoshare_target(
            self.net, request.username.desired_pseudoshare_target, request.hash_rate,
            request.template.block_target, request.template.subsidy, base.share_target, aux)

    def _base_work(self, request):
        key = (request.payee, request.desired_share_target)
        base = self._cache.get(key)
        if base is None:
            base = self._cache[key] = self._generate(request)
            if len(self._cache) > MAX_CACHE_ENTRIES:
                self._cache.popitem(last=False)
        # /local_stats miner_last_difficulties, keyed like miner_hash_rates (the Miners table joins them)
        user = request.username.user
        self.last_share_difficulties[user] = bitcoin_data.target_to_difficulty(base.share_target)
        self.last_share_difficulties.move_to_end(user)
        if len(self.last_share_difficulties) > MAX_DIFFICULTY_ENTRIES:
            self.last_share_difficulties.popitem(last=False)
        return base

    def _generate(self, request):
        net, tracker, template = self.net, self.tracker, request.template
        best = self.node.best_share_hash
        now = self.clock()
        commitment = self.merged.commitment() if self.merged is not None else None
        pushes = ([commitment.data] if commitment is not None else []) + self.coinbtext
        try:
            version = choose_share_version(tracker, best, net)
            share_data = {
                'previous_share_hash': best,
                'coinbase': coinbase_script(template.height, pushes, template.coinbaseflags),
                'nonce': self.rng.getrandbits(32),
                'address': request.payee,
                'subsidy': template.subsidy,
                'donation': min(65535, int(65535 * self.donation_percentage / 100 + self.rng.random())),
                'stale_info': self.stale_info(),
                'desired_version': voting_version(version),
            }
            share_info, gentx, other_tx_keys, get_share = generate_transaction(
                tracker, share_data, template.block_target, int(now + 0.5), request.desired_share_target,
                _EMPTY_LINK, self.block_transactions(template), net,
                known_txs=dict(zip(template.transaction_keys, template.transactions)), last_txout_nonce=0,
                base_subsidy=net.PARENT.subsidy(template.height), version=version,
                final_txids=getattr(template, 'final_txids', ()))
        except (GenerateError, ValueError, KeyError) as e:
            log.error('cannot generate work: %s', e)
            raise WorkUnavailable(str(e)) from None
        segwit = 'segwit_data' in share_info
        if segwit:
            merkle_link = share_info['segwit_data']['txid_merkle_link']
        else:
            merkle_link = bitcoin_data.calculate_merkle_link([None] + other_tx_keys, 0)
        stripped = bitcoin_data.tx_id_type.pack(gentx)
        record = WorkRecord(
            version=max(template.version, MIN_HEADER_VERSION), previous_block=template.previous_block,
            merkle_link={'branch': list(merkle_link['branch']), 'index': 0},
            coinb1=stripped[:-12], coinb2=stripped[-4:], timestamp=template.time, bits=template.bits,
            share_target=bitcoin_data.bits_to_target(share_info['bits']),
            min_share_target=bitcoin_data.bits_to_target(share_info['bits']),
            block_target=template.block_target, identifier=self.new_work_counter, payee=request.payee)
        base = BaseWork(self, record, template, share_info, other_tx_keys, get_share, commitment, segwit)
        base.share_version = version        # work.handover rebuilds get_share from it after a takeover
        return base

    def block_transactions(self, template) -> list[tuple[int, int | None]]:
        """(key, fee) of the template's transactions a share offers, in template order: all of
        them (a share takes the prefix that leaves room for its gentx), except that an MWEB
        template whose transactions do not fit gives up others than its peg-ins and what they
        spend from (p2pool.bitcoin.mweb). Worked out once per template."""
        if self._fit is None or self._fit[0] is not template or self._fit[2] != len(template.transactions):
            fit = mweb.template_fit(template, stripped_size_budget(self.net))
            count = len(template.transactions)
            indices = list(range(count)) if fit is None else fit
            if fit is None:
                log.error('the MWEB peg-ins of the block template at height %d do not fit beside the payout '
                          'transaction: a block found now would be rejected (lower blockmaxweight in '
                          'litecoin.conf)', template.height)
            elif len(indices) < count:
                log.info('block template at height %d: %d of its %d transactions left out to make room for the '
                         'payouts, its MWEB peg-ins kept', template.height, count - len(indices), count)
            keys, fees = template.transaction_keys, template.transaction_fees
            self._fit = (template, [(keys[i], fees[i]) for i in indices], count)
        return self._fit[1]

    # --- solutions (§8) ----------------------------------------------------------------

    def solve(self, base, header, nonce8, pseudoshare_target, user) -> SolutionResult:
        """§8 in the spec's order: the block goes to bitcoind before anything can stop it."""
        if len(nonce8) != 8:
            raise SolutionError('the coinbase nonce must be 8 bytes, got %d' % len(nonce8))
        now = self.clock()
        header_bytes = bitcoin_data.header_type.pack(header)
        header_hash = hash256(header_bytes)
        pow_hash = self.net.PARENT.pow_hash(header_bytes)
        record = base.record
        coinbase = record.coinb1 + nonce8 + record.coinb2
        result = SolutionResult(on_time=False)
        if pow_hash <= bitcoin_data.bits_to_target(header['bits']):
            result.block = True
            self._submit_block(base, header, header_hash, coinbase, user)
        merkle_root = bitcoin_data.check_merkle_link(hash256(coinbase), record.merkle_link)
        if (header['previous_block'] != record.previous_block or header['bits'] != record.bits
                or header['merkle_root'] != merkle_root):
            log.error('worker %s submitted a header that does not belong to its work%s', user,
                      ' (it met the block target!)' if result.block else '')
            result.pseudoshare = 'mismatch'
            return result
        on_time = result.on_time = base.counter == self.new_work_counter
        if pow_hash <= base.aux_max_target and self.merged is not None:
            gentx = bitcoin_data.tx_id_type.unpack(coinbase)
            self.merged.submit_solution(base.commitment, header, gentx, record.merkle_link['branch'],
                                        pow_hash, base.share_target)
        if pow_hash <= base.share_target and header_hash not in base.seen:
            result.share = self._make_share(base, header, nonce8, on_time, user, now)
        if pow_hash > pseudoshare_target:
            log.debug('worker %s submitted share with hash > target', user)
            result.pseudoshare = 'low-difficulty'
        elif header_hash in base.seen:
            log.warning('worker %s submitted share more than once!', user)
            result.pseudoshare = 'duplicate'
        else:
            base.seen.add(header_hash)
            work = bitcoin_data.target_to_average_attempts(pseudoshare_target)
            self.local_hash_rate.add(now, work)
            self.local_rate_monitor.add_datum(now, {'work': work, 'dead': not on_time, 'user': user,
                                                    'share_target': base.share_target})
            self.local_addr_rate_monitor.add_datum(now, {'work': work, 'payee': record.payee})
            self.pseudoshare_received.happened(work, not on_time, user)
        return result

    def _submit_block(self, base, header, header_hash, coinbase, user) -> None:
        gentx = bitcoin_data.tx_id_type.unpack(coinbase)
        if base.segwit:
            gentx = dict(gentx, marker=0, flag=1, witness=[[bitcoin_data.P2POOL_WITNESS_RESERVED_VALUE]])
        known = dict(zip(base.template.transaction_keys, base.template.transactions))
        block = {'header': header, 'txs': [gentx] + [known[key] for key in base.other_tx_keys]}
        if getattr(base.template, 'mweb', None) is not None:    # Litecoin MWEB: HogEx last, then the MWEB data
            block.update(hogex=base.template.hogex, mweb=base.template.mweb)
        log.warning('GOT BLOCK FROM MINER! Passing to bitcoind! %064x (worker %s)', header_hash, user)
        try:
            self.on_block(block, base.template.segwit)
        except Exception:
            log.exception('submitting block %064x failed', header_hash)
        if header_hash not in base.blocks:     # a resubmitted block goes to bitcoind again, counts once
            base.blocks.add(header_hash)
            self.block_found.happened(header_hash, user)

    def _make_share(self, base, header, nonce8, on_time, user, now):
        try:
            share = base.get_share(header, int.from_bytes(nonce8, 'little'), time_seen=now)
        except (GenerateError, ValueError) as e:
            log.error('a solved header did not make a share: %s', e)
            return None
        dead = not on_time
        if self.stale_accounting is not None:
            self.stale_accounting.record_local_share(share.hash, dead)
        siblings = len(self.tracker.reverse.get(share.previous_hash, ()))
        log.info('GOT SHARE! %s %064x prev %s%s', user, share.hash,
                 '%064x' % share.previous_hash if share.previous_hash is not None else 'None',
                 ' DEAD ON ARRIVAL' if dead else '')
        if on_time or siblings < CHILDREN_LIMIT:
            try:
                self.on_share(share, dead)
            except Exception:
                log.exception('handing share %064x to the node failed', share.hash)
        self.share_found.happened(share, dead, user)
        return share

    # --- rates -------------------------------------------------------------------------

    def hash_rate(self) -> float | None:
        """The node's local hash rate H of §4.1 (None until 50 pseudoshares are known)."""
        return self.local_hash_rate.hash_rate()

    def local_rates(self, now=None) -> tuple[dict[Any, float], dict[Any, float]]:
        """({user: hashes/s}, {user: dead hashes/s}) over the last 10 minutes."""
        return self.local_rate_monitor.rates(self.clock() if now is None else now, 'user')

    def local_addr_rates(self, now=None) -> dict[str, float]:
        """{payee address: hashes/s} over the last 10 minutes (memoised for a second)."""
        now = self.clock() if now is None else now
        stamp, rates = self._addr_rates_memo
        if stamp != int(now):
            rates = self.local_addr_rate_monitor.rates(now, 'payee')[0]
            self._addr_rates_memo = (int(now), rates)
        return rates
