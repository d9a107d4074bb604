"""/patron_sendmany (web.md §2.2): exact splits, TRUNC pooling, and bitcoind's sendmany taking it as is."""
import json
import random
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pool.bitcoin.address import donation_address
from p2pool.config import load_network
from p2pool.sharechain import pplns
from p2pool.bitcoin.data import bits_to_target
from p2pool.web import WebService
from p2pool.web.patron import PatronError, format_coins, parse_coins, sendmany_json, split_total, weighted_choice
from p2pool.testing.web_testnode import demo_node, fetch, listen
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)

payouts_strategy = st.dictionaries(st.text('abcdefgh', min_size=1, max_size=4), st.integers(0, 10**10),
                                   min_size=1, max_size=30).filter(lambda p: sum(p.values()) > 0)


@settings(max_examples=300, deadline=None)
@given(payouts_strategy, st.integers(0, 10**12), st.integers(0, 10**9), st.randoms(use_true_random=False))
def test_split_sums_exactly_to_total(payouts, total, trunc, rng):
    split = split_total(payouts, total, trunc, rng)
    assert sum(split.values()) == total
    assert all(amount > 0 for amount in split.values())
    assert set(split) <= set(payouts)


@settings(max_examples=200, deadline=None)
@given(payouts_strategy, st.integers(1, 10**12), st.randoms(use_true_random=False))
def test_without_trunc_everyone_keeps_the_proportional_share(payouts, total, rng):
    split = split_total(payouts, total, 0, rng)
    expected_sum = sum(payouts.values())
    proportional = {key: amount * total // expected_sum for key, amount in payouts.items()}
    extra = [key for key in split if split[key] != proportional[key]]
    assert len(extra) <= 1           # the rounding remainder goes to one payee
    for key, amount in proportional.items():
        if amount and key not in extra:
            assert split[key] == amount


def test_small_payees_are_pooled_into_one_winner():
    payouts = {'big': 900, 'mid': 60, 'tiny1': 25, 'tiny2': 10, 'tiny3': 5}
    total = 1000
    for seed in range(20):
        split = split_total(payouts, total, trunc=50, rng=random.Random(seed))
        # r = big 900, mid 60, tiny1 25, tiny2 10, tiny3 5: the three below 50 become one prize of 40
        winners = set(split) - {'big', 'mid'}
        assert len(winners) == 1 and split[winners.pop()] == 40
        assert split['big'] == 900 and split['mid'] == 60


def test_lottery_follows_the_weights():
    counts = {'a': 0, 'b': 0}
    rng = random.Random(1)
    for _ in range(4000):
        counts[weighted_choice([('a', 1), ('b', 3)], rng)] += 1
    assert 0.7 < counts['b'] / 4000 < 0.8


def test_the_remainder_goes_to_a_weighted_winner():
    split = split_total({'a': 1, 'b': 1, 'c': 1}, 10, 0, random.Random(3))
    assert sorted(split.values()) == [3, 3, 4]


def test_coins_are_parsed_exactly():
    assert parse_coins('0.29', 'TOTAL') == 29_000_000          # float arithmetic would give 28999999
    assert parse_coins('1.123456789', 'TOTAL') == 112_345_678   # below a satoshi: truncated
    assert parse_coins(' 21 ', 'TOTAL') == 2_100_000_000
    for bad in ('', 'abc', '-1', 'inf', 'nan', '1e30', '0x10'):
        with pytest.raises(PatronError):
            parse_coins(bad, 'TOTAL')


def test_nothing_to_split_by():
    with pytest.raises(PatronError):
        split_total({'a': 0}, 100, 0)
    assert split_total({'a': 5}, 0, 0) == {}


def test_output_text_is_exact_json():
    assert format_coins(123456789) == '1.23456789' and format_coins(5) == '0.00000005'
    text = sendmany_json({'b': 5, 'a': 100000000})
    assert text == '{"a": 1.00000000, "b": 0.00000005}'
    assert json.loads(text, parse_float=Decimal) == {'a': Decimal('1.00000000'), 'b': Decimal('5E-8')}


def test_endpoint_over_http(reactor):  # noqa: F811
    node = demo_node(now=1_800_000_000.0)
    port = run_in_reactor(lambda: listen(node, WebService(node, clock=lambda: 1_800_000_000.0), reactor))
    base = 'http://127.0.0.1:%d' % port.getHost().port
    try:
        status, headers, body = fetch(base + '/patron_sendmany')
        assert status == 200 and body == b'need total argument. go to patron_sendmany/<TOTAL>'
        status, headers, body = fetch(base + '/patron_sendmany/3.21')
        assert status == 200 and headers['content-type'] == 'text/plain'
        amounts = json.loads(body, parse_float=Decimal)
        assert sum(amounts.values()) == Decimal('3.21')
        payouts = get_payouts(node)
        assert set(amounts) <= set(payouts)
        status, _headers, body = fetch(base + '/patron_sendmany/3.21/2')   # TRUNC above every share: one winner
        assert list(json.loads(body, parse_float=Decimal).values()) == [Decimal('3.21')]
    finally:
        run_in_reactor(port.stopListening)


def get_payouts(node):
    return pplns.current_payouts(node.tracker, node.best, bits_to_target(node.work['bits']),
                                 node.work['coinbasevalue'], node.net)


def _cli(regtest_node, *args):
    """bitcoin-cli (shipped next to the regtest bitcoind) with the node's credentials."""
    cli = Path(regtest_node.bitcoind).with_name('bitcoin-cli')
    command = [str(cli), '-regtest', '-rpcconnect=127.0.0.1', '-rpcport=%d' % regtest_node.rpc_port,
               '-rpcuser=%s' % regtest_node.user, '-rpcpassword=%s' % regtest_node.password, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, 'bitcoin-cli %s failed: %s' % (args[0], result.stderr.strip())
    return result.stdout.strip()


@pytest.mark.bitcoind
def test_bitcoind_sendmany_pays_the_split(reactor, regtest_node):  # noqa: F811
    net = load_network('bsv_regtest')
    node = demo_node(net, count=40, now=1_800_000_000.0)
    port = run_in_reactor(lambda: listen(node, WebService(node, clock=lambda: 1_800_000_000.0), reactor))
    try:
        status, _headers, body = fetch('http://127.0.0.1:%d/patron_sendmany/1.23456789/0.2' % port.getHost().port)
    finally:
        run_in_reactor(port.stopListening)
    assert status == 200
    text = body.decode()
    expected = json.loads(text, parse_float=Decimal)
    assert sum(expected.values()) == Decimal('1.23456789')
    payees = get_payouts(node)
    assert donation_address(node.net.PARENT) in payees and set(expected) < set(payees)   # small payees pooled
    assert sum(1 for amount in expected.values() if amount < Decimal('0.2')) <= 1
    assert all(address[0] in 'mn' for address in expected)        # legacy regtest addresses (version 111)

    txid = _cli(regtest_node, 'sendmany', '', text)               # the endpoint's text, exactly as served
    decoded = json.loads(_cli(regtest_node, 'decoderawtransaction',
                              json.loads(_cli(regtest_node, 'gettransaction', txid))['hex']), parse_float=Decimal)
    paid = {}
    for output in decoded['vout']:
        addresses = output['scriptPubKey'].get('addresses', [])
        if len(addresses) == 1 and addresses[0] in expected:
            paid[addresses[0]] = paid.get(addresses[0], Decimal(0)) + output['value']
    assert paid == expected
    assert len(decoded['vout']) == len(expected) + 1              # plus the wallet's change
