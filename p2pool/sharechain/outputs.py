"""The payee outputs of the gentx: amounts, order and bytes (shares.md §11.5, §11.6).

compute_amounts and order_payouts state the rules in the plainest form; they
are the reference. payee_outputs computes the same result for plan_share in one
go, because check_share runs it for every share of a syncing chain with up to
4000 payees. Where it departs from the reference it says why, and
tests/test_outputs.py checks on random weights and amounts that the two agree.

Payee keys are [jt] address strings; the donation key is the parent network's
donation address. Module caches (payee scripts, the previous output order) only
speed things up; no result depends on them.
"""
import bisect
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin.serialize import VarStr
from p2pool.sharechain.share import payout_script_for

MAX_OUTPUT_KEYS = 4000          # dests kept after sorting, donation included (§11.6)
FINDER_SHARE = 200              # the finder gets subsidy // 200, the payees 199/200 pro rata
_U64 = struct.Struct('<Q')
_amount_of, _key_of = itemgetter(0), itemgetter(1)
_script_books: dict[tuple[Any, ...], 'ScriptBook'] = {}
_previous_orders: dict[str, list[str]] = {}    # donation key -> keys in the last output order (a sorting head start)


class OutputError(ValueError):
    """Payouts that cannot be made (plan_share reports it as a GenerateError)."""


# --- reference ----------------------------------------------------------------

def compute_amounts(weights: Mapping[str, int], total: int, subsidy: int, finder: str,
                    donation: str) -> dict[str, int]:
    """{payee: amount}: 199/200 pro rata, 1/200 to the finder, the rest to the donation key."""
    if total:
        denominator = FINDER_SHARE * total
        numerator = subsidy * (FINDER_SHARE - 1)
        amounts = {key: numerator * weight // denominator for key, weight in weights.items()}
    else:
        amounts = {}
    amounts[finder] = amounts.get(finder, 0) + subsidy // FINDER_SHARE
    amounts[donation] = amounts.get(donation, 0) + subsidy - sum(amounts.values())
    if sum(amounts.values()) != subsidy or min(amounts.values()) < 0:
        raise OutputError('payout amounts do not add up to the subsidy')
    return amounts


def order_payouts(amounts: Mapping[str, int], donation: str) -> list[tuple[int, str]]:
    """[(amount, key)] of the paid payees in output order (donation excluded, zero amounts dropped):
    sorted by (amount, key) ascending and cut to the largest MAX_OUTPUT_KEYS - 1 (§11.6)."""
    pairs = sorted((amount, key) for key, amount in amounts.items() if key != donation)
    if len(pairs) >= MAX_OUTPUT_KEYS:
        pairs = pairs[len(pairs) - (MAX_OUTPUT_KEYS - 1):]
    return pairs[bisect.bisect_left(pairs, (1,)):]


# --- output scripts -----------------------------------------------------------

class ScriptBook:
    """Output scripts of payee keys for one parent network and padding rule (cached)."""

    __slots__ = ('parent', 'padding', 'raw', 'packed')

    def __init__(self, parent: Any, padding: bool) -> None:
        self.parent, self.padding = parent, padding
        self.raw: dict[str, bytes] = {}
        self.packed: dict[str, bytes] = {}     # VarStr-packed: the script as it appears in a tx_out

    def add(self, keys: Iterable[str]) -> None:
        if len(self.raw) > 200000:
            self.raw.clear()
            self.packed.clear()
        for key in keys:
            if key not in self.raw:
                try:
                    script = payout_script_for(key, self.parent, self.padding)
                except bitcoin_address.AddressError as e:
                    raise OutputError('cannot pay %r: %s' % (key, e)) from None
                self.raw[key], self.packed[key] = script, VarStr.pack(script)

    def packed_scripts(self, keys: Sequence[str]) -> list[bytes]:
        """The packed scripts of `keys`, in that order; OutputError for a key that cannot be paid."""
        try:
            return list(map(self.packed.__getitem__, keys))
        except KeyError:
            self.add(keys)
            return list(map(self.packed.__getitem__, keys))


def script_book(parent: Any, padding: bool) -> ScriptBook:
    cache_key = (parent.ADDRESS_VERSION, getattr(parent, 'ADDRESS_P2SH_VERSION', None),
                 getattr(parent, 'HUMAN_READABLE_PART', None), getattr(parent, 'SYMBOL', None), padding)
    book = _script_books.get(cache_key)
    if book is None:
        book = _script_books[cache_key] = ScriptBook(parent, padding)
    return book


# --- the fast path ------------------------------------------------------------

@dataclass(frozen=True)
class PayeeOutputs:
    """payouts: [(amount, key)] as order_payouts gives them; donation_amount: what
    compute_amounts gives the donation key; serialized: the payouts' tx_outs, packed."""
    payouts: list[tuple[int, str]]
    donation_amount: int
    serialized: bytes


def payee_outputs(weights: Mapping[str, int], total: int, subsidy: int, finder: str, donation: str,
                  book: ScriptBook) -> PayeeOutputs:
    """compute_amounts, order_payouts and the packing of their tx_outs, in a few passes over the payees."""
    previous = _previous_orders.get(donation, [])
    pairs: list[tuple[int, str]] = []
    numerator, denominator = subsidy * (FINDER_SHARE - 1), FINDER_SHARE * total
    if total:
        # The amounts are computed in the previous call's output order: consecutive shares pay
        # nearly the same payees nearly in the same order, and sorting a nearly sorted list costs
        # little more than one pass. `previous` never holds the donation key.
        pairs = [(numerator * weights[key] // denominator, key) for key in previous if key in weights]
        if len(pairs) != len(weights) - (donation in weights):     # payees new since the last call
            known = set(previous)
            pairs += [(numerator * weight // denominator, key) for key, weight in weights.items()
                      if key not in known and key != donation]
        pairs.sort()
    if finder != donation:     # (the donation key's amount is the rest anyway)
        # The finder's fee is added to its pro-rata amount, which moves it in the order.
        fee = subsidy // FINDER_SHARE
        if total and finder in weights:
            pro_rata = numerator * weights[finder] // denominator
            del pairs[bisect.bisect_left(pairs, (pro_rata, finder))]
            fee += pro_rata
        bisect.insort(pairs, (fee, finder))
    amounts = list(map(_amount_of, pairs))
    # compute_amounts' sum check holds by construction here: the donation key gets the rest.
    donation_amount = subsidy - sum(amounts)
    if donation_amount < 0 or (amounts and amounts[0] < 0):
        raise OutputError('payout amounts do not add up to the subsidy')
    keys = _previous_orders[donation] = list(map(_key_of, pairs))
    # order_payouts' cut to the largest MAX_OUTPUT_KEYS - 1, then without the zero amounts
    start = max(len(pairs) - (MAX_OUTPUT_KEYS - 1), bisect.bisect_left(amounts, 1))
    if start:
        pairs, amounts, keys = pairs[start:], amounts[start:], keys[start:]
    # tx_out = value (u64) + packed script, for every payee: the values and the scripts are
    # interleaved by slice assignment so that no Python code runs per payee.
    parts: list[bytes] = [b''] * (2 * len(pairs))
    parts[0::2] = map(_U64.pack, amounts)
    parts[1::2] = book.packed_scripts(keys)
    return PayeeOutputs(pairs, donation_amount, b''.join(parts))
