"""The client's address when requests come through trusted reverse proxies.

A proxy that the configuration trusts (``trustedProxies``) reports the address it received the request
from in one header, ``X-Forwarded-For`` or ``Forwarded`` (RFC 7239, its ``for=`` parameter), by adding
an entry on the right of whatever the client sent. So the chain is read from the right: entries that are
trusted proxies are skipped, and the first one that is not is the client. Entries further left were
written by the client and are never believed. From a peer that is not a trusted proxy the header is
ignored altogether.

Only one header is read, the one the proxies write (``trustedProxyHeader``): a proxy passes the other on
untouched, so the client would control it entirely.

An entry that is not an address (``unknown``, an obfuscated ``_name``, a port-less mess, garbage) ends the
walk: the client is then the nearest hop known for sure, a trusted proxy. Entries are split at commas
without regard to quoting: no address contains one, and a quoted comma in some other parameter only makes
the walk stop early at a trusted hop, never at an entry the client wrote.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable, Sequence, Union

from ..config.settings import FORWARDING_HEADERS, Network

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
X_FORWARDED_FOR, FORWARDED = FORWARDING_HEADERS

# RFC 7239 section 4: forwarded-pair = token "=" value; value = token / quoted-string (RFC 7230)
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PAIR = re.compile(rf"\s*({_TOKEN})=({_TOKEN}|{_QUOTED})\s*")
_PORT = re.compile(r"\d{1,5}|_[0-9A-Za-z._-]+")  # RFC 7239 6.: node-port = port / obfport
IPV6_PREFIX = 64  # what one subscriber gets: IPv6 clients are throttled by their /64 (see throttle_key)


class ClientAddresses:
    """Finds a request's client address from its TCP peer and the forwarding header."""

    def __init__(self, trusted: Iterable[Network] = (), header: str = X_FORWARDED_FOR):
        if header not in FORWARDING_HEADERS:
            raise ValueError(f"header must be one of {', '.join(FORWARDING_HEADERS)}")
        self._trusted = tuple(trusted)
        self.header = header
        self._entry = _xff_entry if header == X_FORWARDED_FOR else _forwarded_entry

    @property
    def enabled(self) -> bool:
        return bool(self._trusted)

    def trusts(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)

    def client(self, peer: str, header_values: Sequence[str] | None) -> str:
        """The client's address: ``peer`` itself unless it is a trusted proxy, and then the rightmost
        address of the header's chain that is not one (``header_values``: the header's lines, in order)."""
        if not self._trusted:
            return peer
        nearest = _address(peer)
        if nearest is None:
            return peer  # not an IP peer (e.g. a UNIX socket): nothing to look up
        if not header_values or not self.trusts(nearest):
            return str(nearest)
        for raw in reversed(",".join(header_values).split(",")):
            hop = self._entry(raw)
            if hop is None:
                break  # not an address: the client is hidden behind the hop we trust
            if not self.trusts(hop):
                return str(hop)
            nearest = hop
        return str(nearest)


def throttle_key(address: str) -> str:
    """What failed logins are counted under: the address, but for IPv6 its /64, which one subscriber
    usually holds whole (counting single IPv6 addresses would give an attacker 2**64 fresh ones)."""
    ip = _address(address) if ":" in address else None
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return address


def _address(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:192.0.2.1 is 192.0.2.1 (a dual-stack socket's IPv4 peer)
    return ip


def _node(text: str, *, bare_ipv6: bool) -> IPAddress | None:
    """An address from ``192.0.2.1``, ``192.0.2.1:80``, ``[2001:db8::1]``, ``[2001:db8::1]:80`` and, if
    ``bare_ipv6``, ``2001:db8::1``; None for anything else."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or ":" not in host or (rest and not (rest.startswith(":") and _PORT.fullmatch(rest[1:]))):
            return None
        return _address(host)
    if text.count(":") == 1:  # IPv4 and a port
        host, _, port = text.partition(":")
        ip = _address(host) if _PORT.fullmatch(port) else None
        return ip if isinstance(ip, ipaddress.IPv4Address) else None
    if ":" in text and not bare_ipv6:
        return None
    return _address(text)


def _xff_entry(raw: str) -> IPAddress | None:
    return _node(raw.strip(), bare_ipv6=True)


def _forwarded_entry(raw: str) -> IPAddress | None:
    """The ``for=`` address of one RFC 7239 forwarded-element; None if it has none, names none
    (``unknown``, ``_obfuscated``) or is malformed. IPv6 must be quoted and bracketed, as the RFC says."""
    found = None
    for pair in raw.split(";"):
        if not pair.strip():
            continue  # forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
        match = _PAIR.fullmatch(pair)
        if match is None:
            return None
        if match.group(1).lower() != "for":
            continue
        if found is not None:
            return None  # a parameter may occur once per element (RFC 7239 section 4)
        value = match.group(2)
        found = re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value
    return None if found is None else _node(found, bare_ipv6=False)
