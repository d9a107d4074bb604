"""The fast payee outputs (sharechain/outputs.py::payee_outputs) against the reference
compute_amounts + order_payouts + plain packing, on random weights, subsidies and sequences of
calls (the previous call's order is the sorting head start), and the exact reciprocal."""
import struct

import pytest
from hypothesis import given, settings, strategies as st

from p2pool.bitcoin.address import address_to_script, donation_address
from p2pool.bitcoin.serialize import VarStr
from p2pool.config import load_network
from p2pool.sharechain import outputs
from p2pool.testing import testchain

NET = load_network('bitcoin')
PARENT = NET.PARENT
DONATION = donation_address(PARENT)
P2PKH = testchain.make_addresses(NET, 12)
MIXED = P2PKH[:4] + testchain.make_addresses(NET, 4, kind='p2sh') + testchain.make_addresses(NET, 4, kind='bech32')


def reference(weights, total, subsidy, finder, padding):
    """(payouts, donation amount, serialized tx_outs) the straightforward way."""
    amounts = outputs.compute_amounts(weights, total, subsidy, finder, DONATION)
    payouts = outputs.order_payouts(amounts, DONATION)
    serialized = b''.join(struct.pack('<Q', amount) + VarStr.pack(address_to_script(key, PARENT, padding=padding))
                          for amount, key in payouts)
    return payouts, amounts[DONATION], serialized


def fast(book, weights, total, subsidy, finder):
    paid = outputs.payee_outputs(weights, total, subsidy, finder, DONATION, book)
    return [(amount, key) for amount, key, _, _ in paid.payouts], paid.donation_amount, paid.serialized


def same_outcome(book, weights, total, subsidy, finder):
    try:
        expected = reference(weights, total, subsidy, finder, book.padding)
    except outputs.OutputError:
        with pytest.raises(outputs.OutputError):
            fast(book, weights, total, subsidy, finder)
        return
    assert fast(book, weights, total, subsidy, finder) == expected


#: one call: weights (a small pool of keys, repeated weights for ties, the donation key too),
#: the donated weight (total = sum + it), the subsidy and the finder
def calls(keys):
    weight = st.one_of(st.sampled_from([0, 1, 65535, 3 * 65535, 2**80]), st.integers(0, 2**90))
    return st.tuples(st.dictionaries(st.sampled_from(keys + [DONATION]), weight, max_size=len(keys) + 1),
                     st.integers(0, 2**80), st.one_of(st.integers(0, 2**64 - 1), st.integers(-10, 10)),
                     st.sampled_from(keys + [DONATION]))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([P2PKH, MIXED]), st.booleans(), st.data())
def test_payee_outputs_equal_the_reference(keys, padding, data):
    book = outputs.ScriptBook(PARENT, padding)
    weights, donated, subsidy, finder = data.draw(calls(keys))
    for _ in range(data.draw(st.integers(1, 6))):
        same_outcome(book, weights, sum(weights.values()) + donated, subsidy, finder)
        # the next share: a few weights move, payees come and go, another finder, another subsidy
        weights = dict(weights)
        for key, change in data.draw(st.lists(st.tuples(st.sampled_from(keys), st.integers(-2**80, 2**80)),
                                              max_size=3)):
            weights[key] = max(0, weights.get(key, 0) + change)
            if data.draw(st.booleans()) and len(weights) > 1:
                del weights[key]
        subsidy = data.draw(st.one_of(st.just(subsidy), st.integers(0, 2**64 - 1)))
        donated = data.draw(st.one_of(st.just(donated), st.integers(0, 2**80)))
        finder = data.draw(st.sampled_from(keys + [DONATION]))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**100), st.integers(1, 2**120), st.integers(0, 2**100), st.data())
def test_reciprocal_is_exact(numerator, denominator, largest, data):
    multiplier, shift = outputs.reciprocal(numerator, denominator, largest)
    for value in (0, 1, largest, largest // 2, data.draw(st.integers(0, largest))):
        assert value * multiplier >> shift == numerator * value // denominator


def test_payee_outputs_without_window_and_empty_weights():
    book = outputs.ScriptBook(PARENT, False)
    for finder in (P2PKH[0], DONATION):
        same_outcome(book, {}, 0, 1001, finder)
        same_outcome(book, {P2PKH[1]: 5}, 0, 1001, finder)     # no total: the weights do not count


def test_payee_outputs_cut_to_the_largest_3999():
    keys = testchain.make_addresses(NET, 4100)
    weights = {key: 1 + index // 7 for index, key in enumerate(keys)}
    book = outputs.ScriptBook(PARENT, True)
    for step in range(3):
        weights[keys[step]] += 10**6       # reorders the top of the list between calls
        same_outcome(book, weights, sum(weights.values()) + 12345, 625000000 + step, keys[-1 - step])
    assert len(outputs.payee_outputs(weights, sum(weights.values()), 625000000, keys[0], DONATION, book).payouts) \
        == outputs.MAX_OUTPUT_KEYS - 1


def test_unpayable_key_is_an_output_error():
    book = outputs.ScriptBook(PARENT, True)
    with pytest.raises(outputs.OutputError, match='cannot pay'):
        outputs.payee_outputs({'not an address': 10}, 10, 1000, P2PKH[0], DONATION, book)
