"""The payee outputs of the gentx: amounts, order and bytes (shares.md §11.5, §11.6).

compute_amounts and order_payouts state the rules in the plainest form; they
are the reference. payee_outputs computes the same result for plan_share in one
go, because check_share runs it for every share of a syncing chain with up to
4000 payees. Where it departs from the reference it says why, and
tests/test_outputs.py checks on random weights and amounts that the two agree.

Payee keys are [jt] address strings; the donation key is the parent network's
donation address. The caches (payee scripts, the previous output order, both in
a ScriptBook) only speed things up; no result depends on them.
"""
import bisect
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from types import ModuleType
from typing import Any

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin.serialize import VarStr
from p2pool.sharechain.share import payout_script_for

_outputs_c: ModuleType | None
try:    # optional (setup.py): where it is not built, payee_outputs computes every amount in Python
    from p2pool.sharechain import _outputs as _outputs_c
except ImportError:
    _outputs_c = None

MAX_OUTPUT_KEYS = 4000          # dests kept after sorting, donation included (§11.6)
FINDER_SHARE = 200              # the finder gets subsidy // 200, the payees 199/200 pro rata
_amount_of, _script_of, _code_of = itemgetter(0), itemgetter(2), itemgetter(3)
_script_books: dict[tuple[Any, ...], 'ScriptBook'] = {}
_LOW_64_BITS = 2**64 - 1


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

#: (amount, key, packed script, struct code of the tx_out): payee_outputs' working rows
Entry = tuple[int, str, bytes, str]


class ScriptBook:
    """Output scripts of payee keys for one parent network and padding rule (cached), and the
    last output order payee_outputs made with them."""

    __slots__ = ('parent', 'padding', 'raw', 'packed', 'codes', 'last_order')

    def __init__(self, parent: Any, padding: bool) -> None:
        self.parent, self.padding = parent, padding
        self.raw: dict[str, bytes] = {}
        self.packed: dict[str, bytes] = {}     # VarStr-packed: the script as it appears in a tx_out
        self.codes: set[str] = set()           # the struct codes of the packed scripts' tx_outs
        self.last_order: tuple[str, list[Entry]] = ('', [])    # (donation key, entries in output order)

    def add(self, keys: Iterable[str]) -> None:
        if len(self.raw) > 200000:
            self.raw.clear()
            self.packed.clear()
            self.codes.clear()
            self.last_order = ('', [])      # its entries may have codes no longer in `codes`
        for key in keys:
            if key not in self.raw:
                try:
                    script = payout_script_for(key, self.parent, self.padding)
                except bitcoin_address.AddressError as e:
                    raise OutputError('cannot pay %r: %s' % (key, e)) from None
                self.raw[key], self.packed[key] = script, VarStr.pack(script)
                self.codes.add(_tx_out_code(self.packed[key]))

    def entries(self, amounts: Iterable[tuple[int, str]]) -> list[Entry]:
        """Entries for (amount, key) pairs; OutputError for a key that cannot be paid."""
        pairs = list(amounts)
        self.add(key for _, key in pairs)
        return [(amount, key, self.packed[key], _tx_out_code(self.packed[key])) for amount, key in pairs]


def _tx_out_code(packed_script: bytes) -> str:
    """The struct format of a tx_out paying `packed_script`: the u64 value, then the script."""
    return 'Q%ds' % len(packed_script)


def script_book(parent: Any, padding: bool) -> ScriptBook:
    cache_key = (parent.ADDRESS_VERSION, getattr(parent, 'ADDRESS_P2SH_VERSION', None),
                 getattr(parent, 'HUMAN_READABLE_PART', None), getattr(parent, 'SYMBOL', None), padding)
    book = _script_books.get(cache_key)
    if book is None:
        book = _script_books[cache_key] = ScriptBook(parent, padding)
    return book


# --- the fast path ------------------------------------------------------------

