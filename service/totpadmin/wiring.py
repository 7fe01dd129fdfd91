"""Putting the service's parts together before it serves, or for a management command: the store with
its schema, the key ring that encrypts stored secrets, and the first admin.

Imports neither Twisted nor spyne, so that ``totp-admin user list`` and the other management commands
start without the server (tests/architecture/test_architecture.py checks it).
"""

from __future__ import annotations

import os
import secrets
import sys

from .config.errors import ConfigError
from .config.settings import Settings
from .core import keyring
from .core.errors import PasswordRefused
from .core.password_policy import check_new_password
from .core.passwords import PasswordHasher
from .core.principal import ADMIN
from .core.secretbox import SecretBox
from .core.usernames import SUPER_TENANT, UserRef
from .store.database import Database

KEY_FILE = "secret-keys.json"  # in the data directory
ENV_ADMIN_PASSWORD = "TOTP_ADMIN_PASSWORD"


def open_database(settings: Settings, *, with_keys: bool) -> Database:
    """The store with its schema; ``with_keys`` also opens (or first creates) the key ring, refusing one
    that lacks a key the stored secrets were sealed with."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
    db.create_schema()
    if with_keys:
        key_file = settings.data_dir / KEY_FILE
        ring = keyring.load_or_create(key_file, needed=db.key_ids_in_use())
        # Reloaded when `totp-admin keys rotate` changes the file while this process runs.
        db.box = SecretBox(ring, reload=keyring.Reloader(key_file, ring))
    return db


class _NotShown:
    def __repr__(self) -> str:
        return "(not shown)"


def bootstrap_admin(db: Database, hasher: PasswordHasher, out=sys.stdout) -> None:
    """On a store with no users: ``admin`` in carbon.super, password from the environment or random.
    :class:`ConfigError` (naming the variable, not its value) if the password policy refuses the
    environment's; it is not looked at once the store has users."""
    with db.transaction() as transaction:
        if transaction.users.count():
            return
        password = os.environ.get(ENV_ADMIN_PASSWORD) or None
        generated = password is None
        if generated:
            password = secrets.token_urlsafe(18)
        else:
            try:
                check_new_password(password, "admin")
            except PasswordRefused as err:
                raise ConfigError("environment", ENV_ADMIN_PASSWORD, _NotShown(),
                                  f"{err} (or leave it unset for a generated password)") from None
        transaction.users.add_user(UserRef(SUPER_TENANT, "admin"), hasher.hash(password), ADMIN)
    if generated:
        # Printed once to the terminal, never logged.
        print(f"Created user 'admin' in {SUPER_TENANT} with password: {password}", file=out, flush=True)
    else:
        print(f"Created user 'admin' in {SUPER_TENANT} with the password from {ENV_ADMIN_PASSWORD}", file=out, flush=True)
