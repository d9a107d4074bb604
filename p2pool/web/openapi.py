"""A machine-readable description (OpenAPI 3.0) of the JSON API, served at `/openapi.json`.

The table below is the single list of documented endpoints; tests check that every
path it names is served and that every served endpoint is in it.
"""
import p2pool
from typing import Any

__all__ = ['description', 'ENDPOINTS', 'PATH']

PATH = '/openapi.json'

_NUMBER = {'type': 'number'}
_NULLABLE_NUMBER = {'type': 'number', 'nullable': True}
_STRING = {'type': 'string'}
_HASH = {'type': 'string', 'pattern': '^[0-9a-f]{64}$'}
_HASHES = {'type': 'array', 'items': _HASH}
_NUMBER_MAP = {'type': 'object', 'additionalProperties': _NUMBER}
_NULLABLE_NUMBER_MAP = {'type': 'object', 'additionalProperties': _NULLABLE_NUMBER}
_OBJECT = {'type': 'object'}
_NULLABLE_OBJECT = {'type': 'object', 'nullable': True}
_BIN = {'type': 'array', 'description': '[center_time, value, width, default]', 'minItems': 4, 'maxItems': 4,
        'items': {}}

_HASH_PARAMETER = {'name': 'hash', 'in': 'path', 'required': True, 'schema': _HASH,
                   'description': 'share hash, 64 hex digits'}

#: path -> (summary, response schema, parameters, content type)
ENDPOINTS = {
    '/rate': ('Pool hash rate (H/s) over the last min(height, 720) shares, stales included', _NUMBER),
    '/difficulty': ('Minimum share difficulty of the pool', _NUMBER),
    '/users': ('Fraction of the PPLNS weight per address over the last 720 shares', _NUMBER_MAP),
    '/user_stales': ('Stale proportion per payout address over the whole chain', _NUMBER_MAP),
    '/fee': ('Worker fee of this node in percent', _NUMBER),
    '/current_payouts': ('Expected payout per address (coins) if a block were found now', _NUMBER_MAP),
    '/patron_sendmany/{total}': ('Split TOTAL coins among the expected payees (sendmany JSON, text/plain)',
                                 _NUMBER_MAP, ['total'], 'text/plain'),
    '/patron_sendmany/{total}/{trunc}': ('As above; payees below TRUNC coins (default 0.01) are pooled',
                                         _NUMBER_MAP, ['total', 'trunc'], 'text/plain'),
    '/global_stats': ('Pool rate, stale proportion, difficulties; null below height 10', _NULLABLE_OBJECT),
    '/local_stats': ('This node: own shares, rates, efficiency, peers, warnings; null below height 10',
                     _NULLABLE_OBJECT),
    '/peer_addresses': ('Space-separated addresses of the connected peers', _STRING),
    '/peer_txpool_sizes': ('Bytes of transactions each peer asked us to remember', _NUMBER_MAP),
    '/pings': ('Round trip (ms) per peer, null when unknown', _NULLABLE_NUMBER_MAP),
    '/peer_versions': ('Sub-version text per peer', {'type': 'object', 'additionalProperties': _STRING}),
    '/payout_addr': ('Payout address of this node', {'type': 'string', 'nullable': True}),
    '/payout_addrs': ('Dynamic payout address pool', {'type': 'array', 'items': _STRING}),
    '/recent_blocks': ('Blocks found in the last CHAIN_LENGTH shares, newest first',
                       {'type': 'array', 'items': {'type': 'object', 'properties': {
                           'ts': _NUMBER, 'hash': _HASH, 'number': _NULLABLE_NUMBER, 'share': _HASH,
                           'state': {'type': 'string', 'nullable': True,
                                     'description': 'immature, mature or orphaned at bitcoind; null if unknown'}}}}),
    '/uptime': ('Seconds since the node started', _NUMBER),
    '/stale_rates': ('Pool rate (H/s) of all shares ("good") and of orphan/doa announcements', _NUMBER_MAP),
    '/metrics': ('Prometheus text exposition of the node\'s numbers', _STRING, [], 'text/plain'),
    '/web/log': ('Stat entries every 5 minutes over the last 24 hours', {'type': 'array', 'items': _OBJECT}),
    '/web/payouts': ('Blocks of the pool whose coinbase pays this node\'s payees, newest first: amounts per payee '
                     '(coins), confirmations and state at bitcoind (immature, mature after 100 confirmations, '
                     'orphaned)',
                     {'type': 'array', 'items': {'type': 'object', 'properties': {
                         'height': _NUMBER, 'hash': _HASH, 'time': _NUMBER, 'share': _HASH,
                         'payouts': _NUMBER_MAP, 'total': _NUMBER, 'confirmations': _NUMBER,
                         'state': {'type': 'string', 'enum': ['immature', 'mature', 'orphaned']}}}}),
    '/web/share/{hash}': ('One share: links, local info, share_data, block header and gentx; null if unknown',
                          _NULLABLE_OBJECT, ['hash']),
    '/web/payout_address/{hash}': ('Payout address of a share', _STRING, ['hash']),
    '/web/share_data/{hash}': ('Wire bytes of a share (VarInt type, VarStr contents); empty if unknown', _STRING,
                               ['hash'],
                               'application/octet-stream'),
    '/web/heads': ('Heads of the share forest', _HASHES),
    '/web/verified_heads': ('Heads of the verified subset', _HASHES),
    '/web/tails': ('Oldest known share of every chain', _HASHES),
    '/web/verified_tails': ('Oldest verified share of every verified chain', _HASHES),
    '/web/best_share_hash': ('The best share', {'type': 'string', 'nullable': True}),
    '/web/my_share_hashes': ('Shares found by this node since it started', _HASHES),
    '/web/my_share_hashes50': ('The first 50 of them', _HASHES),
    '/web/currency_info': ('Symbol, block explorer URL prefixes and chain name (main, test, regtest) of the '
                           'parent chain', _OBJECT),
    '/web/version': ('Software version', _STRING),
    '/web/sync_progress': ('Shares downloaded and verified of the CHAIN_LENGTH needed', _OBJECT),
    '/web/warnings': ('Active warnings (as in /local_stats)', {'type': 'array', 'items': _STRING}),
    '/web/bitcoinds': ('Each bitcoind: name, endpoint, status (active, standby, stale, down, unchecked), tip '
                       'height, template age, RPC errors in a row, last error', {'type': 'array', 'items': _OBJECT}),
    '/web/graph_sources': ('Graph sources (rate or gauge, single or multi-valued) and views', _OBJECT),
    '/web/graph_data/{source}/{view}': ('Binned history, newest bin first', {'type': 'array', 'items': _BIN},
                                        ['source', 'view']),
    '/openapi.json': ('This description', _OBJECT),
}

