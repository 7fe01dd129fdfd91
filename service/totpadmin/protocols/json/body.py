"""Strict parsing of a JSON request body, within limits no real client comes near, so that no body costs
the server more than a small multiple of a normal call and none reaches a handler half-understood.

- UTF-8 only (RFC 8259 8.1), no byte-order mark;
- at most ``MAX_BYTES`` bytes and ``MAX_DEPTH`` levels of nesting: the depth is counted on the text
  with its strings removed (a regular expression, C speed) before ``json.loads`` runs, whose C scanner
  would otherwise recurse into 100,000 brackets;
- a duplicate key is refused (RFC 8259 4: "names SHOULD be unique"; which one wins differs between
  parsers, so a proxy and this service could read different requests);
- numbers: integers of at most ``MAX_DIGITS`` digits (``int()`` of a 10^4000-digit string is quadratic),
  finite floats of bounded length, no NaN or Infinity;
- strings (keys too) at most ``MAX_STRING`` characters, and Unicode text: a ``\\ud800``-style escape
  of a lone surrogate (RFC 8259 8.2: "unpredictable") is refused, as no UTF-8 database or log can hold it;
- the top level is an object.
Each breach is a :class:`BadJson` whose message says what was wrong, never echoing the body.
"""

from __future__ import annotations

import json
import math
import re

MAX_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_DIGITS = 20
MAX_STRING = 4096


class BadJson(ValueError):
    """A body this service does not read; ``str()`` is a message for the client."""


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_object(body: bytes) -> dict:
    """The JSON object of ``body``; :class:`BadJson` for anything else."""
    if len(body) > MAX_BYTES:
        raise BadJson(f"The body is longer than {MAX_BYTES} bytes")
    if body.startswith(b"\xef\xbb\xbf"):
        raise BadJson("The body starts with a byte-order mark")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson("The body is not UTF-8") from None
    _check_depth(text)
    try:
        document = json.loads(text, object_pairs_hook=_object, parse_int=_int, parse_float=_float,
                              parse_constant=_constant)
    except BadJson:
        raise
    except (ValueError, RecursionError) as exc:
        raise BadJson(f"The body is not valid JSON: {_where(exc)}") from None
    if not isinstance(document, dict):
        raise BadJson("The body must be a JSON object")
    _check_strings(document)
    return document


def _check_strings(document: dict) -> None:
    """Every string value within ``MAX_STRING`` (keys were checked as they were read)."""
    pending: list = [document]
    while pending:
        node = pending.pop()
        for value in node.values() if isinstance(node, dict) else node:
            if isinstance(value, str):
                _check_string(value)
            elif isinstance(value, (dict, list)):
                pending.append(value)


def _check_depth(text: str) -> None:
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # the common case: too few brackets to nest too deep
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        if bracket.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise BadJson(f"The body nests more than {MAX_DEPTH} levels deep")
        else:
            depth -= 1


def _object(pairs: list[tuple[str, object]]) -> dict:
    document = {}
    for key, value in pairs:
        _check_string(key)
        if key in document:
            raise BadJson(f"The key {key[:64]!r} appears more than once in an object")
        document[key] = value
    return document


def _check_string(value: str) -> None:
    if len(value) > MAX_STRING:
        raise BadJson(f"A string in the body is longer than {MAX_STRING} characters")
    if not value.isascii() and _SURROGATE.search(value):
        raise BadJson("A string in the body is not Unicode text (a lone surrogate escape)")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise BadJson(f"A number in the body has more than {MAX_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    if len(text) > 2 * MAX_DIGITS:
        raise BadJson(f"A number in the body is longer than {2 * MAX_DIGITS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise BadJson("A number in the body is out of range")
    return value


def _constant(text: str) -> None:
    raise BadJson(f"{text} is not JSON")


def _where(exc: Exception) -> str:
    """json's message without the document (it holds only a position: line and column)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "too deeply nested" if isinstance(exc, RecursionError) else "malformed"
