"""Whether TOTP is required for a user, and by whom: the policy (``enableTOTP=true``), an application of
their tenant (``client add --totp required``), or their own choice (the ``mfa-method`` claim, set by the
identity API's ``PUT /identities/{id}/mfa-method`` and by MyAccount's "require TOTP at sign-in").

While it is, the user's last authenticator cannot be removed, and a user without one is sent to enroll
at sign-in (the pages' first-login enrollment)."""

from __future__ import annotations

from ..config.settings import Settings

MFA_METHOD = "urn:totp-admin:claims:mfa-method"  # the user's choice: "totp" or "none" (unset: none)
METHODS = ("totp", "none")
POLICY, APPLICATION, USER = "policy", "application", "user"  # who requires it


def required_by(settings: Settings, transaction, account) -> str | None:
    """Who requires TOTP of ``account``'s user (the first of :data:`POLICY`, :data:`APPLICATION`,
    :data:`USER`), or None."""
    if settings.totp.mandatory:
        return POLICY
    if any(client.totp_policy == "required" for client in transaction.oauth.clients(account.ref.tenant)):
        return APPLICATION
    if account.get(MFA_METHOD) == "totp":
        return USER
    return None
