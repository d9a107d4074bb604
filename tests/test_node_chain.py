"""The running node's ShareChain: adding, verifying, choosing, storing and reloading shares."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from p2pool.testing import testchain
from p2pool.store.sharestore import ShareStore
from chain_helpers import NET, fresh, reparsed

@pytest.fixture(scope='module')
def chain_shares():
    return testchain.mine_chain(NET, NET.CHAIN_LENGTH + 30)


def test_forward_add_verifies_and_picks_the_head(chain_shares):
    chain = fresh(chain_shares)
    best_changes = []
    chain.best_share_hash.changed.watch(best_changes.append)
    new = chain.add_shares(reparsed(chain_shares), peer_addr=('127.0.0.1', 1))
    assert len(new) == len(chain_shares)
    assert chain.best_share_hash.value == chain_shares[-1].hash
    assert best_changes[-1] == chain_shares[-1].hash
    assert chain.tracker.verified.get_height(chain_shares[-1].hash) >= NET.CHAIN_LENGTH
    assert chain.add_shares(reparsed(chain_shares[:5])) == []
    assert chain.sync_progress() == (NET.CHAIN_LENGTH, NET.CHAIN_LENGTH)


def test_download_backwards_asks_for_parents(chain_shares):
    chain = fresh(chain_shares)
    copies = reparsed(chain_shares)
    chain.add_shares(copies[-10:], peer_addr=('10.0.0.1', 9333))
    assert chain.best_share_hash.value is None
    assert [h for _peer, h in chain.desired] == [copies[-11].hash]
    assert chain.desired[0][0] == ('10.0.0.1', 9333)
    # the rest arrives in reply batches, newest first, as a downloading node receives it
    remaining = copies[:-10]
    while remaining:
        chain.add_shares(remaining[-20:], peer_addr=('10.0.0.1', 9333))
        remaining = remaining[:-20]
    assert chain.best_share_hash.value == copies[-1].hash
    assert chain.desired == []


def test_invalid_share_reports_the_peer(chain_shares):
    chain = fresh(chain_shares)
    good = reparsed(chain_shares[:-1])
    chain.add_shares(good, peer_addr=('10.0.0.2', 9333))
    # a share whose subsidy claims more: decodes (PoW at the easy target) but fails check
    bad_parent = chain_shares[-2]
    bad = []
    chain.bad_peer.watch(lambda peer, reason: bad.append(peer))
    forged = _forge_subsidy(chain_shares[-1])
    chain.add_shares([forged], peer_addr=('10.0.0.3', 9333))
    assert forged.hash not in chain.tracker.items
    assert bad == [('10.0.0.3', 9333)]
    assert chain.best_share_hash.value == bad_parent.hash


def _forge_subsidy(share):
    """`share` with one more satoshi of subsidy and a header nonce that still meets the
    easy target: it decodes, but check() must refuse it (share_info no longer regenerates)."""
    from p2pool.sharechain.share import share_from_contents
    contents = dict(share.contents)
    info = dict(contents['share_info'])
    info['share_data'] = dict(info['share_data'], subsidy=info['share_data']['subsidy'] + 1)
    contents['share_info'] = info
    for nonce in range(10000):
        contents['min_header'] = dict(contents['min_header'], nonce=nonce)
        try:
            return share_from_contents(NET, share.VERSION, contents)
        except ValueError:
            continue
    raise AssertionError('could not forge a share with valid PoW')


def test_store_round_trip_and_requests(tmp_path, chain_shares):
    path = str(tmp_path / 'p2pool.sqlite3')
    chain = fresh(chain_shares, ShareStore(path))
    chain.add_shares(reparsed(chain_shares))
    best = chain.best_share_hash.value
    chain.close()

    again = fresh(chain_shares, ShareStore(path))
    assert again.load() == len(chain_shares)
    assert again.best_share_hash.value == best
    assert len(again.tracker.verified.items) >= NET.CHAIN_LENGTH
    got = again.get_shares_for_request([best], parents=3, stops=[chain_shares[-3].hash])
    assert [s.hash for s in got] == [chain_shares[-1].hash, chain_shares[-2].hash]
    again.close()


def test_kill_9_while_adding_keeps_a_loadable_chain(tmp_path, chain_shares):
    """A node killed with SIGKILL mid-download restarts with every committed batch."""
    path = str(tmp_path / 'p2pool.sqlite3')
    wire = tmp_path / 'wire.hex'
    wire.write_text('\n'.join(s.to_wire().hex() for s in chain_shares))
    script = textwrap.dedent('''
        import sys, time
        from p2pool.config import load_network
        from p2pool.sharechain.chain import ShareChain
        from p2pool.testing import testchain
        from p2pool.sharechain.share import Share
        from p2pool.store.sharestore import ShareStore
        net = testchain.easy_network(load_network('bsv_regtest'))
        shares = [Share.from_wire(net, bytes.fromhex(l)) for l in open(sys.argv[2]).read().split()]
        chain = ShareChain(net, ShareStore(sys.argv[1]), clock=lambda: shares[-1].timestamp + 10)
        for i in range(0, len(shares), 10):
            chain.add_shares(shares[i:i + 10])
            print(i + 10, flush=True)
        time.sleep(60)
    ''')
    proc = subprocess.Popen([sys.executable, '-c', script, path, str(wire)], stdout=subprocess.PIPE, text=True)
    committed = 0
    while committed < 60:
        committed = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    chain = fresh(chain_shares, ShareStore(path))
    assert chain.load() >= 60
    assert chain.store.last_load_report.unparsable == 0
    chain.close()
