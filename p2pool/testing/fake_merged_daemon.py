"""TEST DOUBLE of a merged-mining daemon (Namecoin's auxpow RPC contract), for tests only.

No real merged-mining chain can be run here, so this double plays one: it hands
out aux blocks and judges the auxpow submitted for them as strictly as Namecoin
does (check_auxpow below):

* the auxpow decodes exactly (serialization.md §2.7);
* merkle_tx.block_hash is the parent header's hash;
* the coinbase's merkle link (index 0) leads to the parent header's merkle root;
* the parent coinbase input script holds the magic fabe6d6d exactly once, with
  the aux-tree root (big-endian) right after it, then u32 size and u32 nonce;
* the aux-tree size is 2^(chain branch length), the chain merkle branch leads from
  the aux block hash to that root, and its index is the chain's slot
  (Namecoin's formula with the committed nonce);
* the parent header's proof of work meets the aux target.

RPC methods: getauxblock() -> work; getauxblock(hash, auxpow_hex) -> bool;
createauxblock(address) -> work; submitauxblock(hash, auxpow_hex) -> bool.
Work objects carry hash (display hex), chainid, target and _target (32 bytes,
little-endian hex), previousblockhash, coinbasevalue, bits and height. Accepted
blocks advance the double's chain and replace the aux block hash.
"""
import os
import threading
from typing import Any

from p2pool.bitcoin import data
from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.hashes import hash256
from p2pool.testing.jsonrpc_server import JsonRpcFault, JsonRpcTestServer
from p2pool.work.merged import chain_slot

#: the sample target of vectors.md ("aaaa...aa", about 2/3 of 2^256): nearly every header meets it
EASY_TARGET = int('aa' * 32, 16)
RPC_INVALID_PARAMETER = -8
RPC_DESERIALIZATION_ERROR = -22


def check_auxpow(aux_pow_bytes, aux_hash, chain_id, target, pow_func=hash256) -> str | None:
    """None when the auxpow proves `aux_hash` for `chain_id` at `target`, else the reason (text)."""
    try:
        aux_pow = data.aux_pow_type.unpack(aux_pow_bytes)
    except s.DecodeError as e:
        return 'auxpow does not decode: %s' % e
    header = aux_pow['parent_block_header']
    header_bytes = data.header_type.pack(header)
    merkle_tx = aux_pow['merkle_tx']
    if merkle_tx['block_hash'] != hash256(header_bytes):
        return 'merkle_tx block_hash is not the parent header hash'

    coinbase = merkle_tx['tx']
    if merkle_tx['merkle_link']['index'] != 0:
        return 'the coinbase merkle link does not start at index 0'
    try:
        reached = data.check_merkle_link(data.txid(coinbase), merkle_tx['merkle_link'])
    except data.MerkleError as e:
        return 'bad coinbase merkle link: %s' % e
    if reached != header['merkle_root']:
        return 'the coinbase merkle link does not reach the parent merkle root'
    if len(coinbase['tx_ins']) != 1 or coinbase['tx_ins'][0]['previous_output'] is not None:
        return 'the parent transaction is not a coinbase'

    chain_link = aux_pow['merkle_link']
    if len(chain_link['branch']) > 30:
        return 'chain merkle branch is too long'
    try:
        chain_root = data.check_merkle_link(aux_hash, chain_link)
    except data.MerkleError as e:
        return 'bad chain merkle link: %s' % e

    script = coinbase['tx_ins'][0]['script']
    magic_at = script.find(data.MERGED_MINING_MAGIC)
    if magic_at < 0:
        return 'no merged-mining magic in the parent coinbase'
    if script.find(data.MERGED_MINING_MAGIC, magic_at + 1) >= 0:
        return 'more than one merged-mining magic in the parent coinbase'
    root_at = script.find(chain_root.to_bytes(32, 'big'))
    if root_at < 0:
        return 'the aux chain merkle root is not in the parent coinbase'
    if root_at != magic_at + len(data.MERGED_MINING_MAGIC):
        return 'the merged-mining magic is not just before the aux chain merkle root'
    record = script[magic_at + 4:magic_at + 4 + 40]
    if len(record) < 40:
        return 'the parent coinbase ends before the aux tree size and nonce'
    commitment = data.aux_pow_coinbase_type.unpack(record)
    if commitment['size'] != 1 << len(chain_link['branch']):
        return 'aux tree size %d does not match the chain merkle branch length %d' % (
            commitment['size'], len(chain_link['branch']))
    if chain_link['index'] != chain_slot(chain_id, commitment['size'], commitment['nonce']):
        return 'aux block is in slot %d, chain %d belongs in slot %d' % (
            chain_link['index'], chain_id, chain_slot(chain_id, commitment['size'], commitment['nonce']))

    if pow_func(header_bytes) > target:
        return 'the parent header does not meet the aux target'
    return None


