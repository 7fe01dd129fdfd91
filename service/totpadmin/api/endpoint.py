"""One HTTP request to TOTPAdminService, start to finish: binding, authentication, the call."""

from __future__ import annotations

import logging
from dataclasses import replace

from ..core import audit
from ..core.authentication import CacheState, LoginRecord
from ..core.errors import AuthenticationFailed, StoreUnavailable
from ..core.principal import Principal
from ..operations.caller import Caller, LoginChanged
from ..operations.services import Services
from . import faults
from .bindings import Bindings, UnsupportedMediaType
from .messages import ApiReply, ApiRequest
from .service import SoapCall

log = logging.getLogger(__name__)


class Endpoint:
    def __init__(self, services: Services, *, read_plain: bool = True):
        self.services = services
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

    def login_state(self, request: ApiRequest) -> CacheState:
        """Whether the request's credentials verified recently, and whether they are due to be checked
        again (memory only: cheap enough for the reactor thread). If MISSING, :meth:`login` should run
        first, off the database threads: it hashes a password."""
        if request.credentials is None:
            return CacheState.MISSING
        return self.services.authenticator.cache_state(*request.credentials)

    def login_key(self, request: ApiRequest) -> bytes:
        """Equal for requests with equal credentials (an HMAC, not the password); the request must have them."""
        return self.services.authenticator.login_key(*request.credentials)

    def login(self, request: ApiRequest) -> Principal | ApiReply:
        """Blocking (database, then password hashing): the caller, or the reply refusing the request.
        The server runs the three steps on separate threads: :meth:`find_login` and
        :meth:`refuse_login` on a database thread, :meth:`check_password` on a thread of its own."""
        found = self.find_login(request)
        if isinstance(found, ApiReply):
            return found
        caller = self.check_password(request, found)
        return self.refuse_login(request) if caller is None else caller

    def find_login(self, request: ApiRequest) -> LoginRecord | None | ApiReply:
        """Blocking (database, one read): the stored login the credentials name (None: no such user),
        or the reply refusing the request."""
        early = self.precheck(request)
        if early is not None:
            return early
        try:
            with self.services.db.transaction(read_only=True) as unit:
                return self.services.authenticator.find(unit.users, request.credentials[0])
        except StoreUnavailable as err:
            return self.store_unavailable(request, err)

    def check_password(self, request: ApiRequest, found: LoginRecord | None) -> Principal | None:
        """CPU only (Argon2, tens of ms; no database, so no connection is held meanwhile): the caller if
        the password is right, else None."""
        try:
            return self.services.authenticator.check(found, *request.credentials)
        except AuthenticationFailed:
            return None

    def refuse_login(self, request: ApiRequest) -> ApiReply:
        """Blocking (database): audit a failed login; the fault that answers it."""
        try:
            self._audit_failed_login(request)
        except Exception:  # a bug (a store outage is not raised): the failure must still reach the throttle
            log.exception("request=%s: failed login not audited", request.request_id)
        fault = faults.ServiceFault(str(AuthenticationFailed()), declared=False)
        return replace(self.bindings.select(request).fault(fault, request.operation), authenticated=False)

    def handle(self, request: ApiRequest, caller: Principal | None = None) -> ApiReply:
        """Blocking (database): run it in a worker thread. ``caller``: what :meth:`login` returned for
        this request, if it ran. Otherwise a login from the credential cache stands for the caller, and
        the call's own transaction confirms it is still the stored one; failing that, or without a
        cached login, the credentials are checked here in full."""
        early = self.precheck(request)
        if early is not None:
            return early
        binding = self.bindings.select(request)
        confirm = None
        if caller is None:
            authenticator = self.services.authenticator
            hit = authenticator.cached(*request.credentials)
            if hit is not None:
                caller = hit.principal
                confirm = lambda unit: authenticator.confirm(unit.users, hit)  # noqa: E731
            else:
                outcome = self.login(request)
                if isinstance(outcome, ApiReply):
                    return outcome
                caller = outcome
        call = SoapCall(self.services.operations,
                        Caller(caller, request_id=request.request_id, source=request.peer, confirm=confirm))
        try:
            reply = binding.call(request, call)
        except LoginChanged:  # from the fast path; spyne turns it into a fault reply, and the flag tells
            call.login_changed = True
        if call.login_changed:
            self.services.authenticator.forget(*request.credentials)
            return self.handle(request)
        return replace(reply, authenticated=True)

    def store_unavailable(self, request: ApiRequest, err: StoreUnavailable) -> ApiReply:
        """The reply when the store failed outside the call: reading the login, or storing the audit
        event of a call whose answer is then withheld."""
        return self.bindings.select(request).fault(faults.for_error(request.operation or "", None, err),
                                                   request.operation)

    def _audit_failed_login(self, request: ApiRequest) -> None:
        event = audit.AuditEvent(request_id=request.request_id, source=request.peer, caller=request.credentials[0],
                                 operation=request.operation or "(soap)", target=None, tenant=None,
                                 outcome=audit.AUTH_FAILED)
        self.services.operations.audit_alone(event)
