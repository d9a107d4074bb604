"""`/patron_sendmany/<TOTAL>[/<TRUNC>]`: split a sum among the expected payees (web.md §2.2).

A patron who wants to pay the pool's miners directly asks the node how to split
TOTAL coins; the answer is a JSON object that `bitcoin-cli sendmany "" '<json>'`
accepts unchanged. The split follows the current expected payouts (shares.md §15,
computed by p2pool.sharechain.pplns.current_payouts); payees that would get less
than TRUNC are pooled into one lottery prize so that no dust outputs are made.

Amounts are integers (satoshis) throughout; the response prints them as fixed
eight-decimal numbers so that the printed amounts add up to TOTAL exactly.
"""
import decimal
import json
import random
from typing import Any

__all__ = ['PatronError', 'DEFAULT_TRUNC', 'parse_coins', 'split_total', 'weighted_choice',
           'format_coins', 'sendmany_json']

SATOSHIS_PER_COIN = 10**8
DEFAULT_TRUNC = '0.01'
#: more satoshis than will ever exist (21e6 coins): refuses absurd TOTALs before any arithmetic
MAX_SATOSHIS = 21 * 10**6 * SATOSHIS_PER_COIN


class PatronError(ValueError):
    """A bad TOTAL/TRUNC argument; the message is a one-line reason for the HTTP 400 answer."""


def parse_coins(text, name) -> int:
    """Coins as text -> satoshis (int), truncating below one satoshi like the original's int().

    Decimal arithmetic rather than float: float('0.29') * 1e8 is 28999999.999…, and
    the split must add up to exactly what the patron typed.
    """
    try:
        amount = decimal.Decimal(text.strip())
    except (decimal.InvalidOperation, AttributeError):
        raise PatronError('%s must be a number of coins, got %r' % (name, text)) from None
    if not amount.is_finite():
        raise PatronError('%s must be a finite number, got %r' % (name, text))
    if amount < 0:
        raise PatronError('%s must not be negative, got %r' % (name, text))
    if amount > MAX_SATOSHIS // SATOSHIS_PER_COIN:
        raise PatronError('%s is more coins than exist: %r' % (name, text))
    return int(amount * SATOSHIS_PER_COIN)


def weighted_choice(keys_and_weights, rng) -> Any:
    """The integer lottery of web.md §2.2: uniform n in [0, Σ weights); the first key whose
    cumulative weight exceeds n. `keys_and_weights` is an ordered list of (key, weight >= 0)
    with a positive sum."""
    total = sum(weight for _key, weight in keys_and_weights)
    draw = rng.randrange(total)
    cumulative = 0
    for key, weight in keys_and_weights:
        cumulative += weight
        if cumulative > draw:
            return key
    raise AssertionError('the lottery draw %d is not below the total %d' % (draw, total))


def split_total(payouts, total, trunc, rng=None) -> dict[Any, int]:
    """Split `total` satoshis in proportion to `payouts` ({address: satoshis}).

    Returns {address: satoshis} summing to exactly `total` (web.md §2.2 steps 2-4),
    without zero amounts (sendmany refuses them). Raises PatronError when nothing
    is expected to be paid (no payees, or all expected payouts are zero).
    """
    rng = rng if rng is not None else random.SystemRandom()
    expected_sum = sum(payouts.values())
    if expected_sum <= 0:
        raise PatronError('no expected payouts to split TOTAL by')
    if total == 0:
        return {}
    shares = {key: amount * total // expected_sum for key, amount in payouts.items()}

    def ascending(keys):
        # ties are broken by the address so the walk does not depend on dict order
        return sorted(keys, key=lambda key: (shares[key], key))

    if trunc > 0:
        collected = []
        for key in ascending(shares):
            if shares[key] >= trunc:
                break
            collected.append(key)
        pooled = sum(shares[key] for key in collected)
        if pooled > 0:
            winner = weighted_choice([(key, shares[key]) for key in collected], rng)
            for key in collected:
                del shares[key]
            shares[winner] = pooled
    missing = total - sum(shares.values())
    if missing > 0:
        remaining = ascending(shares)
        weights = [(key, shares[key]) for key in remaining]
        if not any(weight for _key, weight in weights):
            # every share rounded down to zero: fall back to the expected payouts as weights
            weights = [(key, payouts[key]) for key in remaining]
        winner = weighted_choice(weights, rng)
        shares[winner] += missing
    return {key: amount for key, amount in shares.items() if amount > 0}


def format_coins(satoshis) -> str:
    """Satoshis as an exact JSON number of coins with eight decimals, e.g. 1.23456789."""
    whole, fraction = divmod(satoshis, SATOSHIS_PER_COIN)
    return '%d.%08d' % (whole, fraction)


def sendmany_json(amounts) -> str:
    """{address: satoshis} -> the JSON object text sendmany takes (keys sorted)."""
    items = ('%s: %s' % (json.dumps(address), format_coins(amount)) for address, amount in sorted(amounts.items()))
    return '{' + ', '.join(items) + '}'
