"""The C accelerator of the payee amounts (p2pool/sharechain/_outputs.c) against the Python code it
replaces: the exact floor numerator * weight // denominator for every row, or None (the caller then
computes them in Python) whenever a key is missing or a value does not fit its 128-bit arithmetic;
and payee_outputs gives the same bytes and amounts with and without it."""
import pytest
from hypothesis import given, settings, strategies as st

from p2pool.sharechain import outputs

accelerator = pytest.importorskip(
    'p2pool.sharechain._outputs', reason='the C accelerator p2pool/sharechain/_outputs.c is not built')

KEYS = ['payee%d' % index for index in range(12)]
EDGES = [0, 1, 2**32 - 1, 2**63, 2**64 - 1, 2**64, 2**100]


def rows_in_python(previous, weights, numerator, denominator):
    if any(key not in weights for _, key, _, _ in previous):
        return None
    return [(numerator * weights[key] // denominator, key, script, code) for _, key, script, code in previous]


def fits(previous, weights, numerator, denominator):
    """Whether every row is within the accelerator's exact 128-bit arithmetic."""
    return all(weights[key] < 2**64 and numerator * weights[key] < 2**128
               and numerator * weights[key] // denominator < 2**64 for _, key, _, _ in previous)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), st.one_of(st.sampled_from(EDGES), st.integers(0, 2**70))),
       st.lists(st.sampled_from(KEYS), unique=True),
       st.one_of(st.sampled_from(EDGES[:5]), st.integers(0, 2**64 - 1)),
       st.one_of(st.sampled_from([1, 2**64 - 1, 2**64, 2**128 - 1]), st.integers(1, 2**128 - 1)))
def test_amount_rows_equal_python_or_decline(weights, keys, numerator, denominator):
    previous = [(0, key, key.encode(), 'Q%ds' % len(key)) for key in keys]
    rows = accelerator.amount_rows(previous, weights, numerator, denominator >> 64, denominator & (2**64 - 1))
    expected = rows_in_python(previous, weights, numerator, denominator)
    if expected is None or not fits(previous, weights, numerator, denominator):
        assert rows is None
    else:
        assert rows == expected


def test_amount_rows_declines_what_is_not_an_exact_int():
    previous = [(0, 'a', b'a', 'Q1s')]
    assert accelerator.amount_rows(previous, {'a': -1}, 3, 0, 7) is None
    assert accelerator.amount_rows(previous, {'a': True}, 3, 0, 7) is None
    assert accelerator.amount_rows(previous, {'a': 5.0}, 3, 0, 7) is None
    with pytest.raises(ZeroDivisionError):
        accelerator.amount_rows(previous, {'a': 1}, 3, 0, 0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.dictionaries(st.sampled_from(KEYS), st.integers(0, 2**66), min_size=1),
                          st.integers(0, 2**66), st.integers(0, 2**64 - 1), st.sampled_from(KEYS)),
                min_size=1, max_size=5))
def test_payee_outputs_same_with_and_without_the_accelerator(sequence):
    from p2pool.bitcoin.address import donation_address
    from p2pool.config import load_network
    from p2pool.testing import testchain
    net = load_network('bitcoin')
    addresses = testchain.make_addresses(net, len(KEYS))
    rename = dict(zip(KEYS, addresses))
    donation = donation_address(net.PARENT)
    results = []
    for module in (accelerator, None):
        saved, outputs._outputs_c = outputs._outputs_c, module
        try:
            book, outcome = outputs.ScriptBook(net.PARENT, False), []
            for weights, donated, subsidy, finder in sequence:
                weights = {rename[key]: weight for key, weight in weights.items()}
                try:
                    paid = outputs.payee_outputs(weights, sum(weights.values()) + donated, subsidy, rename[finder],
                                                 donation, book)
                    outcome.append((paid.payouts, paid.donation_amount, paid.serialized))
                except outputs.OutputError as e:
                    outcome.append(str(e))
            results.append(outcome)
        finally:
            outputs._outputs_c = saved
    assert results[0] == results[1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([-1, 2**64])),
                          st.binary(max_size=40)), max_size=8), st.integers(0, 9))
def test_pack_tx_outs_equals_struct_packing_or_declines(amounts_and_scripts, start):
    rows = [(amount, 'key', script, 'Q%ds' % len(script)) for amount, script in amounts_and_scripts]
    packed = accelerator.pack_tx_outs(rows, start)
    tail = rows[start:]
    if start > len(rows) or any(not 0 <= amount < 2**64 for amount, _, _, _ in tail):
        assert packed is None
    else:
        assert packed == b''.join(amount.to_bytes(8, 'little') + script for amount, _, script, _ in tail)
