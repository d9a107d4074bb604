"""JSON that strict parsers accept: Python's json writes NaN and Infinity, which are not JSON.

A request may carry them (Python's parser reads `NaN` and `1e999`), and what is echoed
back, such as a JSON-RPC id, must not carry them on; non-finite floats become null.
"""
import json
import math
from typing import Any


def finite_or_none(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, recursively through lists and dicts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def dumps(value: Any, compact: bool = False) -> str:
    """Strict JSON text of `value` (non-finite floats as null)."""
    separators = (',', ':') if compact else None
    return json.dumps(finite_or_none(value), allow_nan=False, separators=separators)
