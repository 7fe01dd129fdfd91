"""Which URLs reach TOTPAdminService, as Axis2 exposes it."""

from __future__ import annotations

from dataclasses import dataclass

SERVICE = "TOTPAdminService"
# Axis2 names an endpoint per binding and transport; clients generated from a WSDL call these.
ENDPOINT_ALIASES = frozenset(
    f"{SERVICE}.{SERVICE}{transport}{suffix}Endpoint"
    for transport in ("Https", "Http")
    for suffix in ("Soap11", "Soap12", "")
)


@dataclass(frozen=True)
class Route:
    operation: str | None  # the segment after the service, e.g. "initTOTP"


def route(postpath: list[bytes]) -> Route | None:
    """``postpath`` is the path below /services/. None means not this service (404)."""
    try:
        segments = [s.decode("utf-8") for s in postpath]
    except UnicodeDecodeError:
        return None
    if not segments or (segments[0] != SERVICE and segments[0] not in ENDPOINT_ALIASES):
        return None
    rest = [s for s in segments[1:] if s]
    if len(rest) > 1:
        return None
    return Route(operation=rest[0] if rest else None)
