"""Share generation: share_info and the generation transaction (shares.md §6, §7, §11).

`generate_transaction` both creates new work and re-derives a received share
for verification (verify.check_share). It is split into two steps so the
verifier can compare share_info before paying for the gentx:

    plan = plan_share(tracker, net, ShareTerms(...))   # §11.1-§11.8: share_info, payouts, tx keys
    gentx_bytes, txid = plan.stripped_gentx(ref_hash, last_txout_nonce)   # §6

Payee keys are [jt] address strings. The tracker is read through
`tracker.items`, `get_height_and_last`, `get_nth_parent_hash` and
`get_min_work` (sharechain.md §1).

The payee outputs (amounts, order, bytes) come from p2pool.sharechain.outputs.
"""
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.data import bits_to_target, target_to_average_attempts, target_to_bits
from p2pool.bitcoin.hashes import hash256
from p2pool.bitcoin.serialize import VarInt, VarStr
from p2pool.sharechain import ancestry, outputs, pplns, voting
from p2pool.sharechain.share import (
    FIRST_ADDRESS_VERSION, GENTX_BEFORE_REFHASH, Net, Record, Share, ShareDecodeError, ShareTracker,
    address_for_pubkey_hash, is_segwit_layout, padding_for_version, prefix_to_hash_link,
    ref_hash_of, share_from_contents)

#: (tx key, fee or None when unknown) of the transactions a share wants to include
DesiredTxs = Sequence[tuple[int, int | None]]
#: tx key -> transaction dict
KnownTxs = Mapping[int, bitcoin_data.Tx]


class GenerateError(ValueError):
    """Work (or a share being re-derived) that cannot be generated."""


FAR_SHARE_DISTANCE = 99
TX_REFERENCE_DEPTH = 100
DEFAULT_GENTX_SIZE, DEFAULT_GENTX_WEIGHT = 50000, 200000
DONATION_SCRIPT = bitcoin_address.DONATION_SCRIPT
_DONATION_OUTPUT_SCRIPT = VarStr.pack(DONATION_SCRIPT)
_EMPTY_LINK = {'branch': [], 'index': 0}
_GENTX_HEAD = bytes.fromhex('01000000' '01' + '00' * 32 + 'ffffffff')
_SEQUENCE = b'\xff\xff\xff\xff'
_LOCK_TIME = b'\x00\x00\x00\x00'
_U64 = struct.Struct('<Q')
_donation_addresses: dict[int, str] = {}


def clip(value: int, low: int, high: int) -> int:
    return low if value < low else high if value > high else value


def _donation_address(parent: Any) -> str:
    address = _donation_addresses.get(parent.ADDRESS_VERSION)
    if address is None:
        address = _donation_addresses[parent.ADDRESS_VERSION] = bitcoin_address.donation_address(parent)
    return address


# --- §11.1 retarget -----------------------------------------------------------

