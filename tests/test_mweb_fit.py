"""A block that ends with Litecoin's HogEx keeps its peg-ins (p2pool/bitcoin/mweb.py).

The HogEx spends every peg-in output of its block, so when the template's transactions do not
all fit beside a share's gentx, the ones left out must not be peg-ins (nor what they spend
from). The HogEx and peg-in are the ones measured on the real litecoind (tests/vectors/).
"""
import dataclasses
import json
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pool.bitcoin import data
from p2pool.bitcoin.mweb import fit_before_final, spent_txids
from p2pool.bitcoin.template import FinalTransaction, TemplateError, parse_template
from p2pool.config import load_network
from p2pool.sharechain.generate import stripped_size_budget
from p2pool.testing.testchain import make_addresses
from worker_helpers import make_bridge, make_template

VECTORS = json.loads((Path(__file__).parent / 'vectors' / 'litecoin_mweb.json').read_text())


def test_the_measured_hogex_spends_the_measured_peg_in():
    answer = VECTORS['template']
    template = parse_template(json.loads(json.dumps(answer)))
    peg_in, hogex = answer['transactions']
    assert template.hogex.spends == {int(peg_in['txid'], 16)}
    assert hogex['depends'] == [1] and template.transaction_depends == [()]


def test_a_hogex_whose_inputs_do_not_decode_is_a_template_error():
    answer = json.loads(json.dumps(VECTORS['template']))
    answer['transactions'][1]['data'] = answer['transactions'][1]['data'][:14]
    with pytest.raises(TemplateError, match='HogEx'):
        parse_template(answer)


def test_bad_depends_lists_are_template_errors():
    answer = json.loads(json.dumps(VECTORS['template']))
    answer['transactions'][0]['depends'] = [1]       # a transaction cannot spend from itself
    with pytest.raises(TemplateError, match='depends'):
        parse_template(answer)


def test_spent_txids_reads_the_inputs_of_a_marker_and_flag_transaction():
    raw = bytes.fromhex(VECTORS['template']['transactions'][1]['data'])
    assert raw[4:6] == b'\x00\x08'
    assert spent_txids(raw) == {int(VECTORS['template']['transactions'][0]['txid'], 16)}


def test_everything_is_kept_when_it_fits():
    assert fit_before_final([10, 20, 30], [1, 2, 3], [(), (), ()], frozenset({2}), 60) == [0, 1, 2]


def test_the_tail_is_left_out_but_not_a_peg_in_nor_what_it_spends_from():
    sizes, txids = [10] * 6, [100, 101, 102, 103, 104, 105]
    depends = [(), (), (), (), (), (1,)]      # the peg-in (txid 105, last) spends from 101
    assert fit_before_final(sizes, txids, depends, frozenset({105}), 30) == [0, 1, 5]
    assert fit_before_final(sizes, txids, depends, frozenset({105}), 40) == [0, 1, 2, 5]


def test_none_when_the_peg_ins_alone_do_not_fit():
    assert fit_before_final([10, 50], [1, 2], [(), ()], frozenset({2}), 40) is None


@st.composite
def templates(draw):
    count = draw(st.integers(0, 12))
    sizes = draw(st.lists(st.integers(1, 50), min_size=count, max_size=count))
    depends = [tuple(sorted(draw(st.sets(st.integers(0, index - 1), max_size=2)))) if index else ()
               for index in range(count)]
    pegins = draw(st.sets(st.integers(0, max(count - 1, 0)), max_size=3)) if count else set()
    return sizes, depends, pegins, draw(st.integers(0, 300))


@settings(max_examples=300, deadline=None)
@given(templates())
def test_what_is_kept_fits_spends_only_from_kept_and_holds_every_peg_in(case):
    sizes, depends, pegins, budget = case
    txids = [1000 + index for index in range(len(sizes))]
    kept = fit_before_final(sizes, txids, depends, frozenset(txids[i] for i in pegins), budget)
    needed = set(pegins)
    for index in range(len(sizes) - 1, -1, -1):
        if index in needed:
            needed.update(depends[index])
    if kept is None:
        assert sum(sizes[i] for i in needed) > budget
        return
    assert kept == sorted(set(kept))
    assert sum(sizes[i] for i in kept) <= budget
    assert needed <= set(kept)
    assert all(set(depends[i]) <= set(kept) for i in kept)
    left_out = set(range(len(sizes))) - set(kept)
    if left_out:       # only what had to go: the first transaction left out is where the cut began
        first = min(left_out)
        assert sum(sizes[i] for i in kept if i < first) + sizes[first] + sum(
            sizes[i] for i in kept if i > first) > budget


# --- through the work bridge ------------------------------------------------------

def _filler(number, size):
    tx_in = {'previous_output': {'hash': number, 'index': 0}, 'script': b'', 'sequence': None}
    return {'version': 1, 'tx_ins': [tx_in],
            'tx_outs': [{'value': 1, 'script': b'\x6a' + bytes(size)}], 'lock_time': 0}


def _mweb_template(net, fillers, filler_size):
    """fillers of filler_size bytes each, then the measured peg-in (spending from filler 1),
    then the measured HogEx."""
    answer = VECTORS['template']
    peg_in = data.tx_type.unpack(bytes.fromhex(answer['transactions'][0]['data']))
    hogex_entry = answer['transactions'][1]
    transactions = [_filler(number + 1, filler_size) for number in range(fillers)] + [peg_in]
    template = make_template(transactions=transactions, rules=['segwit', 'mweb'])
    hogex_raw = bytes.fromhex(hogex_entry['data'])
    return dataclasses.replace(
        template, raw_transactions=[data.tx_type.pack(tx) for tx in transactions],
        transaction_depends=[()] * fillers + [(1,)], mweb=bytes.fromhex(answer['mweb']),
        hogex=FinalTransaction(hogex_raw, int(hogex_entry['txid'], 16), int(hogex_entry['hash'], 16),
                               spent_txids(hogex_raw)))


def test_a_full_mweb_template_gives_up_other_transactions_than_its_peg_in(caplog):
    net = load_network('litecoin_regtest')
    template = _mweb_template(net, fillers=12, filler_size=100_000)
    env = make_bridge(net=net, template=template)
    budget = stripped_size_budget(net)
    assert sum(len(data.tx_id_type.pack(tx)) for tx in template.transactions) > budget
    with caplog.at_level(logging.INFO):
        _, base = env.bridge.get_stratum_work(make_addresses(net, 1, seed=b'miner')[0])
    keys = template.transaction_keys
    assert keys[-1] in base.other_tx_keys, 'the peg-in was left out: the HogEx would spend nothing'
    assert keys[1] in base.other_tx_keys, 'what the peg-in spends from was left out'
    kept = [tx for key, tx in zip(keys, template.transactions) if key in base.other_tx_keys]
    assert sum(len(data.tx_id_type.pack(tx)) for tx in kept) <= budget
    assert base.other_tx_keys == [key for key in keys if key in base.other_tx_keys]   # template order
    assert 'MWEB peg-ins kept' in caplog.text


def test_without_a_hogex_the_share_takes_the_prefix_that_fits():
    net = load_network('litecoin_regtest')
    template = dataclasses.replace(_mweb_template(net, fillers=12, filler_size=100_000), hogex=None, mweb=None)
    env = make_bridge(net=net, template=template)
    _, base = env.bridge.get_stratum_work(make_addresses(net, 1, seed=b'miner')[0])
    assert base.other_tx_keys == template.transaction_keys[:len(base.other_tx_keys)]
    assert template.transaction_keys[-1] not in base.other_tx_keys
