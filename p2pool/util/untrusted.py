"""Text from outside (a peer's sub_version, a miner's username or user agent, a request path) made safe to show.

A log line is one line: a peer that could put a newline into it could forge the
next line ("GOT BLOCK FROM PEER!"), and an escape sequence could rewrite the
console. `shown()` escapes every control and invisible formatting character the
way Python's repr does (`\\n`, `\\x1b`, `\\u202e`) and caps the length, so that the
text stays on one line, visible and short. Backslashes are doubled, so that an
escaped newline cannot be mistaken for the two characters a peer typed.
"""
import re

DEFAULT_LIMIT = 200
ELLIPSIS = '...'

# C0 and C1 controls, DEL and the invisible Unicode formatting characters that move or hide text:
# soft hyphen, zero-width and directional marks, line/paragraph separators, isolates, BOM, surrogates.
_CONTROL_CLASS = ('\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u061c\\u180e\\u200b-\\u200f\\u2028-\\u202e'
                  '\\u2060-\\u206f\\ufeff\\ufff9-\\ufffb\\ud800-\\udfff')
_UNSAFE = re.compile('[\\\\' + _CONTROL_CLASS + ']')     # and the backslash
_CONTROLS = re.compile('[' + _CONTROL_CLASS + ']')
_NAMED = {'\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\'}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return '\\x%02x' % code if code < 0x100 else '\\u%04x' % code


def shown(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """`value` as one safe line of at most about `limit` characters (bytes are decoded as UTF-8)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).decode('utf-8', 'replace')
    elif isinstance(value, str):
        text = value
    else:
        text = str(value)
    # cut before escaping too, so that a megabyte of input costs no more than `limit` characters
    cut = len(text) > limit
    text = _UNSAFE.sub(_escape, text[:limit + 1])
    if cut or len(text) > limit:
        return text[:limit] + ELLIPSIS
    return text


def escape_controls(text: str) -> str:
    """`text` with its control characters escaped, backslashes kept and nothing cut: the log
    formatter's backstop for a whole message, whose own text may hold backslashes (paths)."""
    return _CONTROLS.sub(_escape, text)
