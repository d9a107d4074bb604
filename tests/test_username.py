"""Usernames (worker.md §5): address, worker name, +/ difficulty suffixes, payee choice."""
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pool.bitcoin.address import cashaddr_encode
from p2pool.bitcoin.data import difficulty_to_target
from p2pool.config import load_network
from p2pool.testing.testchain import make_addresses
from p2pool.work.username import PayeeResolver, parse_username, payable

NET = load_network('bsv_regtest')
ADDRESS = make_addresses(NET, 1)[0]


@pytest.mark.parametrize('text, address, worker, pseudo, share', [
    ('addr', 'addr', '', None, None),
    ('addr+100', 'addr', '', 100, None),
    ('addr/200', 'addr', '', None, 200),
    ('addr/200+100', 'addr', '', 100, 200),
    ('addr+1+2/3/4', 'addr', '', 2, 4),                 # last of each kind wins
    ('addr+abc/5', 'addr', '', None, 5),                 # unparsable values are ignored
    ('addr+-3+nan/-1', 'addr', '', None, None),          # so are negative and NaN ones
    ('addr+0/0', 'addr', '', 0, 0),                      # 0: the easiest target (2**256 - 1)
    ('addr+inf/5/inf', 'addr', '', float('inf'), float('inf')),   # infinity: target 0
    ('addr_rig1_x+8', 'addr', 'rig1', 8, None),
    ('addr.rig2.y', 'addr', 'rig2', None, None),
    ('addr_rig.3', 'addr', 'rig.3', None, None),         # "_" wins over "."
    ('  addr.w  ', 'addr', 'w', None, None),             # [jt] trimmed
    ('', '', '', None, None),
])
def test_parse(text, address, worker, pseudo, share):
    name = parse_username(text)
    assert (name.address, name.worker) == (address, worker)
    assert name.desired_pseudoshare_target == (None if pseudo is None else difficulty_to_target(pseudo))
    assert name.desired_share_target == (None if share is None else difficulty_to_target(share))
    assert name.user == (address + '.' + worker if worker else address)


def test_non_text_usernames_are_empty():
    assert parse_username(None).address == '' and parse_username(42).address == ''


@given(st.text(max_size=80))
def test_parse_never_fails(text):
    name = parse_username(text)
    assert isinstance(name.address, str) and isinstance(name.worker, str)


def test_payable_follows_the_share_version():
    cash = cashaddr_encode(NET.PARENT.HUMAN_READABLE_PART, 0, bytes(20))
    p2sh = make_addresses(NET, 1, kind='p2sh')[0]
    assert payable(ADDRESS, NET.PARENT, 17) and payable(ADDRESS, NET.PARENT, 35)
    assert not payable(cash, NET.PARENT, 17) and payable(cash, NET.PARENT, 35)   # v<34: Base58 P2PKH only
    assert not payable(p2sh, NET.PARENT, 33) and payable(p2sh, NET.PARENT, 34)
    assert not payable('1BoatSLRHtKNngkdXEeobR76b53LETtpyT', NET.PARENT, 35)     # mainnet address


def test_payee_choice_and_fee():
    node = make_addresses(NET, 1, seed=b'node')[0]
    resolver = PayeeResolver(NET.PARENT, node, fee_percent=0)
    assert resolver.payee(parse_username(ADDRESS + '.w'), 17) == ADDRESS
    assert resolver.payee(parse_username('garbage'), 17) == node
    always = PayeeResolver(NET.PARENT, lambda: node, fee_percent=100)
    assert always.payee(parse_username(ADDRESS), 35) == node
    half = PayeeResolver(NET.PARENT, node, fee_percent=50, rng=random.Random(1))
    payees = [half.payee(parse_username(ADDRESS), 35) for _ in range(400)]
    assert 120 < payees.count(node) < 280
    with pytest.raises(ValueError):
        PayeeResolver(NET.PARENT, node, fee_percent=101)
