"""End to end (issue 8, item 3): three real node processes, two real miner protocols, one real bitcoind.

The pool: one regtest bitcoind with a peer (the session's `regtest_pair`), three
`run_p2pool.py` processes A, B and C in a triangle (B connects to A, C to A and
B), a Stratum miner on A paying address X and a getwork miner on B paying
address Y, each node with its own operator address. The miners are throttled
to a few hundred hashes a second, so the sharechain grows by about a share a
second. On bsv_regtest almost every share is also a block (block target 2^255,
share targets near 2^248), so bitcoind's chain grows with the sharechain and
many shares end up stale; that is expected.

While the miners run, a recorder polls A and B: each time both reads of
`/web/best_share_hash` around one `/current_payouts` agree, that payout
prediction is kept for that best share.

What each test shows is in its docstring; `test_blocks_pay_what_the_sharechain_predicted`
documents exactly which payout numbers are compared.
"""
import re
import threading
import time
from collections import Counter

import pytest

from node_processes import NodeProcess, NodeProcessError, release_long_polls, wait_until
from p2pool.bitcoin import data as bitcoin_data
from p2pool.bitcoin.address import DONATION_SCRIPT, address_to_script, donation_address
from p2pool.config import load_network
from p2pool.work.cpuminer import GetworkMiner, StratumMiner

pytestmark = [pytest.mark.bitcoind, pytest.mark.slow]

MINING_SECONDS = 25
HASH_RATE = 250            # per miner, hashes a second
CHUNK = 32                 # hashes between looks at new work
AGREEMENT_TIMEOUT = 40
#: username suffix fixing the share difficulty far below the pool minimum, so that the
#: generator clips it to the pool's own target: without it a node's shares are at least
#: 30 times harder than the pool's (worker.md §4.1 step 2 wants each node to find no
#: more than ~1.67 % of the shares), and a pool of two slow miners would crawl
EASIEST_SHARES = '/1e-12'


# ----------------------------------------------------------------------------- the pool

