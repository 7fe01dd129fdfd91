"""Who is calling, as the authentication pipeline established it, and what the audit says of the request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..core.application import Application
from ..core.principal import Principal

if TYPE_CHECKING:
    from ..store.transaction import Transaction


@dataclass(frozen=True)
class Caller:
    """An authenticated caller of one request. ``confirm``: for a login taken from the credential
    cache, whether the stored login still matches, checked inside the call's own transaction (one
    transaction per call instead of two); None when the password was just checked."""

    principal: Principal | Application  # a user (HTTP Basic), or an application (OAuth2 token)
    request_id: str = ""
    source: str = ""  # the client address (behind a trusted proxy, the one it names)
    confirm: Callable[[Transaction], bool] | None = None


class LoginChanged(Exception):
    """The cached login the call ran as is no longer the stored one (password, name or role changed, or
    the user was removed): the call was rolled back and must be answered after a full login check."""
