"""The `/web/...` endpoints about shares and the node (web.md §2.3).

`/web/share/<hash>` describes one share in the original's shape; its gentx is
regenerated (p2pool.sharechain.generate.plan_share) for verified shares, checked
against the share's gentx hash, and cached.
"""
import re
from collections import OrderedDict
from typing import Any

import p2pool
from p2pool.bitcoin.data import bits_to_target
from p2pool.sharechain import chooser, generate
from p2pool.sharechain.share import SHARE_VERSIONS
from p2pool.web.api import HttpError, sync_progress
from p2pool.web.history import SOURCES, VIEWS, UnknownGraph

__all__ = ['parse_hash', 'share_info', 'WEB_ENDPOINTS', 'WEB_HASH_ENDPOINTS', 'referenced_transaction_hashes',
           'regenerated_gentx_hex']

_GENTX_CACHE_SIZE = 256
_gentx_cache: OrderedDict[Any, Any] = OrderedDict()
#: display hex only: int(text, 16) alone would also take "-1", "0x1f", "1_f", " 1" or non-ASCII digits
_HEX = re.compile(r'[0-9a-fA-F]+')


def parse_hash(text) -> int:
    """A share hash from its display hex (1-64 hex digits); HttpError 400 otherwise."""
    if not 1 <= len(text) <= 64:
        raise HttpError(400, 'a share hash is up to 64 hex digits, got %d characters' % len(text))
    if not _HEX.fullmatch(text):
        raise HttpError(400, 'a share hash is hex, got %r' % text[:80])
    return int(text, 16)


def _share_or_none(ctx, text):
    return ctx.tracker.items.get(parse_hash(text))


def _known_share(ctx, text):
    share = _share_or_none(ctx, text)
    if share is None:
        raise HttpError(404, 'unknown share %s' % text.lower())
    return share


def _hash_or_none_text(value):
    # [jt] shows a missing parent/far parent as the text "None"
    return 'None' if value is None else '%064x' % value


def referenced_transaction_hashes(tracker, share) -> list[int]:
    """Transaction hashes a v<34 share puts in its block; [] if an ancestor it refers to is gone."""
    keys = chooser.referenced_tx_keys(tracker, share)
    return keys if keys is not None else []


def regenerated_gentx_hex(tracker, share) -> str | None:
    """Hex of the share's stripped gentx rebuilt by the generator, or None if it cannot be
    rebuilt (ancestors pruned, unresolvable references) or does not hash to gentx_hash."""
    cached = _gentx_cache.get(share.hash)
    if cached is not None:
        return cached
    keys = chooser.referenced_tx_keys(tracker, share)
    if keys is None:
        return None
    try:
        plan = generate.plan_share(tracker, share.net, generate.ShareTerms(
            share.share_data, bits_to_target(share.header['bits']), share.timestamp, share.target,
            tuple((key, None) for key in keys), known_txs=None, segwit_data=share.segwit_data,
            version=share.VERSION))
        raw, txid = plan.stripped_gentx(share.ref_hash, share.last_txout_nonce)
    except (generate.GenerateError, ValueError, KeyError):
        return None
    if txid != share.gentx_hash:
        return None
    _gentx_cache[share.hash] = raw.hex()
    while len(_gentx_cache) > _GENTX_CACHE_SIZE:
        _gentx_cache.popitem(last=False)
    return raw.hex()