class FakeMergedDaemon:
    """TEST DOUBLE: a merged-mining daemon on loopback; start() it, point --merged at .url."""

    def __init__(self, chain_id=1, target=EASY_TARGET, user='merged', password='merged-password',
                 pow_func=hash256, coinbase_value=5000000000, bits=0x207fffff):
        self.chain_id, self.target, self.pow_func = chain_id, target, pow_func
        self.coinbase_value, self.bits = coinbase_value, bits
        self.height = 1
        self.tip = int.from_bytes(os.urandom(32), 'big')
        self.issued = {}  # aux hash -> height it was issued for
        self.current_hash = None
        self.accepted = []  # aux hashes accepted, in order
        self.rejections = []  # (aux hash, reason) of every refused auxpow
        self.addresses = []  # payout addresses given to createauxblock
        self._lock = threading.Lock()
        self._new_block()
        self.server = JsonRpcTestServer({
            'getauxblock': self._getauxblock,
            'createauxblock': self._createauxblock,
            'submitauxblock': self._submitauxblock,
            'getblockcount': lambda: self.height - 1,
        }, user=user, password=password)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> 'FakeMergedDaemon':
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _new_block(self):
        self.current_hash = int.from_bytes(os.urandom(32), 'big')
        self.issued[self.current_hash] = self.height

    def work(self) -> dict[str, Any]:
        target_hex = self.target.to_bytes(32, 'little').hex()
        return {'hash': '%064x' % self.current_hash, 'chainid': self.chain_id, 'target': target_hex,
                '_target': target_hex, 'previousblockhash': '%064x' % self.tip,
                'coinbasevalue': self.coinbase_value, 'bits': '%08x' % self.bits, 'height': self.height}

    # --- RPC methods ---------------------------------------------------------

    def _getauxblock(self, *params):
        if not params:
            with self._lock:
                return self.work()
        if len(params) != 2:
            raise JsonRpcFault(RPC_INVALID_PARAMETER, 'getauxblock takes no or two parameters')
        return self._submit(*params)

    def _createauxblock(self, address=None):
        if not isinstance(address, str) or not address:
            raise JsonRpcFault(-5, 'Invalid coinbase payout address')
        with self._lock:
            self.addresses.append(address)
            return self.work()

    def _submitauxblock(self, hash_hex=None, auxpow_hex=None):
        return self._submit(hash_hex, auxpow_hex)

    def _submit(self, hash_hex, auxpow_hex):
        try:
            aux_hash = int(hash_hex, 16)
            raw = bytes.fromhex(auxpow_hex)
        except (TypeError, ValueError):
            raise JsonRpcFault(RPC_DESERIALIZATION_ERROR, 'hash or auxpow is not hex') from None
        with self._lock:
            if aux_hash not in self.issued:
                raise JsonRpcFault(RPC_INVALID_PARAMETER, 'block hash unknown')
            if aux_hash != self.current_hash:
                self.rejections.append((aux_hash, 'stale: the chain has moved on'))
                return False
            reason = check_auxpow(raw, aux_hash, self.chain_id, self.target, self.pow_func)
            if reason is not None:
                self.rejections.append((aux_hash, reason))
                return False
            self.accepted.append(aux_hash)
            self.tip, self.height = aux_hash, self.height + 1
            self._new_block()
            return True
