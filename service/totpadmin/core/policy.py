"""The one place that decides whether a caller may manage a user's TOTP."""

from __future__ import annotations

from .errors import NotAuthorized
from .principal import Principal
from .usernames import UserRef


def authorize(caller: Principal, target: UserRef, *, allow_self: bool = False) -> None:
    """Admins act inside their own tenant; the super-tenant admin acts in every tenant; with
    ``allow_self``, any user also acts on themself. Anything but a user (an OAuth2 application) is refused:
    the admin operations never run for an access token."""
    if not isinstance(caller, Principal):
        raise NotAuthorized()
    if caller.is_super_admin or (caller.is_admin and caller.ref.tenant == target.tenant):
        return
    if allow_self and caller.ref == target:
        return
    raise NotAuthorized()
