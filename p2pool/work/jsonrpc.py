"""JSON-RPC object shapes shared by the getwork (HTTP) and Stratum front-ends (worker.md §11).

Requests are `{"id", "method", "params"}` with `params` defaulting to `[]`;
responses always carry `jsonrpc`, `id`, `result` and `error`. Any failure a
front-end wants to report is a JsonRpcError; `parse_request` turns bad input into
one (never into a KeyError or TypeError), so a malformed request always gets a
well-formed error reply.

Error codes: the JSON-RPC 2.0 ones, -32099 for anything else, -12345 for P2Pool's
refusals to hand out work (worker.md §2.1), and the Stratum codes 20-25 that
miners and proxies know (job not found, duplicate, low difficulty, ...).
"""
import json
import math
import random
from typing import Any

from p2pool.util import strict_json

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
UNKNOWN_ERROR = -32099
P2POOL_REFUSAL = -12345

# Stratum's customary submission errors (as used by cgminer, bfgminer and pool software)
STRATUM_OTHER = 20
STRATUM_JOB_NOT_FOUND = 21
STRATUM_DUPLICATE = 22
STRATUM_LOW_DIFFICULTY = 23
STRATUM_UNAUTHORIZED = 24
STRATUM_NOT_SUBSCRIBED = 25


class JsonRpcError(Exception):
    """An error reply: `code`, `message` and optional `data`."""

    def __init__(self, code, message, data=None) -> None:
        super().__init__('%s (code %d)' % (message, code))
        self.code, self.message, self.data = code, message, data

    def to_object(self) -> dict[str, Any]:
        return {'code': self.code, 'message': self.message, 'data': self.data}


def parse_error(detail=None) -> JsonRpcError:
    return JsonRpcError(PARSE_ERROR, 'Parse error', detail)


def method_not_found(method) -> JsonRpcError:
    return JsonRpcError(METHOD_NOT_FOUND, 'Method not found', method)


def invalid_params(detail) -> JsonRpcError:
    return JsonRpcError(INVALID_PARAMS, 'Invalid params', detail)


def decode_json(raw) -> Any:
    """Parsed JSON of `raw` (bytes or text); JsonRpcError(-32700) if it is not JSON."""
    try:
        if isinstance(raw, (bytes, bytearray)):
            raw = bytes(raw).decode('utf-8')
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise parse_error(str(e)[:200]) from None


def parse_request(obj) -> tuple[Any, str, list[Any]]:
    """(id, method, params) of a request object; JsonRpcError(-32600) if it is not one."""
    if not isinstance(obj, dict):
        raise JsonRpcError(INVALID_REQUEST, 'Invalid Request', 'not an object')
    method = obj.get('method')
    if not isinstance(method, str):
        raise JsonRpcError(INVALID_REQUEST, 'Invalid Request', 'method must be a string')
    params = obj.get('params', [])
    if params is None:
        params = []
    if not isinstance(params, list):
        raise JsonRpcError(INVALID_REQUEST, 'Invalid Request', 'params must be a list')
    return _echoable_id(obj.get('id')), method, params


def _echoable_id(request_id):
    """The id to echo back: Python reads `NaN` and `1e999` as floats that strict JSON cannot carry;
    such an id is answered with null, as an id that could not be read."""
    if isinstance(request_id, float) and not math.isfinite(request_id):
        return None
    return request_id


def is_reply(obj) -> bool:
    """Incoming objects with `result` or `error` (and no method) answer our own requests."""
    return isinstance(obj, dict) and 'method' not in obj and ('result' in obj or 'error' in obj)


def result_object(request_id, result) -> dict[str, Any]:
    return {'jsonrpc': '2.0', 'id': request_id, 'result': result, 'error': None}


def error_object(request_id, error) -> dict[str, Any]:
    return {'jsonrpc': '2.0', 'id': request_id, 'result': None, 'error': error.to_object()}


def request_object(method, params, request_id=None) -> dict[str, Any]:
    """A request (Stratum notifications from the node are requests with a random id < 2^30)."""
    if request_id is None:
        request_id = random.randrange(2**30)
    return {'jsonrpc': '2.0', 'method': method, 'params': params, 'id': request_id}


def encode(obj) -> bytes:
    """Compact strict JSON bytes of a reply or request (no trailing newline; non-finite floats as null)."""
    return strict_json.dumps(obj, compact=True).encode('utf-8')


# --- parameter checking ---------------------------------------------------------

def param(params, index, kinds, name, default=None, required=True) -> Any:
    """params[index] if it is of one of `kinds`, else JsonRpcError(-32602) naming `name`.

    bool is never accepted as an int (JSON true is not a number).
    """
    if index >= len(params):
        if required:
            raise invalid_params('missing parameter %d (%s)' % (index + 1, name))
        return default
    value = params[index]
    if isinstance(value, bool) and bool not in kinds:
        raise invalid_params('%s must be %s' % (name, _kind_names(kinds)))
    if not isinstance(value, kinds):
        raise invalid_params('%s must be %s' % (name, _kind_names(kinds)))
    return value


def _kind_names(kinds):
    names = {str: 'a string', int: 'an integer', float: 'a number', list: 'a list',
             dict: 'an object', bool: 'a boolean', type(None): 'null'}
    return ' or '.join(names.get(kind, kind.__name__) for kind in kinds)
