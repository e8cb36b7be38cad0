"""JSON decoding that refuses what Python's json module accepts but no database column can hold. Pure Python.

Python reads `NaN`, `Infinity` and `-Infinity` (not JSON at all), turns `1e400` into infinity, and decodes the
escapes `"\\ud800"` into a str that can't be encoded as UTF-8 and `"\\u0000"` into a NUL that PostgreSQL refuses
(both valid JSON). Each would fail later, deep inside a database write, as a server error; here it is a ValueError
that says what to change — or, for logged traces (`loads(..., replace_unstorable_text=True)`), where refusing a batch
would lose it (OTLP exporters don't resend after a 400), such text is kept with U+FFFD in place of what can't be
stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Valid JSON text no column stores: NUL (PostgreSQL refuses it in text and jsonb) and half of a UTF-16 surrogate
# pair (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# In the JSON text, what can decode to such text: a \u0000 or surrogate escape, or a raw NUL. Without any, the
# decoded value isn't walked (8 ms for a 500 KiB body, four times the decoding). Harmless false alarms, e.g. an
# escaped backslash before "u0000" or a proper surrogate pair, only cost the walk.
_SUSPECT_TEXT = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\x00")
_SUSPECT_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\x00")


class JSONError(ValueError):
    pass


class UnstorableText(JSONError):
    """Valid JSON holding text no database stores."""


def body_error(error: ValueError) -> str:
    """What to tell a client whose request body `loads` refused."""
    if isinstance(error, UnstorableText):
        return f"Body can't be stored: {error}."
    return f"Body is not valid JSON: {error}."


def _refuse_constant(name: str) -> Any:
    raise JSONError(f"{name} is not a JSON number; send null or a string instead")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise JSONError(f"the number {text[:40]} is too large for a 64-bit float; send it as a string")
    return number


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _what(text: str) -> str:
    if "\x00" in text:
        return "the NUL character (\\u0000), which can't be stored; remove it"
    return "a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which isn't text; send whole characters"


def unstorable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """(path, problem) for the first string or key in `value` (decoded JSON: dicts, lists, scalars) that holds text
    no database stores; None if there is none. Walks iteratively: the depth is only bounded by the decoder."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return where, f"holds {_what(item)}"
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return where, f"has a key that holds {_what(key)}"
                stack.append((_path(where, key), child))
        elif isinstance(item, (list, tuple)):
            stack.extend((_path(where, index), child) for index, child in enumerate(item))
    return None


def _unstorable(text: str) -> bool:
    if text.isascii():  # O(1) in CPython; ASCII holds no surrogate, and a NUL is a memchr away
        return "\x00" in text
    return _UNSTORABLE.search(text) is not None


def _clean(text: str) -> str:
    return _UNSTORABLE.sub(REPLACEMENT, text) if _unstorable(text) else text


def replace_unstorable(value: Any) -> Any:
    """`value` (decoded JSON or plain values built from protobuf) with U+FFFD for each NUL or lone surrogate in
    its strings and keys. Containers are changed in place; walks iteratively, like unstorable_text."""
    if isinstance(value, str):
        return _clean(value)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if any(isinstance(key, str) and _unstorable(key) for key in item):
                pairs = [(_clean(key) if isinstance(key, str) else key, child) for key, child in item.items()]
                item.clear()
                item.update(pairs)
            for key, child in item.items():
                if isinstance(child, str):
                    item[key] = _clean(child)
                elif isinstance(child, (dict, list)):
                    stack.append(child)
        elif isinstance(item, list):
            for index, child in enumerate(item):
                if isinstance(child, str):
                    item[index] = _clean(child)
                elif isinstance(child, (dict, list)):
                    stack.append(child)
    return value


# One decoder for every call: json.loads with hooks builds a new one each time (a quarter of the time OTLP
# protobuf decoding spent on its JSON-encoded attributes).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def _may_hold_unstorable(data: str | bytes) -> bool:
    """Whether JSON text could decode to a NUL or a lone surrogate. Two substring searches (memchr speed) settle it
    for most bodies; only one with \\u escapes pays for the regular expression."""
    escape, nul, suspect = ("\\u", "\x00", _SUSPECT_TEXT) if isinstance(data, str) else (b"\\u", b"\x00", _SUSPECT_BYTES)
    if nul in data:
        return True
    return escape in data and suspect.search(data) is not None


def loads(data: str | bytes, *, replace_unstorable_text: bool = False) -> Any:
    """Like json.loads, but a JSONError (a ValueError) for NaN/Infinity, numbers beyond a 64-bit float and nesting
    too deep to decode; and for NUL characters and lone surrogates, unless `replace_unstorable_text` (then they
    become U+FFFD)."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode(json.detect_encoding(data), "surrogatepass")  # as json.loads does
    try:
        value = _DECODER.decode(data)
    except RecursionError:
        raise JSONError("it is nested too deeply") from None
    if not _may_hold_unstorable(data):
        return value
    if replace_unstorable_text:
        return replace_unstorable(value)
    problem = unstorable_text(value)
    if problem is not None:
        where, what = problem
        raise UnstorableText(f"{where or 'the body'} {what}")
    return value
