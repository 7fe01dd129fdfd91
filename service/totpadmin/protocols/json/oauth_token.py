"""``POST /oauth2/token``: the client-credentials grant (RFC 6749 4.4), its answer (5.1) and its errors
(5.2), translated to and from operations/oauth.py. The client authenticates with HTTP Basic (its id
and secret form-encoded, RFC 6749 2.3.1) or with the ``client_id``/``client_secret`` form fields, never
both. Every answer has ``Cache-Control: no-store`` and ``Pragma: no-cache``."""

from __future__ import annotations

from urllib.parse import unquote_plus

from ...core.application import parse_scopes
from ...core.errors import ScopeRefused, StoreUnavailable
from ...operations.application_logins import ClientCredentials
from ...operations.oauth import TOKEN_OPERATION, OAuthTokens
from ..messages import ApiReply, ApiRequest
from .form_body import BadForm, parse_form
from .replies import NO_STORE, json_reply
from .routes import Prepared

FORM = "application/x-www-form-urlencoded"
GRANT = "client_credentials"
MAX_CLIENT_ID = 128
MAX_SECRET = 256
_CLIENT_CHALLENGE = ("WWW-Authenticate", 'Basic realm="totp-admin"')


def oauth_error(status: int, error: str, description: str, headers: tuple[tuple[str, str], ...] = ()) -> ApiReply:
    """RFC 6749 5.2: ``{"error", "error_description"}``, never cached."""
    return json_reply(status, {"error": error, "error_description": description}, NO_STORE + headers)


def invalid_client() -> ApiReply:
    return oauth_error(401, "invalid_client", "Client authentication failed", (_CLIENT_CHALLENGE,))


class TokenEndpoint:
    """The :class:`~.routes.JsonHandler` of the token request."""

    def __init__(self, tokens: OAuthTokens):
        self._tokens = tokens

    def prepare(self, request: ApiRequest) -> Prepared | ApiReply:
        if request.content_type != FORM:
            return oauth_error(400, "invalid_request", f"The body must be {FORM}")
        try:
            fields = parse_form(request.body)
        except BadForm as err:
            return oauth_error(400, "invalid_request", str(err))
        grant = fields.get("grant_type")
        if not grant:
            return oauth_error(400, "invalid_request", "grant_type is missing")
        if grant != GRANT:
            return oauth_error(400, "unsupported_grant_type", f"Only grant_type={GRANT} is supported")
        scope = fields.get("scope")
        if scope is not None and parse_scopes(scope) is None:
            return oauth_error(400, "invalid_scope", "The requested scope is unknown")
        in_form = "client_id" in fields or "client_secret" in fields
        if request.authorization_sent and in_form:
            return oauth_error(400, "invalid_request", "Authenticate the client with HTTP Basic or with the form "
                                                       "fields, not both")
        if request.authorization_sent:
            if request.credentials is None:
                return invalid_client()  # not one well-formed Basic header
            client_id, secret = (unquote_plus(part) for part in request.credentials)
        else:
            client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
        if not client_id or not secret or len(client_id) > MAX_CLIENT_ID or len(secret) > MAX_SECRET \
                or not client_id.isprintable():  # no client has one; PostgreSQL refuses NUL in a lookup
            return invalid_client()
        return Prepared(ClientCredentials(client_id, secret), TOKEN_OPERATION, scope)

    def handle(self, prepared: Prepared, caller) -> ApiReply:
        try:
            issued = self._tokens.issue(caller, prepared.data)
        except ScopeRefused:
            return oauth_error(400, "invalid_scope", "The requested scope is not granted to this client")
        except StoreUnavailable as err:
            return self.unavailable(prepared, err)
        return json_reply(200, {"access_token": issued.access_token, "token_type": "Bearer",
                                "expires_in": issued.expires_in, "scope": issued.scope}, NO_STORE)

    def refused(self, prepared: Prepared) -> ApiReply:
        return invalid_client()

    def throttled(self, prepared: Prepared, retry_after: int) -> ApiReply:
        return oauth_error(429, "slow_down", "Too many failed client authentications; try again later",
                           (("Retry-After", str(retry_after)),))

    def unavailable(self, prepared: Prepared, error: StoreUnavailable | None) -> ApiReply:
        return oauth_error(503, "temporarily_unavailable", "The store is unavailable; try again later",
                           (("Retry-After", "5"),))
