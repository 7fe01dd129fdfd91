"""The SOAP/form translator: one HTTP request to TOTPAdminService from the wire to a use case and back
(binding, the call, the reply or fault). The login itself is decided by server/login_pipeline.py."""

from __future__ import annotations

import logging
from dataclasses import replace

from ...core.authentication import CacheState
from ...core.errors import AuthenticationFailed, StoreUnavailable
from ...operations.caller import Caller, LoginChanged
from ...operations.login import PasswordCredentials
from ...operations.login import Request as LoginRequest
from ...operations.services import Services
from ..messages import ApiReply, ApiRequest
from . import faults
from .bindings import Bindings, UnsupportedMediaType
from .service import SoapCall

log = logging.getLogger(__name__)


class Endpoint:
    def __init__(self, services: Services, *, read_plain: bool = True):
        self.services = services
        self.logins = services.logins
        self.bindings = Bindings(read_plain=read_plain)
        realm = services.settings.carbon.server_name.replace('"', "'")
        self._challenge = ApiReply(401, "text/html", b"", headers=(("WWW-Authenticate", f'Basic realm="{realm}"'),))

    def precheck(self, request: ApiRequest) -> ApiReply | None:
        """The answer to a request that needs neither the database nor spyne, else None. Cheap: runs
        on the reactor thread."""
        try:
            binding = self.bindings.select(request)
        except UnsupportedMediaType:
            body = b"Unsupported Content-Type: use text/xml (SOAP 1.1), application/soap+xml (SOAP 1.2) " \
                   b"or application/x-www-form-urlencoded to /services/TOTPAdminService/<operation>\n"
            return ApiReply(415, "text/plain; charset=UTF-8", body)
        if request.credentials is None:
            return self._challenge
        return binding.oversized(request)

    def credentials(self, request: ApiRequest) -> PasswordCredentials:
        """The request's credentials (it has them once :meth:`precheck` passed)."""
        return PasswordCredentials(*request.credentials)

    def login_request(self, request: ApiRequest) -> LoginRequest:
        """What the audit of a refused login says of the request."""
        return LoginRequest(request.request_id, request.peer, request.operation or "(soap)")

    def login_state(self, request: ApiRequest) -> CacheState:
        """Whether the request's credentials verified recently (memory only)."""
        if request.credentials is None:
            return CacheState.MISSING
        return self.logins.state(self.credentials(request))

    def refused(self, request: ApiRequest) -> ApiReply:
        """The fault answering credentials that did not verify (the refusal is audited already)."""
        fault = faults.ServiceFault(str(AuthenticationFailed()), declared=False)
        return replace(self.bindings.select(request).fault(fault, request.operation), authenticated=False)

    def handle(self, request: ApiRequest, caller: Caller | None = None) -> ApiReply:
        """Blocking (database): run it on a database thread. ``caller``: who the login pipeline found the
        caller to be, for a request that passed :meth:`precheck`; if it was a cached login, the call's
        own transaction confirms it is still the stored one, and :class:`LoginChanged` is raised when it
        is not (nothing was written).

        Without ``caller`` (callers with no server, e.g. tests) the precheck and every login step run
        here, on this thread, and a changed login is checked again at once."""
        if caller is not None:
            return self._call(request, caller)
        early = self.precheck(request)
        if early is not None:
            return early
        credentials = self.credentials(request)
        try:
            caller = self.logins.login(credentials, self.login_request(request))
        except StoreUnavailable as err:
            return self.store_unavailable(request, err)
        if caller is None:
            return self.refused(request)
        try:
            return self._call(request, caller)
        except LoginChanged:
            self.logins.forget(credentials)
            return self.handle(request)

    def _call(self, request: ApiRequest, caller: Caller) -> ApiReply:
        call = SoapCall(self.services.operations, caller)
        try:
            reply = self.bindings.select(request).call(request, call)
        except LoginChanged:  # from the fast path; spyne turns it into a fault reply, and the flag tells
            call.login_changed = True
        if call.login_changed:
            raise LoginChanged()
        return replace(reply, authenticated=True)

    def store_unavailable(self, request: ApiRequest, err: StoreUnavailable) -> ApiReply:
        """The reply when the store failed outside the call: reading the login, or storing the audit
        event of a call whose answer is then withheld."""
        return self.bindings.select(request).fault(faults.for_error(request.operation or "", None, err),
                                                   request.operation)
