"""What every API resource (SOAP at /services, JSON at /oauth2 and the routes to come) does around a
call: the request id, the client's address (behind trusted proxies, the one they name), the body, the
login pipeline, database work where it runs, the answer written back with its access-log line and
metrics, and the count of calls in flight (for a clean stop)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Callable

from twisted.internet import defer
from twisted.web import resource, server

from .. import upstream_fixes
from ..core.client_address import ClientAddresses
from ..operations.login import Request
from ..protocols.messages import ApiReply
from .database_calls import DatabaseCalls
from .login_pipeline import LoginPipeline, Refused
from .observability import Metrics
from .plain import SERVER_HEADER

log = logging.getLogger("totpadmin.access")

_REASONS = upstream_fixes.missing_reason_phrases()  # e.g. 429 Too Many Requests


class InFlight:
    """Calls in progress, over every resource (the stop waits for them)."""

    count = 0


class ApiResource(resource.Resource):
    isLeaf = True

    def __init__(self, calls: DatabaseCalls, logins: LoginPipeline, metrics: Metrics, *,
                 clients: ClientAddresses = ClientAddresses(), in_flight: InFlight | None = None):
        super().__init__()
        self._calls = calls  # where database work runs: the pool's threads, or SQLite's rounds (database_calls.py)
        self._logins = logins
        self._clients = clients
        self._forwarded = clients.header.encode("ascii")
        self._metrics = metrics
        self._in_flight = in_flight if in_flight is not None else InFlight()

    @property
    def in_flight(self) -> int:
        return self._in_flight.count

    def _start(self, request: server.Request) -> float:
        request.setHeader(b"server", SERVER_HEADER)
        return time.monotonic()

    def _logged_in(self, request: server.Request, started: float, credentials, login: Request,
                   call: Callable[..., defer.Deferred], refusal: Callable[[Refused], ApiReply]):
        """Answer ``request`` with ``call(caller)``'s reply once the login pipeline let ``credentials`` in,
        else with ``refusal(refused)``; an unexpected error is logged and answered with a 500."""
        self._in_flight.count += 1
        d = self._logins.run(credentials, login, call)
        d.addCallback(lambda result: refusal(result) if isinstance(result, Refused) else result)
        d.addErrback(self._internal_error)
        d.addCallback(lambda reply: self._finish(request, reply, started))
        d.addBoth(self._done)
        return server.NOT_DONE_YET

    def _done(self, result):
        self._in_flight.count -= 1
        return None

    def _internal_error(self, failure) -> ApiReply:
        log.error("request failed unexpectedly", exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        return self._internal_error_reply()

    def _internal_error_reply(self) -> ApiReply:
        return ApiReply(500, "text/plain; charset=UTF-8", b"Internal server error\n")

    @staticmethod
    def _request_id(request: server.Request) -> str:
        request_id = uuid.uuid4().hex
        request.setHeader(b"x-request-id", request_id.encode("ascii"))
        return request_id

    @staticmethod
    def _overflowed(request: server.Request) -> bool:
        """Whether the body was larger than the site accepts (site.py kept only its start)."""
        return bool(getattr(request.content, "overflowed", False))

    @staticmethod
    def _body(request: server.Request) -> bytes:
        request.content.seek(0)
        return request.content.read()

    @staticmethod
    def _query(request: server.Request, *, any_method: bool = False) -> dict[str, list[str]]:
        """A GET's query parameters (decoded leniently: the protocol checks them); none for other methods
        unless ``any_method`` (a JSON API's DELETE names its user in the query). The site leaves form
        bodies unparsed (site.py), so request.args never holds a body's fields."""
        if request.method != b"GET" and not any_method:
            return {}
        return {k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs]
                for k, vs in request.args.items()}

    @staticmethod
    def _content_type(request: server.Request) -> str:
        """The media type only, lower case; "" when absent."""
        return (request.getHeader(b"content-type") or b"").split(b";", 1)[0].strip().lower().decode("latin-1")

    def _client(self, request: server.Request) -> str:
        """The client's address: the TCP peer's, or behind a trusted proxy the one its header names
        (core/client_address.py). Found once per request, for the throttle, the audit and the logs."""
        client = getattr(request, "totp_client", None)
        if client is None:
            peer = getattr(request.getClientAddress(), "host", "")
            lines = request.requestHeaders.getRawHeaders(self._forwarded) if self._clients.enabled else None
            client = self._clients.client(peer, [line.decode("latin-1") for line in lines] if lines else None)
            request.totp_client = client
        return client

    def _finish(self, request: server.Request, reply: ApiReply, started: float):
        if request.finished or request._disconnected:
            return server.NOT_DONE_YET
        request.setResponseCode(reply.status, _REASONS.get(reply.status))
        request.setHeader(b"content-type", reply.content_type.encode("latin-1"))
        for name, value in reply.headers:
            if name.lower() == "set-cookie":  # one header per cookie
                request.responseHeaders.addRawHeader(b"set-cookie", value.encode("latin-1"))
            else:
                request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
        request.write(reply.body)
        request.finish()
        request_id = (request.responseHeaders.getRawHeaders(b"x-request-id") or [b"-"])[0].decode("ascii")
        elapsed = time.monotonic() - started
        self._metrics.request_done(reply.status, elapsed)
        elapsed_ms = round(elapsed * 1000, 1)
        log.info('%s "%s %s" %d %d %.1fms request=%s', self._client(request) or "-",
                 request.method.decode("ascii", "replace"), request.path.decode("latin-1"),
                 reply.status, len(reply.body), elapsed_ms, request_id,
                 extra={"request_id": request_id, "status": reply.status, "duration_ms": elapsed_ms})
        return server.NOT_DONE_YET
