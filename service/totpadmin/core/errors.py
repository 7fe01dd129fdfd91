"""Errors the domain raises. The api layer maps each to the fault a legacy client expects."""


class TotpAdminError(Exception):
    """Base class. ``str(err)`` is safe to show a caller: it never holds secrets, codes or passwords."""


class InvalidUsername(TotpAdminError):
    """The username is missing, empty or malformed."""


class UnknownTenant(TotpAdminError):
    """No tenant has this domain."""

    def __init__(self, domain: str):
        super().__init__(f"Invalid tenant domain {domain}")
        self.domain = domain


class UnknownUser(TotpAdminError):
    """The tenant has no user of this name."""

    def __init__(self, username: str):
        super().__init__(f"User {username} does not exist")
        self.username = username


class UserExists(TotpAdminError):
    def __init__(self, username: str, *, differing_in_case: bool = False):
        super().__init__(f"User {username} already exists" + (
            " (usernames that differ only in case or width name the same user)" if differing_in_case else ""))


class TenantExists(TotpAdminError):
    def __init__(self, domain: str):
        super().__init__(f"Tenant {domain} already exists")


class AuthenticationFailed(TotpAdminError):
    """Wrong username or password. Deliberately says nothing about which."""

    def __init__(self):
        super().__init__("Access Denied. Authentication failed - Invalid credentials provided.")


class NotAuthorized(TotpAdminError):
    """The caller may not act on this user."""

    def __init__(self):
        super().__init__("User is not authorized perform the operation")


class SecretUnreadable(TotpAdminError):
    """A stored secret failed to decrypt: wrong or missing key, or tampered data."""


class StoreUnavailable(TotpAdminError):
    """The database could not be reached or failed mid-transaction; nothing was changed.

    ``str()`` is what callers of the service see; ``cause`` (the driver's one-line reason) is for the
    operator's terminal and log only.
    """

    def __init__(self, cause: str = ""):
        super().__init__("The TOTP store is unavailable; try again later")
        self.cause = cause


class InvalidTenantDomain(TotpAdminError):
    def __init__(self, domain: str):
        super().__init__(f"{domain!r} is not a valid tenant domain (letters, digits, '-' and '.', like abc.com)")


class UserLocked(TotpAdminError):
    """Too many wrong codes: no code is checked until the lockout ends or an admin unlocks."""

    def __init__(self, until: float):
        super().__init__("TOTP is locked after too many failed attempts; try again later or ask an admin to unlock it")
        self.until = until


class TotpNotEnabled(TotpAdminError):
    def __init__(self, *, mandatory: bool):
        super().__init__("TOTP is mandatory but not enabled for the user" if mandatory
                         else "TOTP is not enabled for the user")


class NoPendingSecret(TotpAdminError):
    def __init__(self, *, expired: bool = False):
        super().__init__("The secret from generateSecret has expired; call generateSecret again" if expired
                         else "There is no secret to enable; call generateSecret first")


class SecretRetrievalDisabled(TotpAdminError):
    def __init__(self):
        super().__init__("Retrieving secret keys is disabled (allowSecretKeyRetrieval=false)")


class PasswordRefused(TotpAdminError):
    """A new password the policy refuses (core/password_policy.py); the message says why, never the password."""


class LastSuperAdmin(TotpAdminError):
    """Removing or demoting this admin would leave carbon.super, and so the service, without one."""

    def __init__(self, username: str):
        super().__init__(f"User {username} is the last admin of carbon.super and cannot be removed or demoted; "
                         "make another user admin first (totp-admin user role NAME admin)")


# --- devices (core/devices.py) ---


class InvalidDeviceName(TotpAdminError):
    def __init__(self):
        super().__init__("A device name is 1 to 64 printable characters, without '/' or spaces at either end")


class DeviceNameTaken(TotpAdminError):
    def __init__(self, name: str):
        super().__init__(f"The user already has an active device named {name!r}")


class TooManyDevices(TotpAdminError):
    def __init__(self, limit: int):
        super().__init__(f"The user already has {limit} devices (maxDevicesPerUser); remove one first")
        self.limit = limit


class UnknownDevice(TotpAdminError):
    def __init__(self, name: str):
        super().__init__(f"The user has no device named {name!r}")


class DeviceNotPending(TotpAdminError):
    def __init__(self):
        super().__init__("The device is already active")


class DeviceNotActive(TotpAdminError):
    def __init__(self):
        super().__init__("The device is not active yet: validate its first code to activate it")


class DevicePendingExpired(TotpAdminError):
    def __init__(self):
        super().__init__("The device was not activated in time; remove it and add it again")


class FirstDevicePending(TotpAdminError):
    def __init__(self):
        super().__init__("The user's first device is not active yet: validate its code, or remove it, first")


class UnknownChallenge(TotpAdminError):
    def __init__(self):
        super().__init__("No such authId")


class ChallengeGone(TotpAdminError):
    def __init__(self, *, spent: bool):
        super().__init__("The authId has been used already" if spent else "The authId has expired")
        self.spent = spent


class EnrollmentRequired(TotpAdminError):
    """The application requires TOTP and the user has no active device."""

    def __init__(self):
        super().__init__("The user has no active TOTP device and this application requires one: enroll a device first")


class TotpOffForApplication(TotpAdminError):
    def __init__(self):
        super().__init__("TOTP is turned off for this application (client --totp off)")


class UnsupportedDeviceType(TotpAdminError):
    def __init__(self):
        super().__init__("deviceType must be TOTP")


class UnknownClient(TotpAdminError):
    """No OAuth2 client of this name in the tenant."""

    def __init__(self, name: str, tenant: str):
        super().__init__(f"OAuth2 client {name} does not exist in {tenant}")


class ClientExists(TotpAdminError):
    def __init__(self, name: str, tenant: str):
        super().__init__(f"OAuth2 client {name} already exists in {tenant}")


class ScopeRefused(TotpAdminError):
    """A token request asked for a scope the service does not know or the client was not granted."""

    def __init__(self):
        super().__init__("The requested scope is unknown or not granted to this client")


# --- sessions (core/sessions.py) ---


class SessionEnded(TotpAdminError):
    def __init__(self):
        super().__init__("The session has ended; sign in again")


class AcrTooLow(TotpAdminError):
    """The session's assurance level is below what the call needs (core/sessions.py)."""

    def __init__(self, needed: int):
        super().__init__(f"This needs a session at assurance level {needed}: enter a code from your authenticator "
                         "app first")
        self.needed = needed


class NoQrCode(TotpAdminError):
    def __init__(self):
        super().__init__("No QR Code URL registered for the authenticated user")


class TotpRequired(TotpAdminError):
    def __init__(self):
        super().__init__("TOTP is required for this user (by the policy, an application, or the user's own choice of "
                         "MFA method): it cannot be removed")
