"""totp-admin: a WSO2-compatible TOTPAdminService on a secure TOTP core."""

__version__ = "0.1.0"
