"""Sharechain commands of the inspector: `share HEX` and `verify FILE`.

`verify` reads one share per line, either bare wire hex or the original
P2Pool's `shares.N` records (`5 <hex>` shares; `2 <hash>` verified marks are
ignored: every share is verified afresh), adds them to a fresh in-memory chain
and verifies them exactly as a node does. It prints one JSON object per share
and a last one with the expected payouts at the best share.
"""
import time
from typing import Any

from p2pool.bitcoin.data import bits_to_target, target_to_difficulty
from p2pool.sharechain.chain import ShareChain
from p2pool.sharechain.pplns import current_payouts
from p2pool.sharechain.share import Share, ShareDecodeError


class InspectError(Exception):
    """Input the inspector cannot decode (same meaning as p2pool.commands.inspector.InspectError)."""


def _hex(value):
    return None if value is None else '%064x' % value


def describe_share(share) -> dict[str, Any]:
    return {
        'version': share.VERSION,
        'hash': _hex(share.hash),
        'pow_hash': _hex(share.pow_hash),
        'gentx_hash': _hex(share.gentx_hash),
        'previous_share_hash': _hex(share.previous_hash),
        'previous_block': _hex(share.header['previous_block']),
        'target': _hex(share.target),
        'max_target': _hex(share.max_target),
        'difficulty': target_to_difficulty(share.target),
        'block_target': _hex(bits_to_target(share.header['bits'])),
        'is_block': share.pow_hash <= bits_to_target(share.header['bits']),
        'timestamp': share.timestamp,
        'absheight': share.absheight,
        'abswork': '%032x' % share.abswork,
        'payout_address': share.payout_address,
        'payout_script': share.payout_script.hex(),
        'subsidy': share.subsidy,
        'donation': share.donation,
        'stale_info': share.stale_info,
        'desired_version': share.desired_version,
        'far_share_hash': _hex(share.far_share_hash),
        'new_transaction_hashes': [_hex(h) for h in share.new_transaction_hashes],
    }


def _decode(net, raw):
    try:
        return Share.from_wire(net, raw)
    except ShareDecodeError as e:
        raise InspectError('not a valid %s share: %s' % (net.NAME, e)) from None


def cmd_share(arg, net) -> dict[str, Any]:
    try:
        raw = bytes.fromhex(arg.strip())
    except ValueError:
        raise InspectError('not a hex string') from None
    return describe_share(_decode(net, raw))


def _share_lines(path):
    """(line number, wire bytes or None, error) for every share line of `path`."""
    with open(path, 'r', encoding='ascii', errors='replace') as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) == 2 and fields[0].isdigit():
                if fields[0] != '5':   # verified marks and legacy records
                    continue
                text = fields[1]
            elif len(fields) == 1:
                text = fields[0]
            else:
                yield number, None, 'expected "HEX" or "5 HEX"'
                continue
            try:
                yield number, bytes.fromhex(text), None
            except ValueError:
                yield number, None, 'not a hex string'


def cmd_verify(path, net) -> list[dict[str, Any]]:
    chain = ShareChain(net, None, clock=time.time)
    lines, shares = [], []
    for number, raw, error in _share_lines(path):
        if raw is not None:
            try:
                share = Share.from_wire(net, raw, time_seen=0, peer_addr=('file', number))
            except ShareDecodeError as e:
                error = 'cannot decode: %s' % e
            else:
                shares.append((number, share))
                continue
        lines.append({'line': number, 'hash': None, 'verified': False, 'error': error})
    chain.add_shares([share for _, share in shares], think=False)
    chain.think()
    _verify_the_rest(chain, [share for _, share in shares])
    verified = chain.tracker.verified.items
    for number, share in shares:
        entry = {'line': number, 'hash': _hex(share.hash), 'verified': share.hash in verified}
        if not entry['verified']:
            entry['error'] = chain.verification_failures.get(share.hash) or (
                'not verified: removed as invalid' if share.hash not in chain.tracker.items
                else 'not verifiable: needs %d ancestors or a chain back to its first share'
                     % (net.CHAIN_LENGTH + 1))
        lines.append(entry)
    lines.sort(key=lambda entry: entry['line'])
    best = chain.best_share
    payouts = {}
    if best is not None:
        payouts = current_payouts(chain.tracker, best.hash, bits_to_target(best.header['bits']), best.subsidy, net)
    lines.append({'best_share': _hex(best.hash) if best else None,
                  'expected_payouts': {address: amount for address, amount in sorted(payouts.items())}})
    return lines


def _verify_the_rest(chain, shares):
    """A node verifies only the CHAIN_LENGTH shares behind each head; the inspector also
    checks older shares whose ancestors are all present, oldest first."""
    tracker = chain.tracker
    for share in sorted(shares, key=lambda s: s.absheight):
        if share.hash not in tracker.items or share.hash in tracker.verified.items:
            continue
        if tracker.get_last(share.hash) is None and (
                share.previous_hash is None or share.previous_hash in tracker.verified.items):
            if chain.verify_share(share):
                tracker.verified.add(share)


def _verify_command(arg, net):
    try:
        return cmd_verify(arg, net)
    except UnicodeError:
        raise InspectError('%s is not a text file' % arg) from None


COMMANDS = {'share': cmd_share, 'verify': _verify_command}
