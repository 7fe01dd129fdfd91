"""totpadmin.core.client_address: the client's address behind trusted proxies (X-Forwarded-For and
RFC 7239 Forwarded), and what failed logins are counted under."""

from __future__ import annotations

import ipaddress

import pytest

from totpadmin.core.client_address import FORWARDED, X_FORWARDED_FOR, ClientAddresses, throttle_key

PROXIES = tuple(ipaddress.ip_network(n) for n in ("127.0.0.1", "10.0.0.0/8", "2001:db8:1::/48"))
XFF = ClientAddresses(PROXIES, X_FORWARDED_FOR)
FWD = ClientAddresses(PROXIES, FORWARDED)


@pytest.mark.parametrize("lines, client", [
    (["198.51.100.7"], "198.51.100.7"),
    # The client's own entries are on the left: never believed.
    (["203.0.113.9, 198.51.100.7"], "198.51.100.7"),
    (["127.0.0.1, 198.51.100.7"], "198.51.100.7"),
    (["203.0.113.9", "198.51.100.7"], "198.51.100.7"),  # one line per proxy: still read from the right
    # A chain of trusted proxies is walked through to the first untrusted address.
    (["203.0.113.9, 198.51.100.7, 10.1.1.1, 10.2.2.2"], "198.51.100.7"),
    # Nothing untrusted: the leftmost trusted hop is where the request started.
    (["10.1.1.1, 10.2.2.2"], "10.1.1.1"),
    # Not an address: the walk stops at the nearest trusted hop.
    (["garbage"], "127.0.0.1"),
    (["198.51.100.7, garbage, 10.1.1.1"], "10.1.1.1"),
    (["unknown"], "127.0.0.1"),
    ([""], "127.0.0.1"),
    ([" , ,"], "127.0.0.1"),
    (["198.51.100.7 10.1.1.1"], "127.0.0.1"),
    (["300.1.1.1"], "127.0.0.1"),
    (["01.2.3.4"], "127.0.0.1"),
    (["198.51.100.7/24"], "127.0.0.1"),
    (["é"], "127.0.0.1"),
    # Ports and IPv6, bare or bracketed; addresses come out in their canonical form.
    (["198.51.100.7:4711"], "198.51.100.7"),
    (["2001:DB8:CAFE::17"], "2001:db8:cafe::17"),
    (["[2001:db8:cafe::17]:4711"], "2001:db8:cafe::17"),
    (["[2001:db8:cafe::17"], "127.0.0.1"),
    (["[198.51.100.7]"], "127.0.0.1"),
    (["::ffff:198.51.100.7"], "198.51.100.7"),
    (["198.51.100.7, 2001:db8:1::5"], "198.51.100.7"),
])
def test_x_forwarded_for(lines, client):
    assert XFF.client("127.0.0.1", lines) == client


@pytest.mark.parametrize("lines, client", [
    # RFC 7239 section 4 and 7.x examples
    (['for="_gazonk"'], "127.0.0.1"),
    (['For="[2001:db8:cafe::17]:4711"'], "2001:db8:cafe::17"),
    (["for=192.0.2.60;proto=http;by=203.0.113.43"], "192.0.2.60"),
    (["for=192.0.2.43, for=198.51.100.17"], "198.51.100.17"),
    (["for=192.0.2.43", "for=198.51.100.17"], "198.51.100.17"),
    (['for=192.0.2.43, for="[2001:db8:cafe::17]"'], "2001:db8:cafe::17"),
    (["for=unknown"], "127.0.0.1"),
    (["for=192.0.2.43, for=unknown"], "127.0.0.1"),
    (['for="192.0.2.43:47011"'], "192.0.2.43"),
    (['for="192.0.2.43:_port"'], "192.0.2.43"),
    (["proto=https;for=192.0.2.43;host=example.org"], "192.0.2.43"),
    (['for="\\192.0.2.43"'], "192.0.2.43"),  # a quoted-pair
    # Trusted hops are skipped; spoofed entries on the left are not believed.
    (["for=203.0.113.9, for=192.0.2.43, for=10.0.0.2"], "192.0.2.43"),
    (["for=192.0.2.43, for=unknown, for=10.0.0.2"], "10.0.0.2"),
    # Malformed: stops at the nearest trusted hop.
    (["for=2001:db8::1"], "127.0.0.1"),  # IPv6 must be quoted and bracketed
    (['for="2001:db8::1"'], "127.0.0.1"),
    (["for=192.0.2.43;for=192.0.2.44"], "127.0.0.1"),  # one for= per element
    (["proto=https"], "127.0.0.1"),  # no for=
    (["for"], "127.0.0.1"),
    (["for=\"192.0.2.43"], "127.0.0.1"),
    (["by=10.0.0.1;for=192.0.2.43 x"], "127.0.0.1"),
    (["192.0.2.43"], "127.0.0.1"),
    # A client's broken header cannot hide the entry its proxy appended.
    (['for="', " for=192.0.2.43"], "192.0.2.43"),
    (['for="[2001:db8::1', ' for=192.0.2.43'], "192.0.2.43"),
    (['for=";, for=192.0.2.43'], "192.0.2.43"),
])
def test_forwarded(lines, client):
    assert FWD.client("127.0.0.1", lines) == client


def test_the_header_is_ignored_from_anyone_but_a_trusted_proxy():
    assert XFF.client("198.51.100.7", ["203.0.113.9"]) == "198.51.100.7"
    assert FWD.client("198.51.100.7", ["for=203.0.113.9"]) == "198.51.100.7"
    assert ClientAddresses().client("127.0.0.1", ["203.0.113.9"]) == "127.0.0.1"  # none configured


def test_without_the_header_the_peer_is_the_client():
    assert XFF.client("127.0.0.1", None) == "127.0.0.1"
    assert XFF.client("127.0.0.1", []) == "127.0.0.1"
    assert XFF.client("10.9.9.9", None) == "10.9.9.9"


def test_trusted_ipv6_proxy_and_peer_forms():
    assert XFF.client("2001:db8:1::80", ["198.51.100.7"]) == "198.51.100.7"
    assert XFF.client("::ffff:127.0.0.1", ["198.51.100.7"]) == "198.51.100.7"  # a dual-stack socket
    assert XFF.client("2001:db8:2::80", ["198.51.100.7"]) == "2001:db8:2::80"  # outside the trusted /48
    assert XFF.client("", ["198.51.100.7"]) == ""  # no IP peer: nothing to look up


def test_a_long_header_is_walked_in_one_pass():
    spoofed = ", ".join(["10.0.0.1"] * 4000)
    assert XFF.client("127.0.0.1", [spoofed + ", 198.51.100.7"]) == "198.51.100.7"
    assert FWD.client("127.0.0.1", ['for="' * 4000 + ", for=198.51.100.7"]) == "198.51.100.7"


def test_the_header_must_be_one_of_the_two():
    with pytest.raises(ValueError):
        ClientAddresses(PROXIES, "X-Real-IP")


def test_ipv6_clients_are_throttled_by_their_64():
    assert throttle_key("2001:db8:cafe:17::1") == throttle_key("2001:db8:cafe:17:ffff::2") == "2001:db8:cafe:17::/64"
    assert throttle_key("2001:db8:cafe:18::1") != throttle_key("2001:db8:cafe:17::1")
    assert throttle_key("198.51.100.7") == "198.51.100.7"
    assert throttle_key("") == ""
