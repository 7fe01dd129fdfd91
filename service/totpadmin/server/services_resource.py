"""The Twisted resource at /services/: routing, the WSDL, and a call's walk: the SOAP/form endpoint's
precheck, the login pipeline, the call where database work runs, the reply written back."""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import replace

from twisted.internet import defer
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from .. import upstream_fixes
from ..protocols.soap.endpoint import Endpoint
from ..protocols.messages import ApiReply, ApiRequest
from ..protocols.soap.wsdl import WsdlDocument
from ..core.client_address import ClientAddresses
from ..core.throttle import USERNAME, LoginThrottle
from ..operations.login import PasswordCredentials
from .credentials import basic_credentials
from .database_calls import DatabaseCalls, RowsNotStored
from .login_pipeline import BAD_CREDENTIALS, THROTTLED, LoginPipeline, Refused
from .observability import Metrics
from .plain import SERVER_HEADER
from .routing import SERVICE, route

log = logging.getLogger("totpadmin.access")

_REASONS = upstream_fixes.missing_reason_phrases()  # e.g. 429 Too Many Requests
_METADATA_QUERIES = {b"wsdl", b"wsdl2", b"xsd"}


class ServicesResource(resource.Resource):
    isLeaf = True

    def __init__(self, reactor, calls: DatabaseCalls, hash_pool: ThreadPool, endpoint: Endpoint, wsdl: WsdlDocument,
                 throttle: LoginThrottle, metrics: Metrics, *,
                 hide_wsdl: bool, public_host: str | None, https: bool,
                 clients: ClientAddresses = ClientAddresses()):
        super().__init__()
        self._reactor = reactor
        self._calls = calls  # where database work runs: the pool's threads, or SQLite's rounds (database_calls.py)
        self._logins = LoginPipeline(reactor, {PasswordCredentials: endpoint.logins}, calls.run, hash_pool, throttle,
                                     metrics)
        self._endpoint = endpoint
        self._wsdl = wsdl
        self._clients = clients
        self._forwarded = clients.header.encode("ascii")
        self._metrics = metrics
        self._hide_wsdl = hide_wsdl
        self._public_host = public_host
        self._scheme = "https" if https else "http"
        self.in_flight = 0

    def render(self, request: server.Request):
        started = time.monotonic()
        request.setHeader(b"server", SERVER_HEADER)
        target = route(request.postpath)
        if target is None or request.method not in (b"GET", b"POST"):
            status = 404 if target is None else 405
            return self._finish(request, ApiReply(status, "text/plain; charset=UTF-8",
                                                  b"Not found\n" if status == 404 else b"Method not allowed\n",
                                                  headers=(("Allow", "GET, POST"),) if status == 405 else ()), started)

        metadata = _query_names(request.uri) & _METADATA_QUERIES if request.method == b"GET" else set()
        if metadata:
            return self._finish(request, self._metadata(request, metadata), started)

        if getattr(request.content, "overflowed", False):
            return self._finish(request, ApiReply(413, "text/plain; charset=UTF-8", b"Request body too large\n"), started)

        api_request = self._api_request(request, target.operation)
        early = self._endpoint.precheck(api_request)
        if early is not None:
            return self._finish(request, early, started)

        self.in_flight += 1
        d = self._logins.run(self._endpoint.credentials(api_request), self._endpoint.login_request(api_request),
                             lambda caller: self._on_database(self._endpoint.handle, api_request, caller))
        d.addCallback(self._refusal_reply, api_request)
        d.addErrback(self._internal_error)
        d.addCallback(lambda reply: self._finish(request, reply, started))
        d.addBoth(self._done)
        return server.NOT_DONE_YET

    def _on_database(self, function, api_request: ApiRequest, *args) -> defer.Deferred:
        """``function(api_request, *args)`` where database work runs (database_calls.py). A call whose
        audit row could not be stored is answered with the store's fault instead of its own answer."""
        d = self._calls.run(function, api_request, *args)
        d.addErrback(self._unstored, api_request)
        return d

    def _refusal_reply(self, result, api_request: ApiRequest) -> ApiReply:
        """The call's reply, or the answer to a login the pipeline refused."""
        if not isinstance(result, Refused):
            return result
        if result.reason == THROTTLED:
            return _too_many(result)
        if result.reason == BAD_CREDENTIALS:
            return self._endpoint.refused(api_request)
        return self._endpoint.store_unavailable(api_request, result.error)

    def _unstored(self, failure, api_request: ApiRequest) -> ApiReply:
        """The call ran, but its audit row could not be stored: its answer is withheld."""
        failure.trap(RowsNotStored)
        return replace(self._endpoint.store_unavailable(api_request, failure.value.cause), authenticated=True)

    def _done(self, result):
        self.in_flight -= 1
        return None

    @staticmethod
    def _internal_error(failure) -> ApiReply:
        log.error("request failed unexpectedly", exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        return ApiReply(500, "text/plain; charset=UTF-8", b"Internal server error\n")

    def _api_request(self, request: server.Request, operation: str | None) -> ApiRequest:
        request_id = uuid.uuid4().hex
        request.setHeader(b"x-request-id", request_id.encode("ascii"))
        content_type = (request.getHeader(b"content-type") or b"").split(b";", 1)[0].strip().lower()
        query = {}
        if request.method == b"GET":
            query = {k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs]
                     for k, vs in request.args.items()}
        request.content.seek(0)
        body = request.content.read()
        return ApiRequest(
            method=request.method.decode("ascii"),
            operation=operation,
            content_type=content_type.decode("latin-1"),
            body=body,
            query=query,
            credentials=basic_credentials(request.requestHeaders.getRawHeaders(b"authorization")),
            peer=self._client(request),
            request_id=request_id,
        )

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

    def _metadata(self, request: server.Request, asked: set[bytes]) -> ApiReply:
        if self._hide_wsdl:
            return ApiReply(403, "text/html; charset=UTF-8",
                            f"Access to service metadata for service: {SERVICE} has been forbidden".encode())
        if b"wsdl" not in asked:
            return ApiReply(404, "text/plain; charset=UTF-8", b"Only ?wsdl is published\n")
        return ApiReply(200, "text/xml; charset=UTF-8", self._wsdl.for_base(self._base_url(request)))

    def _base_url(self, request: server.Request) -> str:
        host = self._public_host
        if host is None:
            header = (request.getHeader(b"host") or b"").decode("latin-1")
            host = header if _is_host(header) else f"localhost:{request.getHost().port}"
        elif ":" not in host:
            host = f"{host}:{request.getHost().port}"
        return f"{self._scheme}://{host}"

    def _finish(self, request: server.Request, reply: ApiReply, started: float):
        if request.finished or request._disconnected:
            return server.NOT_DONE_YET
        request.setResponseCode(reply.status, _REASONS.get(reply.status))
        request.setHeader(b"content-type", reply.content_type.encode("latin-1"))
        for name, value in reply.headers:
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


def _too_many(refused: Refused) -> ApiReply:
    """429 for a login attempt the throttle refused, with Retry-After in whole seconds."""
    about = "for this username" if refused.about == USERNAME else "from this address"
    return ApiReply(429, "text/plain; charset=UTF-8", f"Too many failed logins {about}; try again later\n".encode(),
                    headers=(("Retry-After", str(refused.retry_after)),))


def _query_names(uri: bytes) -> set[bytes]:
    """Lower-cased parameter names of the query, valueless ones (``?wsdl``) included."""
    _, _, query = uri.partition(b"?")
    return {part.split(b"=", 1)[0].lower() for part in query.split(b"&") if part}


_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def _is_host(value: str) -> bool:
    return bool(_HOST.fullmatch(value))
