"""protocols/json/body.py and form_body.py: hostile bodies get a clear BadJson/BadForm, never a crash."""

from __future__ import annotations

import pytest

from totpadmin.protocols.json.body import MAX_DEPTH, BadJson, parse_object
from totpadmin.protocols.json.form_body import BadForm, parse_form


def test_a_plain_object_is_read():
    assert parse_object(b'{"userName": "alice", "n": 3, "x": 1.5, "ok": true, "l": [1, {"a": null}]}') == {
        "userName": "alice", "n": 3, "x": 1.5, "ok": True, "l": [1, {"a": None}]}


def test_a_surrogate_pair_escape_is_one_character_and_is_read():
    assert parse_object(b'{"d": "\\ud83d\\ude00 \xc3\xa9"}') == {"d": "\U0001F600 \u00e9"}


@pytest.mark.parametrize("body, words", [
    (b"[1, 2]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b"", "not valid JSON"),
    (b"{", "not valid JSON"),
    (b'{"a": 1,}', "not valid JSON"),
    (b'{"a": "\xff"}', "not UTF-8"),
    (b'\xef\xbb\xbf{"a": 1}', "byte-order mark"),
    ('{"a": "é"}'.encode("utf-16"), "not UTF-8"),
    (b'{"a": 1, "a": 2}', "more than once"),
    (b'{"a": {"b": 1, "b": 1}}', "more than once"),
    (b'{"a": NaN}', "NaN is not JSON"),
    (b'{"a": Infinity}', "Infinity is not JSON"),
    (b'{"a": 1e999999}', "out of range"),
    (b'{"a": ' + b"9" * 4000 + b"}", "digits"),
    (b'{"a": -' + b"9" * 21 + b"}", "digits"),
    (b'{"a": "' + b"x" * 5000 + b'"}', "longer than 4096"),
    (b'{"' + b"k" * 5000 + b'": 1}', "longer than 4096"),
    (b'{"a": [["' + b"x" * 5000 + b'"]]}', "longer than 4096"),
    (b'{"a": "' + b"x" * (1 << 20) + b'"}', "longer than 65536 bytes"),
    (b'{"a": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}", "nests more than"),
    (b"[" * 100_000 + b"]" * 100_000, "longer than"),
    (b'{"a": ' + b"[" * 30_000, "nests more than"),
    (b'{"a": "\\ud800"}', "not Unicode text"),  # a lone surrogate: no UTF-8 store can hold it
    (b'{"a": ["x\\udfffy"]}', "not Unicode text"),
    (b'{"\\udbff": 1}', "not Unicode text"),
])
def test_hostile_json_is_refused_with_a_clear_message(body, words):
    with pytest.raises(BadJson) as info:
        parse_object(body)
    assert words in str(info.value)
    assert len(str(info.value)) < 200


def test_brackets_inside_strings_do_not_count_as_depth():
    text = '{"a": "' + "[{" * 100 + '", "b": [[1]]}'
    assert parse_object(text.encode())["b"] == [[1]]


def test_a_form_is_read_and_repeats_are_refused():
    assert parse_form(b"grant_type=client_credentials&scope=mfa%3Adevices+mfa%3Aauthenticate") == {
        "grant_type": "client_credentials", "scope": "mfa:devices mfa:authenticate"}
    for body, words in [(b"a=1&a=2", "more than once"), (b"a=%ff", "not URL-encoded UTF-8"),
                        (b"a=\xc3\xa9", "not URL-encoded UTF-8"), (b"&" * 20, "fields"),
                        (b"a=" + b"%41" * 1100, "escapes"), (b"a=" + b"b" * 9000, "longer than 8192"),
                        (b"a=" + b"b" * 2000, "longer than 1024")]:
        with pytest.raises(BadForm) as info:
            parse_form(body)
        assert words in str(info.value)