def reciprocal(numerator: int, denominator: int, largest: int) -> tuple[int, int]:
    """(multiplier, shift) such that value * multiplier >> shift == numerator * value // denominator
    for every 0 <= value <= largest (numerator >= 0, denominator > 0).

    Why: a multiplication and a shift cost CPython about half a long division, and the
    amounts take one per payee per share. Why it is exact: with shift = bits(largest) +
    bits(denominator) and multiplier = ceil(numerator * 2**shift / denominator), value *
    multiplier / 2**shift exceeds numerator * value / denominator by less than value / 2**shift
    < 2**-bits(denominator) < 1 / denominator; a fraction with that denominator is at most
    (denominator - 1) / denominator above its floor, so the floor does not change.
    """
    shift = largest.bit_length() + denominator.bit_length()
    return -(-(numerator << shift) // denominator), shift


def _accelerated_rows(previous: list[Entry], weights: Mapping[str, int], numerator: int,
                      denominator: int) -> list[Entry] | None:
    """[(numerator * weights[key] // denominator, key, script, code)] for the rows of `previous` by the C
    accelerator (p2pool/sharechain/_outputs.c), or None where it is not built, a key of `previous` is not
    in `weights`, or a value does not fit its exact 128-bit arithmetic: then the caller computes them."""
    if (_outputs_c is None or type(weights) is not dict or numerator >> 64 or denominator >> 128
            or not 0 <= numerator or not 0 < denominator):
        return None
    rows: list[Entry] | None = _outputs_c.amount_rows(previous, weights, numerator, denominator >> 64,
                                                      denominator & _LOW_64_BITS)
    return rows


@dataclass(frozen=True)
class PayeeOutputs:
    """payouts: [(amount, key, packed script, struct code)] in output order, whose (amount, key)
    are what order_payouts gives; donation_amount: what compute_amounts gives the donation key;
    serialized: the payouts' tx_outs, packed."""
    payouts: list[Entry]
    donation_amount: int
    serialized: bytes


def payee_outputs(weights: Mapping[str, int], total: int, subsidy: int, finder: str, donation: str,
                  book: ScriptBook) -> PayeeOutputs:
    """compute_amounts, order_payouts and the packing of their tx_outs, in a few passes over the
    payees, for weights that are non-negative and each at most `total` (PPLNS weights are: total
    is their sum plus the donated weight)."""
    if subsidy < 0:     # then compute_amounts' amounts are all <= 0, the finder's or the donation's < 0
        raise OutputError('payout amounts do not add up to the subsidy')
    last_donation, previous = book.last_order
    if last_donation != donation:
        previous = []
    entries: list[Entry] = []
    multiplier = shift = 0
    if total:
        # (`total` bounds every weight: see the docstring)
        multiplier, shift = reciprocal(subsidy * (FINDER_SHARE - 1), FINDER_SHARE * total, total)
        # The amounts are computed in the previous call's output order: consecutive shares pay
        # nearly the same payees nearly in the same order, and sorting a nearly sorted list costs
        # little more than one pass. `previous` never holds the donation key.
        accelerated = _accelerated_rows(previous, weights, subsidy * (FINDER_SHARE - 1), FINDER_SHARE * total)
        if accelerated is not None:
            entries = accelerated
        else:
            try:
                entries = [(weights[key] * multiplier >> shift, key, script, code)
                           for _, key, script, code in previous]
            except KeyError:    # a payee of the last call has left the window
                entries = [(weights[key] * multiplier >> shift, key, script, code)
                           for _, key, script, code in previous if key in weights]
        if len(entries) != len(weights) - (donation in weights):     # payees new since the last call
            known = {key for _, key, _, _ in previous}
            entries += book.entries((weight * multiplier >> shift, key) for key, weight in weights.items()
                                    if key not in known and key != donation)
        entries.sort()
    if finder != donation:     # (the donation key's amount is the rest anyway)
        # The finder's fee is added to its pro-rata amount, which moves it in the order.
        fee = subsidy // FINDER_SHARE
        if total and finder in weights:
            pro_rata = weights[finder] * multiplier >> shift
            _, _, script, code = entries.pop(bisect.bisect_left(entries, (pro_rata, finder)))
            bisect.insort(entries, (pro_rata + fee, finder, script, code))
        else:
            bisect.insort(entries, book.entries([(fee, finder)])[0])
    amounts = list(map(_amount_of, entries))
    # compute_amounts' sum check holds by construction here: the donation key gets the rest.
    donation_amount = subsidy - sum(amounts)
    if donation_amount < 0:
        raise OutputError('payout amounts do not add up to the subsidy')
    book.last_order = (donation, entries)
    # order_payouts' cut to the largest MAX_OUTPUT_KEYS - 1, then without the zero amounts
    start = max(len(entries) - (MAX_OUTPUT_KEYS - 1), bisect.bisect_left(amounts, 1))
    accelerated = _outputs_c.pack_tx_outs(entries, start) if _outputs_c is not None else None
    if start:
        entries, amounts = entries[start:], amounts[start:]
    if accelerated is not None:
        return PayeeOutputs(entries, donation_amount, accelerated)
    # One struct.pack for all the tx_outs (value u64, then the packed script): no Python code
    # runs per payee. struct caches the compiled format, which changes only with the order of
    # the script lengths, and is the same for every order when all scripts have one length
    # (e.g. only P2PKH payees, as on every chain of share versions before 34).
    values_and_scripts: list[int | bytes] = [0] * (2 * len(entries))
    values_and_scripts[0::2] = amounts
    values_and_scripts[1::2] = map(_script_of, entries)
    if len(book.codes) == 1:
        tx_outs_format = '<' + next(iter(book.codes)) * len(entries)
    else:
        tx_outs_format = '<' + ''.join(map(_code_of, entries))
    serialized = struct.pack(tx_outs_format, *values_and_scripts)
    return PayeeOutputs(entries, donation_amount, serialized)
