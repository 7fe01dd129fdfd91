"""The ``totp-admin`` command."""
