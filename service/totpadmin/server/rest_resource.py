"""The Twisted resource of the JSON APIs (mounted at /oauth2 and /ciam-mfa): the route table
(protocols/json/routes.py) picks a handler, which reads the request and names its credentials; the
login pipeline lets them in, and the handler's call runs where database work runs."""

from __future__ import annotations

from twisted.internet import defer
from twisted.web import server

from ..core.client_address import ClientAddresses
from ..operations.login import Request
from ..protocols.json import replies
from ..protocols.json.routes import Match, Prepared, RouteTable
from ..protocols.messages import ApiReply, ApiRequest
from .api_resource import ApiResource, InFlight
from .credentials import SESSION_COOKIE, basic_credentials, bearer_token, session_cookie
from .database_calls import DatabaseCalls, RowsNotStored
from .login_pipeline import BAD_CREDENTIALS, THROTTLED, LoginPipeline, Refused
from .observability import Metrics


class RestResource(ApiResource):
    def __init__(self, calls: DatabaseCalls, logins: LoginPipeline, routes: RouteTable, metrics: Metrics, *,
                 max_body_bytes: int, clients: ClientAddresses = ClientAddresses(),
                 in_flight: InFlight | None = None):
        super().__init__(calls, logins, metrics, clients=clients, in_flight=in_flight)
        self._routes = routes
        self._max_body = max_body_bytes

    def render(self, request: server.Request):
        started = self._start(request)
        request_id = self._request_id(request)
        try:
            path = request.path.decode("utf-8")
        except UnicodeDecodeError:
            return self._finish(request, replies.not_found(), started)
        found = self._routes.find(request.method.decode("ascii", "replace"), path)
        if not isinstance(found, Match):
            reply = replies.not_found() if found is None else replies.method_not_allowed(found)
            return self._finish(request, reply, started)
        if self._overflowed(request):
            return self._finish(request, replies.too_large(self._max_body), started)

        api_request = self._api_request(request, request_id, found.params)
        handler = found.handler
        prepared = handler.prepare(api_request)
        if isinstance(prepared, ApiReply):
            return self._finish(request, prepared, started)
        login = Request(request_id, api_request.peer, prepared.operation)
        return self._logged_in(request, started, prepared.credentials, login,
                               lambda caller: self._on_database(handler, prepared, caller),
                               lambda refused: _refusal(handler, prepared, refused))

    def _on_database(self, handler, prepared: Prepared, caller) -> defer.Deferred:
        """The handler's call where database work runs. A call whose audit row could not be stored is
        answered as the store being unavailable instead of with its own answer."""
        d = self._calls.run(handler.handle, prepared, caller)

        def unstored(failure):
            failure.trap(RowsNotStored)
            return handler.unavailable(prepared, failure.value.cause)

        d.addErrback(unstored)
        return d

    def _internal_error_reply(self) -> ApiReply:
        return replies.internal_error()

    def _api_request(self, request: server.Request, request_id: str, params: dict[str, str]) -> ApiRequest:
        authorization = request.requestHeaders.getRawHeaders(b"authorization")
        return ApiRequest(
            method=request.method.decode("ascii"),
            operation=None,
            content_type=self._content_type(request),
            body=self._body(request),
            query=self._query(request, any_method=True),
            credentials=basic_credentials(authorization),
            bearer=bearer_token(authorization),
            authorization_sent=bool(authorization),
            peer=self._client(request),
            request_id=request_id,
            path_params=params,
            session_token=session_cookie(request.getCookie(SESSION_COOKIE)),
            csrf_token=_header(request, b"x-csrf-token"),
            origin=_header(request, b"origin"),
            host=_header(request, b"host") or "",
        )


def _refusal(handler, prepared: Prepared, refused: Refused) -> ApiReply:
    if refused.reason == THROTTLED:
        return handler.throttled(prepared, refused.retry_after)
    if refused.reason == BAD_CREDENTIALS:
        return handler.refused(prepared)
    return handler.unavailable(prepared, refused.error)


def _header(request: server.Request, name: bytes) -> str | None:
    """A header sent once (else None: which one would count is ambiguous), decoded leniently."""
    values = request.requestHeaders.getRawHeaders(name)
    if not values or len(values) != 1:
        return None
    return values[0].decode("latin-1")
