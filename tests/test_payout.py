"""The operator's payout address: -a, the cached wallet address, and --address dynamic (real bitcoind)."""
import os

import pytest

from p2pool.bitcoin.rpc import RpcClient
from p2pool.config import load_network
from p2pool.app.payout import CACHE_FILE, DynamicPayoutPool, PayoutAddressError, check_address, resolve_payout_address
from twisted_helpers import reactor, run_in_reactor  # noqa: F401 (fixture)

NET = load_network('bsv_regtest')
pytestmark = pytest.mark.bitcoind


@pytest.fixture
def rpc(regtest_node, reactor):  # noqa: F811
    client = RpcClient('127.0.0.1', regtest_node.rpc_port, regtest_node.user, regtest_node.password)
    yield client
    client.close()


def test_given_address_is_checked():
    assert check_address('mwCwTceJvYV27KXBc3NJZys6CjsgsoeHmf', NET) == 'mwCwTceJvYV27KXBc3NJZys6CjsgsoeHmf'
    with pytest.raises(PayoutAddressError, match='not valid for bsv_regtest'):
        check_address('1KUCp7YP5FP8ViRxhfszSUJCTAajK6viGy', NET)


def test_wallet_address_is_cached_and_reused(rpc, tmp_path, regtest_node):
    first = run_in_reactor(resolve_payout_address, rpc, NET, str(tmp_path))
    assert regtest_node.rpc('validateaddress', first)['ismine']
    assert open(os.path.join(tmp_path, CACHE_FILE)).read() == first
    assert run_in_reactor(resolve_payout_address, rpc, NET, str(tmp_path)) == first


def test_a_foreign_cached_address_is_replaced(rpc, tmp_path):
    with open(os.path.join(tmp_path, CACHE_FILE), 'w') as f:
        f.write('mwCwTceJvYV27KXBc3NJZys6CjsgsoeHmf')   # valid, but not in this wallet
    fresh = run_in_reactor(resolve_payout_address, rpc, NET, str(tmp_path))
    assert fresh != 'mwCwTceJvYV27KXBc3NJZys6CjsgsoeHmf'
    assert open(os.path.join(tmp_path, CACHE_FILE)).read() == fresh


def test_dynamic_pool_fills_rotates_and_chooses(rpc):
    pool = DynamicPayoutPool(rpc, NET, size=3, rotate_seconds=3600)
    addresses = run_in_reactor(pool.fill)
    assert len(set(addresses)) == 3
    run_in_reactor(pool.rotate)
    assert pool.addresses[:2] == addresses[1:] and pool.addresses[2] not in addresses
    assert {pool.choose() for _ in range(200)} == set(pool.addresses)
