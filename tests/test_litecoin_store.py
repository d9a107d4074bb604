"""A restart on a scrypt network reuses the PoW hashes its store kept (ltc_chain_load_s)."""
from p2pool.bitcoin import hashes
from p2pool.config import load_network
from p2pool.sharechain.chain import ShareChain
from p2pool.store.sharestore import ShareStore
from p2pool.testing import testchain


def test_stored_scrypt_pow_is_reused_on_load(tmp_path, monkeypatch):
    net = testchain.easy_network(load_network('litecoin'))
    shares = testchain.mine_chain(net, 12)
    store = ShareStore(str(tmp_path / 'ltc.sqlite3'))
    store.add_shares(shares)
    store.mark_verified([share.hash for share in shares])
    store.close()

    calls = []
    real_scrypt = hashes.POW_FUNCTIONS['scrypt']
    monkeypatch.setitem(hashes.POW_FUNCTIONS, 'scrypt', lambda header: calls.append(header) or real_scrypt(header))
    chain = ShareChain(net, ShareStore(str(tmp_path / 'ltc.sqlite3')), clock=lambda: 2_000_000_000)
    assert chain.load() == 12
    assert calls == []
    assert {share.hash: share.pow_hash for share in shares} == {
        share_hash: share.pow_hash for share_hash, share in chain.tracker.items.items()}