def share_info(ctx, text) -> dict[str, Any] | None:
    """/web/share/<hash>: the share's description, or None (JSON null) for an unknown share."""
    share = _share_or_none(ctx, text)
    if share is None:
        return None
    tracker = ctx.tracker
    verified = share.hash in tracker.verified.items
    children = tracker.reverse.get(share.hash, ())
    children = sorted(children, key=lambda child: (-len(tracker.reverse.get(child, ())), child))
    header = share.header
    coinbase = share.share_data['coinbase']
    raw = regenerated_gentx_hex(tracker, share) if verified else None
    peer = share.peer_addr
    return {
        'parent': _hash_or_none_text(share.previous_hash),
        'far_parent': _hash_or_none_text(share.far_share_hash),
        'children': ['%064x' % child for child in children],
        'type_name': SHARE_VERSIONS[share.VERSION].NAME,
        'local': {
            'verified': verified,
            'time_first_seen': share.time_seen if share.time_seen else ctx.node.start_time,
            'peer_first_received_from': [peer[0], peer[1]] if peer is not None else None,
        },
        'share_data': {
            'timestamp': share.timestamp,
            'target': share.target,
            'max_target': share.max_target,
            'payout_address': share.payout_address,
            'donation': share.donation / 65535,
            'stale_info': share.stale_info,
            'nonce': share.share_data['nonce'],
            'desired_version': share.desired_version,
            'absheight': share.absheight,
            'abswork': share.abswork,
        },
        'block': {
            'hash': '%064x' % share.hash,
            'header': {
                'version': header['version'],
                'previous_block': '%064x' % (header['previous_block'] or 0),
                'merkle_root': '%064x' % header['merkle_root'],
                'timestamp': header['timestamp'],
                'target': bits_to_target(header['bits']),
                'nonce': header['nonce'],
            },
            'gentx': {
                'hash': '%064x' % share.gentx_hash,
                'coinbase': coinbase.ljust(2, b'\x00').hex(),
                'value': share.subsidy * 1e-8,
                'last_txout_nonce': '%016x' % share.last_txout_nonce,
                'raw': raw if raw is not None else 'unknown',
            },
            'other_transaction_hashes': ['%064x' % key for key in referenced_transaction_hashes(tracker, share)],
        },
    }


def payout_address(ctx, text) -> str:
    return _known_share(ctx, text).payout_address


def share_data(ctx, text) -> bytes:
    """/web/share_data/<hash>: the wire wrapper bytes (served as application/octet-stream);
    empty for an unknown share."""
    share = _share_or_none(ctx, text)
    return share.to_wire() if share is not None else b''


def _hashes(hashes):
    return ['%064x' % value for value in sorted(hashes)]


def _tail_children(tracker):
    """Hashes of the shares directly after each tail (the oldest known share of each chain)."""
    found = set()
    for tail in tracker.tails:
        for child in tracker.reverse.get(tail, ()):
            if child in tracker.items:
                found.add(child)
    return _hashes(found)


def best_share_hash(ctx) -> str | None:
    best = ctx.node.best_share_hash()
    return '%064x' % best if best is not None else None


def my_share_hashes(ctx) -> list[str]:
    return _hashes(ctx.node.stale_accounting.my_shares)


def my_share_hashes50(ctx) -> list[str]:
    return my_share_hashes(ctx)[:50]


def currency_info(ctx) -> dict[str, Any]:
    parent = ctx.net.PARENT
    return {'symbol': parent.SYMBOL,
            'block_explorer_url_prefix': parent.BLOCK_EXPLORER_URL_PREFIX,
            'address_explorer_url_prefix': parent.ADDRESS_EXPLORER_URL_PREFIX,
            'tx_explorer_url_prefix': parent.TX_EXPLORER_URL_PREFIX,
            # beyond the original: the dashboard explains regtest's figures ("main", "test", "regtest")
            'chain': parent.CHAIN}


def version(ctx) -> str:
    return p2pool.__version__


def log(ctx) -> list[dict[str, Any]]:
    return ctx.service.stat_log.entries() if ctx.service is not None else []


def graph_sources(ctx) -> dict[str, Any]:
    """Sources and views the graphs page can ask for (beyond the original)."""
    return {'sources': {name: {'gauge': kind.gauge, 'multi': kind.multi} for name, kind in SOURCES.items()},
            'views': {name: {'seconds': seconds, 'bins': bins} for name, (seconds, bins) in VIEWS.items()}}


def graph_data(ctx, source, view) -> list[list[Any]]:
    if ctx.service is None:
        raise HttpError(404, 'graph history is not recorded by this node')
    try:
        return ctx.service.history.graph_data(source, view, ctx.clock())
    except UnknownGraph as error:
        raise HttpError(404, str(error)) from None


#: /web/<name> with no arguments
WEB_ENDPOINTS = {
    'log': log,
    'heads': lambda ctx: _hashes(ctx.tracker.heads),
    'verified_heads': lambda ctx: _hashes(ctx.tracker.verified.heads),
    'tails': lambda ctx: _tail_children(ctx.tracker),
    'verified_tails': lambda ctx: _tail_children(ctx.tracker.verified),
    'best_share_hash': best_share_hash,
    'my_share_hashes': my_share_hashes,
    'my_share_hashes50': my_share_hashes50,
    'currency_info': currency_info,
    'version': version,
    'sync_progress': sync_progress,
    'graph_sources': graph_sources,
}

#: /web/<name>/<hash>
WEB_HASH_ENDPOINTS = {
    'share': share_info,
    'payout_address': payout_address,
}
