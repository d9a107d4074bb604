"""Build and solve parent blocks from a Template, for tests and benchmarks only.

A real node builds its coinbase through the share generator; tests of the bitcoind
bridge just need *a* valid block: coinbase (BIP34 height, optional extra pushes
such as merged-mining data, template flags) paying the whole coinbase value to
one script, the template's transactions, and a nonce that meets the target.
"""
from p2pool.bitcoin import data
from p2pool.bitcoin.hashes import hash256
from p2pool.bitcoin.script import coinbase_script
from typing import Any

#: OP_TRUE: anyone can spend; good enough for regtest coinbases nobody spends
ANYONE_CAN_SPEND = b'\x51'


class SolveError(RuntimeError):
    """No nonce in the tried range met the target."""


def build_coinbase(template, payout_script=ANYONE_CAN_SPEND, extra_pushes=(), tag=b'') -> dict[str, Any]:
    """Coinbase transaction (stripped form) for `template`; `tag` makes otherwise equal coinbases differ."""
    script = coinbase_script(template.height, list(extra_pushes) + ([tag] if tag else []),
                             template.coinbaseflags)
    outputs = [{'value': template.subsidy, 'script': payout_script}]
    if template.default_witness_commitment is not None:
        outputs.append({'value': 0, 'script': template.default_witness_commitment})
    return {'version': 1, 'tx_ins': [{'previous_output': None, 'script': script, 'sequence': None}],
            'tx_outs': outputs, 'lock_time': 0}


def build_block(template, coinbase, timestamp=None) -> dict[str, Any]:
    """Unsolved block (nonce 0) of `coinbase` and the template's transactions."""
    txs = [coinbase] + list(template.transactions)
    header = {'version': template.version, 'previous_block': template.previous_block,
              'merkle_root': data.merkle_hash([data.txid(tx) for tx in txs]),
              'timestamp': template.time if timestamp is None else timestamp,
              'bits': template.bits, 'nonce': 0}
    return {'header': header, 'txs': txs}


def coinbase_branch(block) -> dict[str, Any]:
    """Merkle branch of the coinbase (index 0) in `block`."""
    return data.calculate_merkle_link([None] + [data.txid(tx) for tx in block['txs'][1:]], 0)['branch']


def solve(header, target, pow_func=hash256, max_tries=10_000_000) -> dict[str, Any]:
    """The header with the first nonce whose PoW hash meets `target` (regtest targets: a few tries)."""
    header = dict(header)
    for nonce in range(max_tries):
        header['nonce'] = nonce
        if pow_func(data.header_type.pack(header)) <= target:
            return header
    raise SolveError('no nonce below %d meets target %064x' % (max_tries, target))


def solved_block(template, payout_script=ANYONE_CAN_SPEND, extra_pushes=(), tag=b'') -> dict[str, Any]:
    """build_coinbase + build_block + solve against the template's own target."""
    block = build_block(template, build_coinbase(template, payout_script, extra_pushes, tag))
    block['header'] = solve(block['header'], template.block_target)
    return block
