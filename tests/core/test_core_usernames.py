"""totpadmin.core.usernames: tenant and name from a Carbon username, as MultitenantUtils splits it."""

from __future__ import annotations

import pytest

from totpadmin.core.errors import InvalidUsername
from totpadmin.core.usernames import MAX_USERNAME_LENGTH, SUPER_TENANT, UserRef, parse_username


@pytest.mark.parametrize(
    "raw, tenant, name",
    [
        ("bob", "carbon.super", "bob"),
        ("  bob  ", "carbon.super", "bob"),
        ("bob@abc.com", "abc.com", "bob"),
        ("bob@ABC.com", "abc.com", "bob"),  # tenant lower-cased
        ("Bob@abc.com", "abc.com", "Bob"),  # the name keeps its case
        ("bob@gmail.com@abc.com", "abc.com", "bob@gmail.com"),  # the last '@' splits
        ("SECONDARY/bob", "carbon.super", "SECONDARY/bob"),
        ("SECONDARY/bob@abc.com", "abc.com", "SECONDARY/bob"),
        ("bob@carbon.super", "carbon.super", "bob"),
    ],
)
def test_parse_default_mode(raw, tenant, name):
    assert parse_username(raw) == UserRef(tenant=tenant, name=name)


@pytest.mark.parametrize(
    "raw, tenant, name",
    [
        ("bob", "carbon.super", "bob"),
        ("bob@gmail.com", "carbon.super", "bob@gmail.com"),
        ("bob@gmail.com@abc.com", "abc.com", "bob@gmail.com"),
        ("bob@gmail.com@ABC.COM", "abc.com", "bob@gmail.com"),
        ("bob@gmail.com@carbon.super", "carbon.super", "bob@gmail.com"),
        ("bob@carbon.super", "carbon.super", "bob"),
        ("SECONDARY/bob@gmail.com@abc.com", "abc.com", "SECONDARY/bob@gmail.com"),
    ],
)
def test_parse_email_usernames_mode(raw, tenant, name):
    assert parse_username(raw, email_usernames=True) == UserRef(tenant=tenant, name=name)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "@abc.com",
        "bob@",
        "bo\x00b",
        "bob\x01",
        "bo\x1bb",
        "bo\nb",
        "bob\x7f",
        "bob\n",
        "\tbob",
        "bob\x1f",
        "b" * (MAX_USERNAME_LENGTH + 1),
        "bob@" + "a" * MAX_USERNAME_LENGTH,
    ],
)
def test_invalid_usernames_raise(raw):
    with pytest.raises(InvalidUsername):
        parse_username(raw)


@pytest.mark.parametrize("raw", [None, "", "bob@gmail.com@", "bob@gmail.com\x00@abc.com"])
def test_invalid_email_usernames_raise(raw):
    with pytest.raises(InvalidUsername):
        parse_username(raw, email_usernames=True)


def test_longest_allowed_username():
    name = "b" * MAX_USERNAME_LENGTH
    assert parse_username(name) == UserRef(SUPER_TENANT, name)


def test_invalid_username_message_names_no_control_characters():
    with pytest.raises(InvalidUsername) as info:
        parse_username("bo\x00b")
    assert "\x00" not in str(info.value)


@pytest.mark.parametrize(
    "ref, qualified",
    [
        (UserRef("carbon.super", "bob"), "bob"),
        (UserRef("abc.com", "bob"), "bob@abc.com"),
        (UserRef("abc.com", "SECONDARY/bob"), "SECONDARY/bob@abc.com"),
        (UserRef("carbon.super", "bob@gmail.com"), "bob@gmail.com"),
        (UserRef("abc.com", "bob@gmail.com"), "bob@gmail.com@abc.com"),
    ],
)
def test_qualified(ref, qualified):
    assert ref.qualified == qualified


@pytest.mark.parametrize("raw", ["bob", "bob@abc.com", "SECONDARY/bob@abc.com"])
def test_qualified_round_trips(raw):
    assert parse_username(raw).qualified == raw


def test_userref_is_immutable_and_hashable():
    ref = UserRef("abc.com", "bob")
    with pytest.raises(AttributeError):
        ref.name = "eve"  # type: ignore[misc]
    assert {ref, UserRef("abc.com", "bob")} == {ref}
