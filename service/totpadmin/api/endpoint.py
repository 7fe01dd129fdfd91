"""One HTTP request to TOTPAdminService, start to finish: binding, authentication, the call."""

from __future__ import annotations

import logging

from ..core.errors import AuthenticationFailed, StoreUnavailable
from ..core.principal import Principal
from . import faults
from .bindings import Bindings, UnsupportedMediaType
from .context import CallContext, Services
from .messages import ApiReply, ApiRequest

log = logging.getLogger(__name__)


class Endpoint:
    def __init__(self, services: Services):
        self.services = services
        self.bindings = Bindings()
        realm = services.settings.carbon.server_name.replace('"', "'")
        self._challenge = ApiReply(401, "text/html", b"", headers=(("WWW-Authenticate", f'Basic realm="{realm}"'),))

    def precheck(self, request: ApiRequest) -> ApiReply | None:
        """The answer to a request that needs neither the database nor spyne, else None. Cheap: runs
        on the reactor thread."""
        try:
            self.bindings.select(request)
        except UnsupportedMediaType:
            body = b"Unsupported Content-Type: use text/xml (SOAP 1.1), application/soap+xml (SOAP 1.2) " \
                   b"or application/x-www-form-urlencoded to /services/TOTPAdminService/<operation>\n"
            return ApiReply(415, "text/plain; charset=UTF-8", body)
        if request.credentials is None:
            return self._challenge
        return None

    def handle(self, request: ApiRequest) -> ApiReply:
        """Blocking (database, password hashing): run it in a worker thread."""
        early = self.precheck(request)
        if early is not None:
            return early
        binding = self.bindings.select(request)
        try:
            principal = self._authenticate(*request.credentials)
        except (AuthenticationFailed, StoreUnavailable) as err:
            log.info("authentication refused for a request from %s: %s", request.peer, type(err).__name__)
            return binding.fault(faults.ServiceFault(str(err), declared=False), request.operation)
        return binding.call(request, CallContext(self.services, principal))

    def _authenticate(self, username: str, password: str) -> Principal:
        with self.services.db.transaction() as unit:
            return self.services.authenticator.authenticate(unit.users, username, password)
