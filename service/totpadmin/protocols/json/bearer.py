"""For routes an application calls with its access token (RFC 6750): the credentials, and the answers
when the token is missing or wrong (401 ``invalid_token``) or lacks the route's scope (403)."""

from __future__ import annotations

from ...core.application import Application
from ...operations.application_logins import BearerCredentials
from ..messages import ApiReply, ApiRequest
from .replies import bearer_refused, insufficient_scope


def bearer_credentials(request: ApiRequest) -> BearerCredentials | ApiReply:
    """The request's token; 401 without one (RFC 6750 3.1)."""
    if request.bearer is None:
        return bearer_refused()
    return BearerCredentials(request.bearer)


def scope_missing(principal, scope: str) -> ApiReply | None:
    """403 ``insufficient_scope`` unless ``principal`` is an application whose token has ``scope``."""
    if isinstance(principal, Application) and scope in principal.scopes:
        return None
    return insufficient_scope(scope)