class Pool:
    """The three nodes, the miners' addresses and what was recorded while mining."""

    def __init__(self, bitcoind, tmp_path_factory):
        self.bitcoind = bitcoind
        self.net = load_network('bsv_regtest')
        wallet = [bitcoind.rpc('getnewaddress') for _ in range(5)]
        self.stratum_address, self.getwork_address = wallet[:2]
        root = tmp_path_factory.mktemp('end-to-end')
        self.a = NodeProcess(bitcoind, root / 'a', name='A', address=wallet[2])
        self.b = NodeProcess(bitcoind, root / 'b', name='B', address=wallet[3], peers=[self.a.p2p_port])
        self.c = NodeProcess(bitcoind, root / 'c', name='C', address=wallet[4],
                             peers=[self.a.p2p_port, self.b.p2p_port])
        self.nodes = [self.a, self.b, self.c]
        self.finder_node = {self.stratum_address: self.a, self.getwork_address: self.b}
        self.snapshots = {'A': {}, 'B': {}}     # node name -> {best share hex: /current_payouts}
        self.start_height = bitcoind.rpc('getblockcount')
        self.stratum_submissions = self.getwork_submissions = None

    def start(self):
        for node in self.nodes:
            node.start().wait_ready()
        wait_until(lambda: all(node.peer_count() == 2 for node in self.nodes), 30, 'the triangle of peers')

    def stop(self):
        for node in self.nodes:
            node.stop(timeout=20)

    def mine(self, seconds):
        """Both miners and the payout recorder for `seconds`; miners' submissions are kept."""
        stop = threading.Event()
        stratum = StratumMiner('127.0.0.1', self.a.worker_port, self.stratum_address + EASIEST_SHARES).connect()
        getwork = GetworkMiner('127.0.0.1', self.b.worker_port, self.getwork_address + EASIEST_SHARES)
        errors = []
        threads = [threading.Thread(target=_reporting(target, errors), args=args, daemon=True) for target, args in (
            (stratum_loop, (stratum, stop)), (getwork_loop, (getwork, stop)), (self._record, (stop,)))]
        for thread in threads:
            thread.start()
        try:
            stop.wait(seconds)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            stratum.close()
        assert not errors, 'a miner or the recorder failed: %r' % errors
        self.stratum_submissions, self.getwork_submissions = stratum.submissions, getwork.submissions

    def _record(self, stop):
        while not stop.is_set():
            for node in (self.a, self.b):
                before = node.best_share_hash()
                payouts = node.get_or_none('/current_payouts')
                if before and payouts and node.best_share_hash() == before:
                    self.snapshots[node.name].setdefault(before, payouts)
            time.sleep(0.05)

    def agreed_best(self, timeout=AGREEMENT_TIMEOUT):
        """The best share all three nodes report, once they agree.

        Two shares found at the same moment on different nodes have equal work, and each
        node keeps the one it saw first (sharechain.md §5.2) until a next share decides;
        so when the nodes still disagree after a while, one more share is mined on A.
        """
        def agreed():
            bests = {node.best_share_hash() for node in self.nodes}
            return bests.pop() if len(bests) == 1 and None not in bests else None
        try:
            return wait_until(agreed, timeout / 2, 'the three nodes to agree on the best share', interval=0.2)
        except NodeProcessError:
            self.mine_one_share_on(self.a)
        try:
            return wait_until(agreed, timeout / 2, 'the three nodes to agree on the best share', interval=0.2)
        except NodeProcessError as error:
            raise AssertionError('%s\n%s' % (error, '\n'.join(node.tail(15) for node in self.nodes))) from None

    def mine_one_share_on(self, node, timeout=60):
        """Run a getwork miner on `node` until its best share changes (a tie-breaking share)."""
        before = node.best_share_hash()
        stop = threading.Event()
        miner = GetworkMiner('127.0.0.1', node.worker_port, self.getwork_address + EASIEST_SHARES)
        thread = threading.Thread(target=getwork_loop, args=(miner, stop), daemon=True)
        thread.start()
        try:
            wait_until(lambda: node.best_share_hash() != before, timeout, 'a tie-breaking share on %s' % node.name)
        finally:
            stop.set()
            thread.join(30)


def _reporting(target, errors):
    """`target` for a thread: an exception is kept in `errors` (and stops the thread)."""
    def run(*args):
        try:
            target(*args)
        except Exception as error:  # noqa: BLE001 - handed to the test thread
            errors.append(error)
    return run


def stratum_loop(miner, stop):
    """Mine at about HASH_RATE, CHUNK hashes at a time, always on the newest job."""
    while not stop.is_set():
        miner.poll()
        job = miner.job
        extranonce2, nonce = miner.find(job, max_hashes=CHUNK)
        if nonce is not None:
            miner.submit(job, extranonce2, nonce)
        stop.wait(CHUNK / HASH_RATE)


def getwork_loop(miner, stop):
    """The same pace with getwork: fresh work, CHUNK hashes, submit what meets the work's target."""
    while not stop.is_set():
        data = miner.solve(miner.getwork()[0], max_hashes=CHUNK)
        if data is not None:
            miner.submit(data)
        stop.wait(CHUNK / HASH_RATE)


@pytest.fixture(scope='module')
def pool(regtest_pair, tmp_path_factory):
    # three nodes keep three of bitcoind's four RPC threads in long polls: free any that
    # nodes of earlier tests left waiting
    release_long_polls(regtest_pair.ensure_running())
    pool = Pool(regtest_pair.first, tmp_path_factory)
    try:
        pool.start()
        pool.mine(MINING_SECONDS)
        yield pool
    finally:
        pool.stop()
        release_long_polls(regtest_pair)


# ----------------------------------------------------------------------------- the sharechain over HTTP

