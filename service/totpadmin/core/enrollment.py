"""Enrolling a user: the legacy immediate operations (initTOTP, resetTOTP, refreshSecretKey) and
verify-before-activate (generateSecret, then enableTOTP with a code), with recovery codes."""

from __future__ import annotations

import time

from ..config.settings import TotpSettings
from . import claims, recovery, secret_codec
from .account import Account
from .code_checker import CodeChecker
from .errors import NoPendingSecret, SecretRetrievalDisabled, TotpNotEnabled
from .otpauth import legacy_base64, otpauth_url
from .usernames import UserRef


class Enrollment:
    def __init__(self, settings: TotpSettings, *, clock=time.time, new_secret=secret_codec.new_secret,
                 recovery_hasher=recovery.RECOVERY_HASHER, on_lockout=None):
        self._settings = settings
        self._new_secret = new_secret
        self._recovery_hasher = recovery_hasher
        self._checker = CodeChecker(settings, clock, recovery_hasher, on_lockout)

    def issuer(self, ref: UserRef) -> str:
        """The tenant domain, unless ``UseCommonIssuer`` names one issuer for everybody."""
        if self._settings.use_common_issuer and self._settings.issuer:
            return self._settings.issuer
        return ref.tenant

    def qr_url(self, ref: UserRef, secret_text: str, *, always_period: bool = False) -> str:
        s = self._settings
        return otpauth_url(self.issuer(ref), ref.name, secret_text, period=s.time_step, digits=s.digits,
                           algorithm=s.algorithm, always_period=always_period)

    # --- legacy, immediate ---

    def init_totp(self, account: Account) -> str:
        """Enable TOTP; return the Base64 QR URL. Idempotent: keeps an existing secret."""
        secret_text = account.get(claims.SECRET_KEY)
        if not secret_text:
            secret_text = self._new_secret_text()
            self._activate(account, secret_text)
        return self._publish(account, secret_text)

    def reset_totp(self, account: Account) -> bool:
        """Disable TOTP: clear its claims, any pending secret, the recovery codes, every device and
        the user's sign-in sessions."""
        for uri in (claims.SECRET_KEY, claims.ENCODING, claims.QR_CODE_URL, claims.VERIFY_SECRET_KEY):
            account.set(uri, None)
        account.set(claims.TOTP_ENABLED, "false")
        account.replace_recovery_codes([])
        account.remove_devices()
        account.end_sessions()  # a session's second factor was the device now gone
        if account.state().pending_expires_at is not None:
            account.save_state(pending_expires_at=None)
        return True

    def refresh_secret_key(self, account: Account) -> str:
        """Rotate the secret; return it encrypted, as stored (Base64, one line)."""
        secret_text = self._new_secret_text()
        self._activate(account, secret_text)
        self._publish(account, secret_text)
        return account.stored(claims.SECRET_KEY)

    # --- verify before activate ---

    def generate_secret(self, account: Account) -> str:
        """A pending secret for the user to scan; the active one (if any) is untouched until enableTOTP."""
        secret_text = self.pending_secret(account, new=True)
        return legacy_base64(self.qr_url(account.ref, secret_text), chunked=self._settings.chunked_base64)

    def pending_secret(self, account: Account, *, new: bool = False) -> str:
        """The secret waiting for its first code (verify before activate): the one pending, or a new one
        if ``new``, if none is pending or if it expired. The active secret (if any) is untouched."""
        if not new:
            pending = account.get(claims.VERIFY_SECRET_KEY)
            expires = account.state().pending_expires_at
            if pending and (expires is None or self._checker.now() < expires):
                return pending
        pending = self._new_secret_text()
        account.set(claims.VERIFY_SECRET_KEY, pending)
        account.save_state(pending_expires_at=self._checker.now() + self._settings.pending_secret_seconds)
        return pending

    def enable_totp(self, account: Account, code: str | None) -> list[str] | None:
        """Activate the pending secret if ``code`` is valid for it: the new recovery codes; None if not.

        A wrong code counts toward the lockout like one given to validateTOTP.
        """
        state = self._checker.unlocked_state(account)
        pending = account.get(claims.VERIFY_SECRET_KEY)
        if not pending:
            raise NoPendingSecret()
        if state.pending_expires_at is not None and self._checker.now() >= state.pending_expires_at:
            raise NoPendingSecret(expired=True)  # left in place: the next generateSecret replaces it
        key = secret_codec.decode_secret(pending, self._settings.encoding)
        step = self._checker.totp_step(account, key, code, state, replay_protected=False)
        if step is None:
            self._checker.failed(account, state)
            return None
        self._checker.succeeded(account, state)
        # The code just used must not pass validateTOTP again.
        account.save_state(pending_expires_at=None, last_step=max(step, state.last_step or step))
        account.set(claims.VERIFY_SECRET_KEY, None)
        self._activate(account, pending)
        self._publish(account, pending)
        return self._issue_recovery_codes(account)

    def regenerate_recovery_codes(self, account: Account) -> list[str]:
        """A new set of recovery codes; the old set stops working."""
        if not is_enabled(account):
            raise TotpNotEnabled(mandatory=False)
        return self._issue_recovery_codes(account)

    def retrieve_secret_key(self, account: Account) -> str:
        """The active secret in clear (WSO2 2.x). Only when the configuration allows it."""
        if not self._settings.allow_secret_retrieval:
            raise SecretRetrievalDisabled()
        secret_text = account.get(claims.SECRET_KEY)
        if not secret_text:
            raise TotpNotEnabled(mandatory=False)
        return secret_text

    def install_secret(self, account: Account, secret_text: str) -> None:
        """Make ``secret_text`` the active secret (another device of the user becoming the primary one)."""
        self._activate(account, secret_text)
        self._publish(account, secret_text)

    # --- shared steps ---

    def _new_secret_text(self) -> str:
        return secret_codec.encode_secret(self._new_secret(self._settings.secret_bytes), self._settings.encoding)

    def _activate(self, account: Account, secret_text: str) -> None:
        account.set(claims.SECRET_KEY, secret_text)
        account.set(claims.ENCODING, self._settings.encoding)

    def _publish(self, account: Account, secret_text: str) -> str:
        encoded = legacy_base64(self.qr_url(account.ref, secret_text), chunked=self._settings.chunked_base64)
        account.set(claims.QR_CODE_URL, encoded)
        account.set(claims.TOTP_ENABLED, "true")
        return encoded

    def _issue_recovery_codes(self, account: Account) -> list[str]:
        issued = recovery.issue(self._settings.recovery_codes, self._recovery_hasher)
        account.replace_recovery_codes(issued)
        return [code.shown for code in issued]


def is_enabled(account: Account) -> bool:
    """An active secret is stored and totpEnabled says true (the secret is not decrypted to know it)."""
    return bool(account.stored(claims.SECRET_KEY)) and account.get(claims.TOTP_ENABLED) == "true"
