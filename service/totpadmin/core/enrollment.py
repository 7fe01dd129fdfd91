"""TOTPAdminService's legacy operations on one user's TOTP claims: init, reset, refresh.

Works on an :class:`Account`, which the store implements inside one transaction; encryption of the
sensitive claims happens there, so values here are always plaintext.
"""

from __future__ import annotations

from typing import Protocol

from ..config.settings import TotpSettings
from . import claims, secret_codec
from .otpauth import legacy_base64, otpauth_url
from .usernames import UserRef


class Account(Protocol):
    """One user's claims, read and written inside one transaction."""

    ref: UserRef

    def get(self, uri: str) -> str | None:
        """The claim's plaintext value, or None when unset."""

    def set(self, uri: str, value: str | None) -> None:
        """Store ``value`` (encrypted if the claim is sensitive); None clears the claim."""

    def stored(self, uri: str) -> str | None:
        """The claim exactly as stored: the sealed Base64 form for sensitive claims."""


class Enrollment:
    def __init__(self, settings: TotpSettings, new_secret=secret_codec.new_secret):
        self._settings = settings
        self._new_secret = new_secret

    def issuer(self, ref: UserRef) -> str:
        """The tenant domain, unless ``UseCommonIssuer`` names one issuer for everybody."""
        if self._settings.use_common_issuer and self._settings.issuer:
            return self._settings.issuer
        return ref.tenant

    def qr_url(self, ref: UserRef, secret_text: str) -> str:
        return otpauth_url(self.issuer(ref), ref.name, secret_text, period=self._settings.time_step)

    def init_totp(self, account: Account) -> str:
        """Enable TOTP; return the Base64 QR URL. Idempotent: keeps an existing secret."""
        secret_text = account.get(claims.SECRET_KEY)
        if not secret_text:
            secret_text = self._store_new_secret(account)
        return self._publish(account, secret_text)

    def reset_totp(self, account: Account) -> bool:
        """Disable TOTP and clear its claims."""
        for uri in (claims.SECRET_KEY, claims.ENCODING, claims.QR_CODE_URL, claims.VERIFY_SECRET_KEY):
            account.set(uri, None)
        account.set(claims.TOTP_ENABLED, "false")
        return True

    def refresh_secret_key(self, account: Account) -> str:
        """Rotate the secret; return it encrypted, as stored (Base64, one line)."""
        self._publish(account, self._store_new_secret(account))
        return account.stored(claims.SECRET_KEY)

    def _store_new_secret(self, account: Account) -> str:
        encoding = self._settings.encoding
        secret_text = secret_codec.encode_secret(self._new_secret(self._settings.secret_bytes), encoding)
        account.set(claims.SECRET_KEY, secret_text)
        account.set(claims.ENCODING, encoding)
        return secret_text

    def _publish(self, account: Account, secret_text: str) -> str:
        encoded = legacy_base64(self.qr_url(account.ref, secret_text), chunked=self._settings.chunked_base64)
        account.set(claims.QR_CODE_URL, encoded)
        account.set(claims.TOTP_ENABLED, "true")
        return encoded