def pool_target(tracker: ShareTracker, previous_share_hash: int | None, height: int, net: Net) -> int:
    """The pool's minimum-difficulty target (max_target) for a share on top of
    `previous_share_hash` of chain height `height`: pre_target3 of §11.1."""
    if height < net.TARGET_LOOKBEHIND:
        max_target: int = net.MAX_TARGET
        return max_target
    prev = _share_at(tracker, previous_share_hash)
    lookbehind = net.TARGET_LOOKBEHIND - 1
    ancestors = ancestry.recent_ancestors(tracker, previous_share_hash, _ancestry_depth(net))
    if ancestors is not None:
        far_hash = ancestors.hashes[lookbehind]
        attempts = sum(ancestors.min_works[:lookbehind])
    else:
        far_hash = tracker.get_nth_parent_hash(previous_share_hash, lookbehind)
        # far is an ancestor by construction, so the difference of the cumulative sums is the delta.
        attempts = tracker.get_min_work(previous_share_hash) - tracker.get_min_work(far_hash)
    time_span = prev.timestamp - _share_at(tracker, far_hash).timestamp
    if time_span <= 0:
        time_span = 1
    attempts_per_second = attempts // time_span
    if attempts_per_second:
        pre_target = 2**256 // (net.SHARE_PERIOD * attempts_per_second) - 1
    else:
        pre_target = 2**256 - 1
    pre_target2 = clip(pre_target, prev.max_target * 9 // 10, prev.max_target * 11 // 10)
    return clip(pre_target2, net.MIN_TARGET, net.MAX_TARGET)


def _ancestry_depth(net: Net) -> int:
    """How many ancestors the retarget and far_share_hash rules read."""
    depth: int = max(net.TARGET_LOOKBEHIND - 1, FAR_SHARE_DISTANCE)
    return depth


def _far_share_hash(tracker: ShareTracker, previous_share_hash: int | None, net: Net) -> int | None:
    """The FAR_SHARE_DISTANCE-th ancestor (§11.8); TrackerError (a ValueError) when the chain is shorter."""
    ancestors = ancestry.recent_ancestors(tracker, previous_share_hash, _ancestry_depth(net))
    if ancestors is not None:
        return ancestors.hashes[FAR_SHARE_DISTANCE]
    return tracker.get_nth_parent_hash(previous_share_hash, FAR_SHARE_DISTANCE)


def _share_at(tracker: ShareTracker, share_hash: int | None) -> Share:
    """The share of `share_hash`; KeyError when absent (the caller's "not enough history")."""
    if share_hash is None:
        raise KeyError(share_hash)
    return tracker.items[share_hash]


def retarget(tracker: ShareTracker, previous_share_hash: int | None, height: int, desired_target: int,
             net: Net) -> tuple[int, int]:
    """(max_bits, bits) for a share on top of `previous_share_hash` (§11.1): the share's
    target is `desired_target` clipped to [pool target // 30, pool target]."""
    pre_target3 = pool_target(tracker, previous_share_hash, height, net)
    max_bits = target_to_bits(pre_target3)
    bits = target_to_bits(clip(desired_target, pre_target3 // 30, pre_target3))
    return max_bits, bits


# --- §11.2 transaction selection ----------------------------------------------

def _first_seen(tracker: ShareTracker, previous_share_hash: int | None, height: int) -> dict[int, tuple[int, int]]:
    """{tx key: (1 + i, j)} for the first mention among the last 100 shares' new txs."""
    first_seen: dict[int, tuple[int, int]] = {}
    items = tracker.items
    cursor = previous_share_hash
    for generation in range(1, min(height, TX_REFERENCE_DEPTH) + 1):
        assert cursor is not None, 'height counts the shares present'
        share = items[cursor]
        for index, key in enumerate(share.new_transaction_hashes):
            if key not in first_seen:
                first_seen[key] = (generation, index)
        cursor = share.previous_hash
    return first_seen


def stripped_size_budget(net: Net, gentx_size: int = DEFAULT_GENTX_SIZE,
                         gentx_weight: int = DEFAULT_GENTX_WEIGHT) -> int:
    """The most stripped bytes of template transactions a share's block carries beside its
    header and gentx (§11.2): within BLOCK_MAX_SIZE with 500 bytes to spare and within
    BLOCK_MAX_WEIGHT with 2000 to spare, a transaction's weight counted as 4 x its stripped
    size ([jt] quirk: "size" + 3 x stripped with size = stripped)."""
    size: int = net.BLOCK_MAX_SIZE - 80 - gentx_size - 500
    weight: int = net.BLOCK_MAX_WEIGHT - 4 * 80 - gentx_weight - 2000
    return min(size, weight // 4)


def select_transactions(tracker: ShareTracker, previous_share_hash: int | None, height: int,
                        desired_txs: DesiredTxs, known_txs: KnownTxs | None, version: int, net: Net,
                        gentx_size: int = DEFAULT_GENTX_SIZE,
                        gentx_weight: int = DEFAULT_GENTX_WEIGHT) -> tuple[list[int], list[int], list[int]]:
    """(other_tx_keys, new_transaction_hashes, flat transaction_hash_refs) (§11.2)."""
    referencing = version < FIRST_ADDRESS_VERSION
    first_seen = (_first_seen(tracker, previous_share_hash, height)
                  if referencing and desired_txs else {})
    other_tx_keys: list[int] = []
    new_hashes: list[int] = []
    refs: list[int] = []
    budget = stripped_size_budget(net, gentx_size, gentx_weight)
    stripped_total = 0
    for key, _fee in desired_txs:
        if known_txs is not None:
            tx = known_txs.get(key)
            if tx is None:
                raise GenerateError('desired transaction %064x is not known' % key)
            stripped = len(bitcoin_data.tx_id_type.pack(tx))
            if stripped_total + stripped > budget:
                break
            stripped_total += stripped
        if referencing:
            ref = first_seen.get(key)
            if ref is None:
                ref = (0, len(new_hashes))
                new_hashes.append(key)
            refs.extend(ref)
        other_tx_keys.append(key)
    return other_tx_keys, new_hashes, refs


# --- the plan ----------------------------------------------------------------

class SharePlan:
    """Everything of a share except ref_hash/nonce: share_info and the gentx outputs."""

    __slots__ = ('version', 'net', 'share_info', 'other_tx_keys', 'segwit', 'payouts',
                 'donation_amount', 'commitment_script', 'outputs_head', 'outputs_bytes', 'coinbase',
                 'scripts')
    version: int
    net: Net
    share_info: Record
    other_tx_keys: list[int]
    segwit: bool
    payouts: list[outputs.Entry]     # (amount, key, packed script, struct code) in output order
    donation_amount: int
    commitment_script: bytes | None
    outputs_head: bytes
    outputs_bytes: bytes
    coinbase: bytes
    scripts: outputs.ScriptBook

    def stripped_gentx(self, ref_hash: int, last_txout_nonce: int) -> tuple[bytes, int]:
        """(stripped gentx bytes, txid)."""
        coinbase = self.coinbase
        raw = b''.join((
            _GENTX_HEAD, VarStr.pack(coinbase), _SEQUENCE,
            VarInt.pack(len(self.payouts) + 2 + self.segwit), self.outputs_head, self.outputs_bytes,
            _U64.pack(self.donation_amount), _DONATION_OUTPUT_SCRIPT,
            b'\x00' * 8, b'\x2a\x6a\x28', ref_hash.to_bytes(32, 'little'),
            _U64.pack(last_txout_nonce), _LOCK_TIME))
        return raw, hash256(raw)

    def gentx(self, ref_hash: int, last_txout_nonce: int) -> bitcoin_data.Tx:
        """The gentx as a transaction dict (p2pool.bitcoin.data layout)."""
        outs: list[Record] = []
        if self.segwit:
            outs.append({'value': 0, 'script': self.commitment_script})
        raw = self.scripts.raw
        outs.extend([{'value': amount, 'script': raw[key]} for amount, key, _, _ in self.payouts])
        outs.append({'value': self.donation_amount, 'script': DONATION_SCRIPT})
        outs.append({'value': 0, 'script': b'\x6a\x28' + ref_hash.to_bytes(32, 'little')
                     + _U64.pack(last_txout_nonce)})
        tx: bitcoin_data.Tx = {'version': 1,
              'tx_ins': [{'previous_output': None, 'script': self.coinbase, 'sequence': None}],
              'tx_outs': outs, 'lock_time': 0}
        if self.segwit:
            tx.update(marker=0, flag=1, witness=[[bitcoin_data.P2POOL_WITNESS_RESERVED_VALUE]])
        return tx


def _payee(share_data: Record, version: int, net: Net) -> tuple[str, Record]:
    """(payee key, share_data payee field) in the form of `version` (address / pubkey_hash)."""
    parent = net.PARENT
    address: Any = share_data.get('address')    # untrusted: text, bytes or absent
    if isinstance(address, (bytes, bytearray)):
        try:
            address = bytes(address).decode('ascii')
        except UnicodeDecodeError:
            raise GenerateError('payout address is not ASCII') from None
    if version >= FIRST_ADDRESS_VERSION:
        if address is None:
            address = address_for_pubkey_hash(share_data['pubkey_hash'], parent.ADDRESS_VERSION)
        return address, {'address': address.encode('ascii')}
    pubkey_hash: int | None = share_data.get('pubkey_hash')
    if pubkey_hash is None:
        try:
            pubkey_hash = bitcoin_address.address_to_pubkey_hash(address, parent)
        except bitcoin_address.AddressError as e:
            raise GenerateError('v%d shares can only pay P2PKH addresses: %s' % (version, e)) from None
    return address_for_pubkey_hash(pubkey_hash, parent.ADDRESS_VERSION), {'pubkey_hash': pubkey_hash}


@dataclass(frozen=True)
class ShareTerms:
    """What a share asks for, apart from the chain it builds on (the inputs of shares.md §11).

    share_data: the miner's part (previous_share_hash, coinbase, nonce, address or pubkey_hash,
    subsidy, donation, stale_info, desired_version); desired_txs: (tx key, fee or None) in
    template order; known_txs: the transactions themselves (None when re-deriving a received
    share: then only the keys count); base_subsidy: the block reward without fees, needed when
    a fee is unknown; segwit_data: the received share's (re-deriving); version: None chooses by
    the votes (§13.3); gentx_size / gentx_weight: room kept for the generation transaction;
    final_txids: (txid, wtxid) pairs of transactions that end the block after the selected ones
    without being referenced by the share (Litecoin's HogEx); they enter segwit_data's merkle
    link and witness root only.
    """
    share_data: Record
    block_target: int
    desired_timestamp: int
    desired_target: int
    desired_txs: DesiredTxs = ()
    known_txs: KnownTxs | None = None
    base_subsidy: int | None = None
    segwit_data: Record | None = None
    version: int | None = None
    gentx_size: int = DEFAULT_GENTX_SIZE
    gentx_weight: int = DEFAULT_GENTX_WEIGHT
    final_txids: Sequence[tuple[int, int]] = ()

    def __post_init__(self) -> None:
        # the sequences are kept as tuples so that the terms cannot change under a plan
        object.__setattr__(self, 'desired_txs', tuple(self.desired_txs))
        object.__setattr__(self, 'final_txids', tuple(self.final_txids))


def plan_share(tracker: ShareTracker, net: Net, terms: ShareTerms) -> SharePlan:
    """share_info and payouts of a share (shares.md §11.1-§11.8) -> SharePlan."""
    share_data, desired_txs, known_txs, version = terms.share_data, terms.desired_txs, terms.known_txs, terms.version
    segwit_data, final_txids = terms.segwit_data, terms.final_txids
    block_target, desired_timestamp = terms.block_target, terms.desired_timestamp
    previous_share_hash: int | None = share_data['previous_share_hash']
    prev: Share | None
    last: int | None
    if previous_share_hash is None:
        prev, height, last = None, 0, None
    else:
        prev = tracker.items.get(previous_share_hash)
        if prev is None:
            raise GenerateError('parent share %064x is unknown' % previous_share_hash)
        height, last = tracker.get_height_and_last(previous_share_hash)
        if last is not None and height < net.REAL_CHAIN_LENGTH:
            raise GenerateError('not enough history below the parent share')
    if version is None:
        version = voting.choose_share_version(tracker, previous_share_hash, net)
    try:
        max_bits, bits = retarget(tracker, previous_share_hash, height, terms.desired_target, net)
        far_share_hash = (None if last is None and height < FAR_SHARE_DISTANCE
                          else _far_share_hash(tracker, previous_share_hash, net))
    except (KeyError, ValueError) as e:     # the tracker lacks the ancestors these rules read
        raise GenerateError('not enough history below the parent share: %s' % e) from None

    other_tx_keys, new_hashes, refs = select_transactions(
        tracker, previous_share_hash, height, desired_txs, known_txs, version, net, terms.gentx_size,
        terms.gentx_weight)
    included = set(other_tx_keys)
    removed_fees = [fee for key, fee in desired_txs if key not in included]
    subsidy: int
    if None not in removed_fees:
        subsidy = share_data['subsidy'] - sum(fee for fee in removed_fees if fee is not None)
    else:
        if terms.base_subsidy is None:
            raise GenerateError('a transaction fee is unknown and no base subsidy was given')
        subsidy = terms.base_subsidy + sum(fee for key, fee in desired_txs if key in included and fee is not None)

    segwit = is_segwit_layout(version, net) and not (segwit_data is None and known_txs is None)
    if known_txs is not None:
        txs = [known_txs[key] for key in other_tx_keys]
        if segwit:
            segwit_data = {
                'txid_merkle_link': bitcoin_data.calculate_merkle_link(
                    [None] + [bitcoin_data.txid(tx) for tx in txs] + [txid for txid, _ in final_txids], 0),
                'wtxid_merkle_root': bitcoin_data.merkle_hash(
                    [0] + [bitcoin_data.wtxid(tx) for tx in txs] + [wtxid for _, wtxid in final_txids]),
            }
        elif any(bitcoin_data.is_segwit_form(tx) for tx in txs):
            raise GenerateError('segwit transaction included before activation')
    if is_segwit_layout(version, net) and not segwit:
        raise GenerateError('a v%d share on this network needs segwit_data' % version)

    payee_key, payee_field = _payee(share_data, version, net)
    new_share_data: Record = {
        'previous_share_hash': previous_share_hash,
        'coinbase': share_data['coinbase'],
        'nonce': share_data['nonce'],
        'subsidy': subsidy,
        'donation': share_data['donation'],
        'stale_info': share_data['stale_info'],
        'desired_version': share_data['desired_version'],
    }
    new_share_data.update(payee_field)
    if prev is None:
        timestamp = desired_timestamp
    elif version < 32:
        timestamp = clip(desired_timestamp, prev.timestamp + 1, prev.timestamp + 2 * net.SHARE_PERIOD - 1)
    else:
        timestamp = max(desired_timestamp, prev.timestamp + 1)
    share_info: Record = {'share_data': new_share_data}
    if segwit:
        share_info['segwit_data'] = segwit_data
    if version < FIRST_ADDRESS_VERSION:
        share_info['new_transaction_hashes'] = new_hashes
        share_info['transaction_hash_refs'] = refs
    share_info['far_share_hash'] = far_share_hash
    share_info['max_bits'] = max_bits
    share_info['bits'] = bits
    share_info['timestamp'] = timestamp
    share_info['absheight'] = ((prev.absheight if prev is not None else 0) + 1) % 2**32
    share_info['abswork'] = ((prev.abswork if prev is not None else 0)
                             + target_to_average_attempts(bits_to_target(bits))) % 2**128

    # §11.4-§11.6: PPLNS window starting at the grandparent, amounts, output order.
    weights, total, _ = pplns.get_cumulative_weights(
        tracker, prev.previous_hash if prev is not None else None,
        max(0, min(height, net.REAL_CHAIN_LENGTH) - 1), pplns.pplns_desired_weight(block_target, net))
    book = outputs.script_book(net.PARENT, padding_for_version(version))
    try:
        paid = outputs.payee_outputs(weights, total, subsidy, payee_key, _donation_address(net.PARENT), book)
    except outputs.OutputError as e:
        raise GenerateError(str(e)) from None
    plan = SharePlan()
    plan.version, plan.net, plan.share_info, plan.other_tx_keys = version, net, share_info, other_tx_keys
    plan.segwit, plan.payouts, plan.donation_amount = segwit, paid.payouts, paid.donation_amount
    plan.coinbase, plan.scripts, plan.outputs_bytes = share_data['coinbase'], book, paid.serialized
    if segwit:
        assert segwit_data is not None, 'given, or built from known_txs above'
        commitment = bitcoin_data.witness_commitment_hash(segwit_data['wtxid_merkle_root'])
        plan.commitment_script = bitcoin_data.witness_commitment_script(commitment)
        plan.outputs_head = b'\x00' * 8 + VarStr.pack(plan.commitment_script)
    else:
        plan.commitment_script, plan.outputs_head = None, b''
    return plan


def generate_transaction(
        tracker: ShareTracker, share_data: Record, block_target: int, desired_timestamp: int,
        desired_target: int, ref_merkle_link: Record, desired_other_transaction_hashes_and_fees: DesiredTxs,
        net: Net, known_txs: KnownTxs | None = None, last_txout_nonce: int = 0, base_subsidy: int | None = None,
        segwit_data: Record | None = None, version: int | None = None, gentx_size: int = DEFAULT_GENTX_SIZE,
        gentx_weight: int = DEFAULT_GENTX_WEIGHT, final_txids: Sequence[tuple[int, int]] = (),
) -> tuple[Record, bitcoin_data.Tx, list[int], Callable[..., Share]]:
    """(share_info, gentx, other_transaction_hashes, get_share) per shares.md §11.

    get_share(header, last_txout_nonce=..., time_seen=0, peer_addr=None) turns a
    solved header (a dict with merkle_root) into a Share (§11.9).
    """
    plan = plan_share(tracker, net, ShareTerms(
        share_data, block_target, desired_timestamp, desired_target, tuple(desired_other_transaction_hashes_and_fees),
        known_txs=known_txs, base_subsidy=base_subsidy, segwit_data=segwit_data, version=version,
        gentx_size=gentx_size, gentx_weight=gentx_weight, final_txids=final_txids))
    try:
        ref_hash = ref_hash_of(plan.share_info, ref_merkle_link, plan.version, net)
    except ValueError as e:
        raise GenerateError('share_info cannot be encoded: %s' % e) from None
    gentx = plan.gentx(ref_hash, last_txout_nonce)
    share_info, other_tx_keys = plan.share_info, plan.other_tx_keys

    def get_share(header: bitcoin_data.Header, last_txout_nonce: int = last_txout_nonce, time_seen: float = 0,
                  peer_addr: Any = None) -> Share:
        return share_from_solved_header(plan, header, last_txout_nonce, time_seen, peer_addr)

    return share_info, gentx, other_tx_keys, get_share


def share_from_solved_header(plan: SharePlan, header: bitcoin_data.Header, last_txout_nonce: int,
                             time_seen: float = 0, peer_addr: Any = None) -> Share:
    """The share for a header solved on this plan's work (§11.9); its header must match."""
    ref_hash = ref_hash_of(plan.share_info, _EMPTY_LINK, plan.version, plan.net)
    stripped, _ = plan.stripped_gentx(ref_hash, last_txout_nonce)
    previous_block = header['previous_block'] or None
    contents: Record = {
        'min_header': {'version': header['version'], 'previous_block': previous_block,
                       'timestamp': header['timestamp'], 'bits': header['bits'], 'nonce': header['nonce']},
        'share_info': plan.share_info,
        'ref_merkle_link': {'branch': [], 'index': 0},
        'last_txout_nonce': last_txout_nonce,
        'hash_link': prefix_to_hash_link(stripped[:-44], GENTX_BEFORE_REFHASH),
        'merkle_link': bitcoin_data.calculate_merkle_link([None, *plan.other_tx_keys], 0),
    }
    try:
        share = share_from_contents(plan.net, plan.version, contents, time_seen, peer_addr)
    except ShareDecodeError as e:
        raise GenerateError('solved header does not make a valid share: %s' % e) from None
    if share.header != dict(header, previous_block=previous_block):
        raise GenerateError('solved header does not match the share built from it')
    return share


def coinbase_parts(stripped_gentx: bytes) -> tuple[bytes, bytes]:
    """(coinb1, coinb2) around the 8-byte last_txout_nonce (§7)."""
    return stripped_gentx[:-12], stripped_gentx[-4:]


def header_merkle_root(plan: SharePlan, txid: int) -> int:
    """Header merkle root for a gentx txid: the segwit txid link if present, else the tx-key link."""
    if plan.segwit:
        link = plan.share_info['segwit_data']['txid_merkle_link']
    else:
        link = bitcoin_data.calculate_merkle_link([None, *plan.other_tx_keys], 0)
    return bitcoin_data.check_merkle_link(txid, link)