class ChainView:
    """Shares as one node's `/web/share/HASH` describes them (fetched once each)."""

    def __init__(self, node):
        self.node, self.shares = node, {}

    def share(self, share_hex):
        if share_hex not in self.shares:
            self.shares[share_hex] = self.node.get_or_none('/web/share/' + share_hex)
        return self.shares[share_hex]

    def parent(self, share_hex):
        parent = self.share(share_hex)['parent']
        return None if parent == 'None' or self.share(parent) is None else parent

    def height(self, share_hex):
        """The tracker's height: shares from this one back to the oldest one the node holds."""
        height = 0
        while share_hex is not None:
            height += 1
            share_hex = self.parent(share_hex)
        return height

    def chain(self, share_hex, count):
        found = []
        while share_hex is not None and len(found) < count:
            found.append(self.share(share_hex))
            share_hex = self.parent(share_hex)
        return found


def window_weights(shares, desired_weight):
    """PPLNS weights over `shares`, newest first (shares.md §11.4, written out here independently).

    Returns ({address: weight}, total); total includes the donation weight.
    """
    weights, total = Counter(), 0
    for share in shares:
        data = share['share_data']
        attempts = 2**256 // (data['target'] + 1)
        donation = round(data['donation'] * 65535)
        if total + attempts * 65535 > desired_weight:
            part = (desired_weight - total) // 65535
            weights[data['payout_address']] += part * (65535 - donation)
            total = desired_weight
            break
        weights[data['payout_address']] += attempts * (65535 - donation)
        total += attempts * 65535
    return {address: weight for address, weight in weights.items() if weight}, total


def coinbase_of(bitcoind, block_hex_hash):
    """(coinbase tx dict, its raw hex, the block header dict) of a block in bitcoind's chain."""
    block = bitcoin_data.block_type.unpack(bytes.fromhex(bitcoind.rpc('getblock', block_hex_hash, 0)))
    coinbase = block['txs'][0]
    return coinbase, bitcoin_data.tx_type.pack(coinbase).hex(), block['header']


def pool_blocks(pool, view):
    """Hashes (hex) of the blocks bitcoind added since the pool started that are shares of our chain."""
    tip = pool.bitcoind.rpc('getblockcount')
    found = []
    for height in range(pool.start_height + 1, tip + 1):
        block_hash = pool.bitcoind.rpc('getblockhash', height)
        if view.share(block_hash) is not None:
            found.append(block_hash)
    return found


# ----------------------------------------------------------------------------- the tests

def test_all_nodes_agree_on_the_best_share(pool):
    """After mining through A (Stratum) and B (getwork), A, B and C report the same best share,
    which is a descendant of shares both miners found."""
    assert any(result is True for result, _error in pool.stratum_submissions)
    assert any(result is True for result, _error, _reason in pool.getwork_submissions)
    best = pool.agreed_best()
    view = ChainView(pool.c)
    payees = {share['share_data']['payout_address'] for share in view.chain(best, 10**6)}
    assert {pool.stratum_address, pool.getwork_address} <= payees
    for node in pool.nodes:
        stats = node.get('/local_stats')
        assert stats['peers']['incoming'] + stats['peers']['outgoing'] == 2


def expected_coinbase_amounts(window, subsidy, finder, desired_weight):
    """{address: satoshis} of shares.md §11.5 for a window, plus (DONATION_SCRIPT, satoshis)."""
    weights, total = window_weights(window, desired_weight)
    amounts = Counter()
    for address, weight in weights.items():
        amounts[address] = subsidy * 199 * weight // (200 * total)
    amounts[finder] += subsidy // 200
    return {address: amount for address, amount in amounts.items() if amount}, subsidy - sum(amounts.values())


