#!/usr/bin/env python3
"""Bulk-load N users with enrolled TOTP into a totp-admin store, fast (for scripts/bench).

Each user gets what ``initTOTP`` would have stored: a random secret, the claims ``secretkey`` (sealed),
``encoding`` (clear), ``qrcodeurl`` (sealed, the legacy Base64 of the otpauth URL) and ``totpEnabled``
``true``, plus an empty ``totp_state`` row (as after the user's first validateTOTP; ``--no-state``
leaves it out). Secrets are sealed with the data directory's key ring exactly as
``store/accounts.py`` does: :meth:`SecretBox.seal` with ``associated_data(tenant_id, user_id, uri)``.
All users share one precomputed Argon2id password hash (of ``--password``).

Rows go in with SQLAlchemy Core ``INSERT``s of ``--batch`` users per transaction. On SQLite the
loader's own connection runs with ``PRAGMA synchronous=OFF`` (the server's connections are not
affected). A progress bar goes to stderr when it is a terminal (tqdm, as ``totp-admin keys rotate``); the
summary to stdout.

    .venv/bin/python scripts/bench_seed.py --data-dir /tmp/d --users 1000000
    .venv/bin/python scripts/bench_seed.py --data-dir /tmp/d --database-url postgresql+psycopg://... --users 10000

Usernames are ``<prefix><number>`` with the number zero-padded to 7 digits (``bench0000001`` ...), in
``--tenant`` (default carbon.super; created if missing). Existing users of the same names make it fail
(the tenant and username are unique): use a fresh store or ``--start``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, event, func, insert, select, text

from totpadmin.cli.progress import ProgressBar
from totpadmin.config.loader import load_settings
from totpadmin.config.settings import TotpSettings
from totpadmin.core import claims, keyring, secret_codec
from totpadmin.core.otpauth import legacy_base64
from totpadmin.core.enrollment import Enrollment
from totpadmin.core.passwords import PasswordHasher
from totpadmin.core.precis_usernames import name_key
from totpadmin.core.principal import USER
from totpadmin.core.secretbox import SecretBox, associated_data
from totpadmin.core.usernames import SUPER_TENANT, UserRef
from totpadmin.wiring import KEY_FILE
from totpadmin.store.database import Database
from totpadmin.store.models import Claim, Tenant, TotpState, User

NAME_DIGITS = 7


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, required=True, help="data directory (key ring; SQLite store unless --database-url)")
    p.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")
    p.add_argument("--conf-dir", type=Path, help="conf dir whose totp.properties shapes the secrets and URLs (default: built-in defaults)")
    p.add_argument("--users", type=int, default=1_000_000, help="how many users (default 1000000)")
    p.add_argument("--start", type=int, default=1, help="number of the first user (default 1)")
    p.add_argument("--prefix", default="bench", help="username prefix (default bench)")
    p.add_argument("--tenant", default=SUPER_TENANT, help=f"tenant domain (default {SUPER_TENANT})")
    p.add_argument("--password", default="bench-user-password", help="every user's password (one shared hash)")
    p.add_argument("--batch", type=int, default=10_000, help="users per INSERT batch / transaction (default 10000)")
    p.add_argument("--no-state", action="store_true", help="do not create totp_state rows")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none unless stderr is a terminal)")
    return p.parse_args(argv)


def username(prefix: str, number: int) -> str:
    return f"{prefix}{number:0{NAME_DIGITS}d}"


def loader_engine(url: str):
    """The loader's own engine; on SQLite its connection skips fsync (a crash loses the load, nothing else)."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA cache_size=-262144")  # 256 MiB for this connection's index pages
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    return engine