_PARAMETERS = {
    'hash': _HASH_PARAMETER,
    'total': {'name': 'total', 'in': 'path', 'required': True, 'schema': {'type': 'string'},
              'description': 'coins to split, a non-negative decimal number'},
    'trunc': {'name': 'trunc', 'in': 'path', 'required': True, 'schema': {'type': 'string'},
              'description': 'payees below this many coins are pooled into one lottery prize'},
    'source': {'name': 'source', 'in': 'path', 'required': True, 'schema': {'type': 'string'},
               'description': 'a graph source of /web/graph_sources'},
    'view': {'name': 'view', 'in': 'path', 'required': True,
             'schema': {'type': 'string', 'enum': ['last_hour', 'last_day', 'last_week', 'last_month', 'last_year']}},
}

_ERRORS = {
    '405': {'description': 'a method other than GET or HEAD (one-line text reason)',
            'content': {'text/plain': {'schema': _STRING}}},
    '400': {'description': 'bad argument (one-line text reason)', 'content': {'text/plain': {'schema': _STRING}}},
    '404': {'description': 'unknown endpoint, source or view, or unknown share for /web/payout_address '
                           '(one-line text reason)',
            'content': {'text/plain': {'schema': _STRING}}},
    '503': {'description': 'not available yet: no best share or no block template',
            'content': {'text/plain': {'schema': _STRING}}},
}


def description() -> dict[str, Any]:
    """The OpenAPI document (a dict)."""
    paths: dict[str, Any] = {}
    spec: Any
    for path, spec in ENDPOINTS.items():
        summary, schema = spec[0], spec[1]
        parameters = spec[2] if len(spec) > 2 else []
        content_type = spec[3] if len(spec) > 3 else 'application/json'
        responses: dict[str, Any] = {'200': {'description': summary, 'content': {content_type: {'schema': schema}}}}
        responses.update(_ERRORS)
        operation: dict[str, Any] = {'summary': summary, 'responses': responses}
        if parameters:
            operation['parameters'] = [_PARAMETERS[name] for name in parameters]
        paths[path] = {'get': operation}
    return {
        'openapi': '3.0.3',
        'info': {'title': 'p2pool node API', 'version': p2pool.__version__,
                 'description': 'JSON endpoints of the worker port (the original P2Pool shapes) and additions.'},
        'paths': paths,
    }
