"""The payout history's pieces without bitcoind: states, the store table, coinbase decoding."""
import pytest

from p2pool.app.payout_history import COINBASE_MATURITY, coinbase_outputs, state_of
from p2pool.bitcoin.data import block_type
from p2pool.store.schema import StoreError
from p2pool.store.sharestore import ShareStore


def test_states_follow_confirmations():
    assert state_of(-1) == 'orphaned'
    assert state_of(0) == state_of(COINBASE_MATURITY - 1) == 'immature'
    assert state_of(COINBASE_MATURITY) == 'mature'


def test_the_store_keeps_rows_newest_first(tmp_path):
    store = ShareStore(tmp_path / 'p2pool.sqlite3')
    row = {'block_hash': '11' * 32, 'height': 7, 'ts': 1.5, 'share_hash': '22' * 32, 'amounts': {'addr': 5},
           'confirmations': 3, 'state': 'immature'}
    store.save_payout(row)
    store.save_payout(dict(row, block_hash='33' * 32, height=9))
    store.save_payout(dict(row, confirmations=100, state='mature'))
    store.close()
    reopened = ShareStore(tmp_path / 'p2pool.sqlite3')
    rows = reopened.load_payouts()
    assert [r['height'] for r in rows] == [9, 7] and rows[1]['state'] == 'mature' and rows[1]['amounts'] == {'addr': 5}
    with pytest.raises(StoreError):
        reopened.save_payout(dict(row, state='lost'))
    reopened.close()


def test_only_the_coinbase_of_a_raw_block_is_read():
    coinbase = {'version': 1, 'tx_ins': [{'previous_output': None, 'script': b'\x01\x07', 'sequence': None}],
                'tx_outs': [{'value': 5000, 'script': b'\x51'}, {'value': 0, 'script': b'\x6a'}], 'lock_time': 0}
    header = {'version': 1, 'previous_block': 1, 'merkle_root': 2, 'timestamp': 1234, 'bits': 0x207fffff, 'nonce': 0}
    raw = block_type.pack({'header': header, 'txs': [coinbase]}) + b'garbage after the coinbase'
    got_header, outputs = coinbase_outputs(raw)
    assert got_header['timestamp'] == 1234 and outputs == [(b'\x51', 5000), (b'\x6a', 0)]