def seed(args: argparse.Namespace) -> dict:
    os.umask(0o077)  # the store and key file are the owner's only, as totp-admin makes them
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{data_dir / 'totp-admin.db'}"
    totp = load_settings(data_dir=data_dir, conf_dir=args.conf_dir).totp if args.conf_dir else TotpSettings()

    # The schema (as `totp-admin db upgrade` makes it; refuses an outdated one) and the key ring
    # (created if missing, refused if it lacks a key stored values were sealed with), as the server does.
    db = Database(url)
    db.create_schema()
    ring = keyring.load_or_create(data_dir / KEY_FILE, needed=db.key_ids_in_use())
    db.dispose()
    box = SecretBox(ring)  # no reloader: nobody rotates keys during a bench load
    enrollment = Enrollment(totp)
    password_hash = PasswordHasher().hash(args.password)
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as models._now

    engine = loader_engine(url)
    users_t, claims_t, state_t, tenants_t = User.__table__, Claim.__table__, TotpState.__table__, Tenant.__table__
    with engine.begin() as conn:
        tenant_id = conn.scalar(select(tenants_t.c.id).where(tenants_t.c.domain == args.tenant))
        if tenant_id is None:
            conn.execute(insert(tenants_t).values(domain=args.tenant, created_at=now))
            tenant_id = conn.scalar(select(tenants_t.c.id).where(tenants_t.c.domain == args.tenant))
        next_id = (conn.scalar(select(func.max(users_t.c.id))) or 0) + 1

    progress = ProgressBar("seeding", "users", enabled=not args.quiet)
    progress(0, args.users)
    started = time.monotonic()
    done = 0
    try:
        while done < args.users:
            count = min(args.batch, args.users - done)
            user_rows, claim_rows, state_rows = [], [], []
            for k in range(count):
                uid = next_id + done + k
                name = username(args.prefix, args.start + done + k)
                ref = UserRef(args.tenant, name)
                secret_text = secret_codec.encode_secret(secret_codec.new_secret(totp.secret_bytes), totp.encoding)
                qr = legacy_base64(enrollment.qr_url(ref, secret_text), chunked=totp.chunked_base64)
                key_id, sealed_secret = box.seal(secret_text, associated_data(tenant_id, uid, claims.SECRET_KEY))
                qr_key_id, sealed_qr = box.seal(qr, associated_data(tenant_id, uid, claims.QR_CODE_URL))
                user_rows.append({"id": uid, "tenant_id": tenant_id, "username": name, "username_key": name_key(name),
                                  "password_hash": password_hash, "role": USER, "created_at": now})
                claim_rows += (
                    {"user_id": uid, "uri": claims.SECRET_KEY, "value": sealed_secret, "key_id": key_id, "updated_at": now},
                    {"user_id": uid, "uri": claims.ENCODING, "value": totp.encoding, "key_id": None, "updated_at": now},
                    {"user_id": uid, "uri": claims.QR_CODE_URL, "value": sealed_qr, "key_id": qr_key_id, "updated_at": now},
                    {"user_id": uid, "uri": claims.TOTP_ENABLED, "value": "true", "key_id": None, "updated_at": now},
                )
                if not args.no_state:
                    state_rows.append({"user_id": uid, "last_step": None, "failures": 0, "lockouts": 0,
                                       "locked_until": None, "pending_expires_at": None})
            with engine.begin() as conn:
                conn.execute(insert(users_t), user_rows)
                conn.execute(insert(claims_t), claim_rows)
                if state_rows:
                    conn.execute(insert(state_t), state_rows)
            done += count
            progress(done, args.users)
        if engine.dialect.name == "postgresql":
            # Explicit ids leave the serial sequence behind: move it past them for `user add`.
            with engine.begin() as conn:
                conn.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"))
    finally:
        progress.close()
        engine.dispose()
    elapsed = time.monotonic() - started
    return {"users": done, "seconds": elapsed, "rate": done / elapsed if elapsed else 0.0,
            "first": username(args.prefix, args.start), "last": username(args.prefix, args.start + done - 1)}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.users < 1 or args.batch < 1 or args.start < 0:
        print("bench_seed: --users and --batch must be at least 1, --start at least 0", file=sys.stderr)
        return 2
    result = seed(args)
    print(f"seeded {result['users']:,} users ({result['first']} .. {result['last']}) in {result['seconds']:.1f} s "
          f"({result['rate']:,.0f} users/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
