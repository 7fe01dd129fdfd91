"""The JSON APIs' route table: (method, path pattern) -> handler. A pattern's ``{name}`` segment matches
one non-empty segment, handed to the handler as ``ApiRequest.path_params``. Each handler names its
credential kind by what its :meth:`JsonHandler.prepare` returns (client credentials for the token
endpoint; :func:`.bearer.bearer_credentials` for an application's calls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ...core.errors import StoreUnavailable
from ..messages import ApiReply, ApiRequest


@dataclass(frozen=True)
class Prepared:
    """A request a handler read and found well-formed: the credentials to log in with, the audit's
    name of the operation, and whatever ``handle`` needs."""

    credentials: object
    operation: str
    data: object = None


class JsonHandler(Protocol):
    def prepare(self, request: ApiRequest) -> Prepared | ApiReply:
        """Cheap, on the reactor thread: the request read (or the answer to a malformed one)."""

    def handle(self, prepared: Prepared, caller) -> ApiReply:
        """Blocking (database): the call, as the logged-in ``caller``."""

    def refused(self, prepared: Prepared) -> ApiReply:
        """The answer when the credentials were wrong."""

    def throttled(self, prepared: Prepared, retry_after: int) -> ApiReply: ...

    def unavailable(self, prepared: Prepared, error: StoreUnavailable | None) -> ApiReply: ...


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # e.g. "/oauth2/token", "/ciam-mfa/v2/devices/{authId}"
    handler: JsonHandler

    def match(self, segments: list[str]) -> dict[str, str] | None:
        parts = self.pattern.strip("/").split("/")
        if len(parts) != len(segments):
            return None
        params = {}
        for part, segment in zip(parts, segments):
            if part.startswith("{") and part.endswith("}"):
                if not segment:
                    return None
                params[part[1:-1]] = segment
            elif part != segment:
                return None
        return params


@dataclass(frozen=True)
class Match:
    handler: JsonHandler
    params: dict[str, str]


class RouteTable:
    def __init__(self, routes: list[Route]):
        self._routes = routes

    def including(self, routes: list[Route]) -> RouteTable:
        """This table and ``routes`` (the pages beside the JSON APIs)."""
        return RouteTable([*self._routes, *routes])

    def find(self, method: str, path: str) -> Match | list[str] | None:
        """The route for ``method`` at ``path``; else the methods the path allows (405), or None (404)."""
        segments = path.strip("/").split("/")
        allowed = []
        for route in self._routes:
            params = route.match(segments)
            if params is None:
                continue
            if route.method == method:
                return Match(route.handler, params)
            allowed.append(route.method)
        return allowed or None

    @property
    def prefixes(self) -> set[str]:
        """The first segment of every route (where the server mounts the table)."""
        return {route.pattern.strip("/").split("/")[0] for route in self._routes}