def expected_current_payouts(window, subsidy, desired_weight, parent):
    """{address: satoshis} of /current_payouts for a window (shares.md §15), zero amounts left out."""
    weights, total = window_weights(window, desired_weight)
    payouts = {address: subsidy * weight // total for address, weight in weights.items()}
    donation = donation_address(parent)
    payouts[donation] = payouts.get(donation, 0) + subsidy - sum(payouts.values())
    return {address: amount for address, amount in payouts.items() if amount}


def satoshis(coins_by_address):
    return {address: round(coins * 1e8) for address, coins in coins_by_address.items() if round(coins * 1e8)}


def test_blocks_pay_what_the_sharechain_predicted(pool):
    """Every block in bitcoind's chain that is one of our shares pays exactly what the sharechain says.

    For each such block (share B, parent P, grandparent G; the hash of a share is the
    hash of its block):

    1. Consensus: if B is in the agreed best chain, every node has verified B, and the
       gentx each node regenerates for it (`/web/share/B` block.gentx.raw: rebuilt by
       the generator, checked against the share's gentx hash) is byte for byte the
       coinbase bitcoind holds.
    2. The formula, computed here independently from the shares the nodes describe
       (`/web/share/...`: target, payout address, donation): the coinbase outputs are
       exactly shares.md §11.4-11.5 — the PPLNS window starts at G and holds
       min(height(P), REAL_CHAIN_LENGTH) - 1 shares; amount = subsidy·199·w // (200·total)
       per address, + subsidy // 200 to B's own address (the finder), the rest to the
       donation script; subsidy = the coinbase total.
    3. The prediction: `/current_payouts` of the node whose miner found B, recorded while
       its best share was G (the window start of B), equals exactly shares.md §15 for
       that window: subsidy'·w // total per address (window from G with
       min(height(G), REAL_CHAIN_LENGTH) shares, subsidy' = that moment's template
       value, no finder fee, the rest to the donation address). Same weights w as in
       (2), so the coinbase pays each address the predicted fraction w/total scaled by
       199/200, plus the finder fee. When the subsidy and the window length are the
       same, this is also checked directly on the numbers: coinbase amount (minus the
       finder fee) == 199·p/200 for the predicted p, up to the one satoshi the floor in
       /current_payouts loses (the prediction does not carry enough digits for more).
    At least one block of each miner must be in bitcoind's chain, and at least one
    block must have its prediction recorded.
    """
    parent = pool.net.PARENT
    best = pool.agreed_best()
    views = {node.name: ChainView(node) for node in pool.nodes}
    view = views['A']
    best_chain = {share['block']['hash'] for share in view.chain(best, 10**6)}
    blocks = pool_blocks(pool, view)
    finders, predicted = set(), 0
    for block_hash in blocks:
        share = view.share(block_hash)
        finder = share['share_data']['payout_address']
        finders.add(finder)
        coinbase, coinbase_hex, header = coinbase_of(pool.bitcoind, block_hash)
        paid = Counter()
        for output in coinbase['tx_outs']:
            paid[output['script']] += output['value']
        subsidy = sum(paid.values())
        assert round(share['block']['gentx']['value'] * 1e8) == subsidy

        if block_hash in best_chain:                                          # (1)
            for name, node_view in views.items():
                described = node_view.share(block_hash)
                assert described['local']['verified'], (name, block_hash)
                assert described['block']['gentx']['raw'] == coinbase_hex, (name, block_hash)
                assert described['block']['gentx']['hash'] == '%064x' % bitcoin_data.txid(coinbase)

        parent_hash = view.parent(block_hash)                                 # (2)
        window_start = view.parent(parent_hash) if parent_hash else None
        parent_height = view.height(parent_hash) if parent_hash else 0
        window = view.chain(window_start, max(0, min(parent_height, pool.net.REAL_CHAIN_LENGTH) - 1)) \
            if window_start else []
        block_target = bitcoin_data.bits_to_target(header['bits'])
        desired_weight = 65535 * pool.net.SPREAD * bitcoin_data.target_to_average_attempts(block_target)
        amounts, donation = expected_coinbase_amounts(window, subsidy, finder, desired_weight)
        expected = Counter({address_to_script(address, parent): amount for address, amount in amounts.items()})
        expected[DONATION_SCRIPT] += donation
        assert {script: value for script, value in paid.items() if value} == \
            {script: value for script, value in expected.items() if value}, block_hash

        snapshot = pool.snapshots[pool.finder_node[finder].name].get(window_start)     # (3)
        if snapshot is None:
            continue
        predicted += 1
        snapshot = satoshis(snapshot)
        snapshot_subsidy = sum(snapshot.values())
        snapshot_window = view.chain(window_start, min(view.height(window_start), pool.net.REAL_CHAIN_LENGTH))
        assert snapshot == expected_current_payouts(snapshot_window, snapshot_subsidy, desired_weight, parent)
        if snapshot_subsidy == subsidy and len(snapshot_window) == len(window):
            for address, prediction in snapshot.items():
                if address == donation_address(parent):
                    continue
                paid_share = paid[address_to_script(address, parent)] - (subsidy // 200 if address == finder else 0)
                assert 199 * prediction // 200 <= paid_share <= -(-199 * (prediction + 1) // 200) - 1, \
                    (block_hash, address, prediction, paid_share)
    assert {pool.stratum_address, pool.getwork_address} <= finders, 'each miner found a block in bitcoind\'s chain'
    assert predicted >= 1, 'no block whose window start was recorded as the finding node\'s best share'


def test_a_node_killed_with_kill_9_reloads_rejoins_and_keeps_its_shares(pool):
    """kill -9 node B (the getwork miner's node) and start it again on the same data directory.

    * It reloads its chain from the store: the log says how many shares (and verified
      ones) were loaded, exactly as many as it held before the kill, and right after
      the restart its best share is at least as high (absheight) as before.
    * It keeps its own shares: every share its miner found before the kill is still in
      its sharechain paying the miner's address, and its /current_payouts still pays
      that address. (/web/my_share_hashes is per run, as in the original: empty after
      the restart until the miner finds new shares.)
    * It rejoins: both peers are back and the three nodes agree on the best share, also
      after its miner found new shares that A and C accepted.
    """
    b, address = pool.b, pool.getwork_address
    best = pool.agreed_best()
    before = b.get('/web/sync_progress')
    height_before = ChainView(b).share(best)['share_data']['absheight']
    own_before = b.get('/web/my_share_hashes')
    assert own_before

    b.kill()
    b.start().wait_ready()
    loaded = re.search(r'Loaded (\d+) shares \((\d+) verified\) from the store', b.console())
    assert loaded, b.tail()
    assert (int(loaded.group(1)), int(loaded.group(2))) == \
        (before['shares_in_memory'], before['verified_in_memory'])
    best_after_restart = b.best_share_hash()
    assert best_after_restart is not None
    assert ChainView(b).share(best_after_restart)['share_data']['absheight'] >= height_before

    view = ChainView(b)
    for share_hash in own_before:
        assert view.share(share_hash)['share_data']['payout_address'] == address
    assert b.get('/web/my_share_hashes') == []
    assert b.get('/current_payouts').get(address, 0) > 0

    wait_until(lambda: b.peer_count() == 2 and pool.c.peer_count() == 2, 30, 'B to be back in the triangle')
    assert pool.agreed_best()

    stop = threading.Event()
    miner = GetworkMiner('127.0.0.1', b.worker_port, address + EASIEST_SHARES)
    thread = threading.Thread(target=getwork_loop, args=(miner, stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(b.get_or_none('/web/my_share_hashes') or ()) >= 2, 60, 'new shares on B')
    finally:
        stop.set()
        thread.join(30)
    new_shares = b.get('/web/my_share_hashes')
    best = pool.agreed_best()
    chain = {share['block']['hash'] for share in ChainView(pool.a).chain(best, 10**6)}
    assert chain & set(new_shares), 'none of B\'s new shares is in the chain the pool agreed on'
