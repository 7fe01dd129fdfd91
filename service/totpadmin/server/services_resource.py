"""The Twisted resource at /services/: routing, the WSDL, and a call's walk: the SOAP/form endpoint's
precheck, the login pipeline, the call where database work runs, the reply written back."""

from __future__ import annotations

import re
from dataclasses import replace

from twisted.internet import defer
from twisted.web import server

from ..protocols.soap.endpoint import Endpoint
from ..protocols.messages import ApiReply, ApiRequest
from ..protocols.soap.wsdl import WsdlDocument
from ..core.client_address import ClientAddresses
from ..core.throttle import USERNAME
from .api_resource import ApiResource, InFlight
from .credentials import basic_credentials
from .database_calls import DatabaseCalls, RowsNotStored
from .login_pipeline import BAD_CREDENTIALS, THROTTLED, LoginPipeline, Refused
from .observability import Metrics
from .routing import SERVICE, route

_METADATA_QUERIES = {b"wsdl", b"wsdl2", b"xsd"}


class ServicesResource(ApiResource):
    def __init__(self, calls: DatabaseCalls, logins: LoginPipeline, endpoint: Endpoint, wsdl: WsdlDocument,
                 metrics: Metrics, *, hide_wsdl: bool, public_host: str | None, https: bool,
                 clients: ClientAddresses = ClientAddresses(), in_flight: InFlight | None = None):
        super().__init__(calls, logins, metrics, clients=clients, in_flight=in_flight)
        self._endpoint = endpoint
        self._wsdl = wsdl
        self._hide_wsdl = hide_wsdl
        self._public_host = public_host
        self._scheme = "https" if https else "http"

    def render(self, request: server.Request):
        started = self._start(request)
        target = route(request.postpath)
        if target is None or request.method not in (b"GET", b"POST"):
            status = 404 if target is None else 405
            return self._finish(request, ApiReply(status, "text/plain; charset=UTF-8",
                                                  b"Not found\n" if status == 404 else b"Method not allowed\n",
                                                  headers=(("Allow", "GET, POST"),) if status == 405 else ()), started)

        metadata = _query_names(request.uri) & _METADATA_QUERIES if request.method == b"GET" else set()
        if metadata:
            return self._finish(request, self._metadata(request, metadata), started)

        if self._overflowed(request):
            return self._finish(request, ApiReply(413, "text/plain; charset=UTF-8", b"Request body too large\n"), started)

        api_request = self._api_request(request, target.operation)
        early = self._endpoint.precheck(api_request)
        if early is not None:
            return self._finish(request, early, started)

        return self._logged_in(request, started, self._endpoint.credentials(api_request),
                               self._endpoint.login_request(api_request),
                               lambda caller: self._on_database(self._endpoint.handle, api_request, caller),
                               lambda refused: self._refusal_reply(refused, api_request))

    def _on_database(self, function, api_request: ApiRequest, *args) -> defer.Deferred:
        """``function(api_request, *args)`` where database work runs (database_calls.py). A call whose
        audit row could not be stored is answered with the store's fault instead of its own answer."""
        d = self._calls.run(function, api_request, *args)
        d.addErrback(self._unstored, api_request)
        return d

    def _refusal_reply(self, result: Refused, api_request: ApiRequest) -> ApiReply:
        """The answer to a login the pipeline refused."""
        if result.reason == THROTTLED:
            return _too_many(result)
        if result.reason == BAD_CREDENTIALS:
            return self._endpoint.refused(api_request)
        return self._endpoint.store_unavailable(api_request, result.error)

    def _unstored(self, failure, api_request: ApiRequest) -> ApiReply:
        """The call ran, but its audit row could not be stored: its answer is withheld."""
        failure.trap(RowsNotStored)
        return replace(self._endpoint.store_unavailable(api_request, failure.value.cause), authenticated=True)

    def _api_request(self, request: server.Request, operation: str | None) -> ApiRequest:
        return ApiRequest(
            method=request.method.decode("ascii"),
            operation=operation,
            content_type=self._content_type(request),
            body=self._body(request),
            query=self._query(request),
            credentials=basic_credentials(request.requestHeaders.getRawHeaders(b"authorization")),
            peer=self._client(request),
            request_id=self._request_id(request),
        )

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
