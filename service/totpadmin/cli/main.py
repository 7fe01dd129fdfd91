"""``totp-admin``: serve the service and manage its users and tenants.

Passwords are read from standard input (one line) or prompted for, never taken from the command line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from ..config.errors import ConfigError
from ..config.loader import load_settings, store_settings
from ..config.settings import TotpSettings
from ..core.errors import StoreUnavailable, TotpAdminError
from ..core.keyring import KeyFileError
from ..core.password_policy import check_new_password
from ..core.passwords import PasswordHasher
from ..core.precis_usernames import new_username
from ..core.principal import ROLES, USER
from ..core.usernames import UserRef, parse_username
from ..core.validation import Validation
from ..store.schema import SchemaOutdated
from ..wiring import open_database
from . import audit as audit_cli
from . import clients as clients_cli
from . import db as db_cli
from . import keys as keys_command
from . import qr as qr_cli
from .broken_pipe import quiet_on_broken_pipe


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="data directory (default: $TOTP_DATA_DIR or ./data)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: $TOTP_DATABASE_URL or SQLite in the data dir)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="totp-admin", description=__doc__.splitlines()[0].replace("``", ""))
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run TOTPAdminService over HTTPS")
    _add_store_options(serve)
    serve.add_argument("--conf-dir", type=Path, help="directory with totp.properties and carbon.xml (default: $TOTP_CONF_DIR or ./conf)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves other "
                            "hosts over every IPv4 interface)")
    serve.add_argument("--port", type=int, help="port (default: 9443 + carbon.xml Ports/Offset)")
    serve.add_argument("--http", action="store_true", help="plain HTTP, for use behind a TLS-terminating proxy")
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate chain (default: generated in DATA_DIR/tls)")
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    serve.add_argument("--workers", type=int, default=1,
                       help="processes sharing the port (default 1); each worker i serves metrics on metrics-port + i")
    serve.add_argument("--cpu-affinity", default="auto", metavar="auto|off|CPUS",
                       help="run each worker's reactor and database threads on one CPU: auto (default) spreads the "
                            "workers over the CPUs, a list such as 0-3,6 gives worker i the i-th, off leaves it "
                            "to the kernel")
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)  # set by the supervisor for its workers
    # Also set by the supervisor: the worker stops when it reaches end-of-file (server/supervisor_pipe.py).
    # A worker started by hand without it serves until signalled.
    serve.add_argument("--supervisor-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port (default: none)")
    serve.add_argument("--metrics-host", default="127.0.0.1",
                       help="address of the metrics listener (default 127.0.0.1; name another only on purpose)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument("--log-format", default="text", choices=["text", "json"],
                       help="text lines (default) or one JSON object per line")

    user = commands.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a user; the password is read from stdin or prompted for")
    add.add_argument("username", help="name, or name@tenant.domain for a tenant user")
    add.add_argument("--role", choices=ROLES, default=USER, help=f"role (default: {USER})")
    passwd = user.add_parser("passwd", help="change a user's password (read from stdin or prompted for)")
    passwd.add_argument("username")
    remove = user.add_parser("remove", help="remove a user and their TOTP data")
    remove.add_argument("username")
    role = user.add_parser("role", help="change a user's role (carbon.super keeps at least one admin)")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    unlock = user.add_parser("unlock", help="end a TOTP lockout after too many wrong codes")
    unlock.add_argument("username")
    listing = user.add_parser("list", help="list users: name, role and stable id (the self-service APIs' identity id)")
    listing.add_argument("--tenant", help="only this tenant's users")
    for sub in (add, passwd, remove, role, unlock, listing):
        _add_store_options(sub)

    audit_cli.register(commands, _add_store_options)
    qr_cli.register(commands, _add_store_options)
    db_cli.register(commands, _add_store_options)
    clients_cli.register(commands, _add_store_options)

    tenant = commands.add_parser("tenant", help="manage tenants").add_subparsers(dest="action", required=True)
    tadd = tenant.add_parser("add", help="add a tenant")
    tadd.add_argument("domain", help="tenant domain, e.g. abc.com")
    tlist = tenant.add_parser("list", help="list tenants and their user counts")
    for sub in (tadd, tlist):
        _add_store_options(sub)
    keys_command.register(commands, _add_store_options)
    return parser


def read_password(prompt: str = "Password: ") -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise SystemExit("totp-admin: the passwords do not match")
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise SystemExit("totp-admin: the password is empty")
    return password


@quiet_on_broken_pipe
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for serve --workers to start its workers
    os.umask(0o077)  # the store, keys and certificates we create are readable by their owner only
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "db":
            return db_cli.run(args)
        if args.command == "keys":
            return keys_command.run(args)
        if args.command == "client":
            return clients_cli.run(args)
        return _manage(args)
    except (ConfigError, KeyFileError) as err:
        print(f"totp-admin: configuration error: {err}", file=sys.stderr)
        return 2
    except SchemaOutdated as err:
        print(f"totp-admin: {err}", file=sys.stderr)
        return 2
    except StoreUnavailable as err:
        print(f"totp-admin: the database is unavailable: {err.cause or 'no reason given'}", file=sys.stderr)
        return 1
    except TotpAdminError as err:
        print(f"totp-admin: {err}", file=sys.stderr)
        return 1


def _serve(args) -> int:
    from ..server import app, cpu_affinity, logs, tls

    logs.configure(args.log_level, args.log_format)
    settings = load_settings(
        data_dir=args.data_dir, conf_dir=args.conf_dir, database_url=args.database_url,
        host=args.host, port=args.port, https=not args.http, tls_cert=args.tls_cert, tls_key=args.tls_key,
        metrics_port=args.metrics_port, metrics_host=args.metrics_host, workers=args.workers,
        listen_fd=args.listen_fd, supervisor_fd=args.supervisor_fd, cpu_affinity=cpu_affinity.parse(args.cpu_affinity),
    )
    cpu_affinity.check(settings.cpu_affinity)
    if settings.workers < 1:
        raise ConfigError("command line", "workers", settings.workers, "must be at least 1")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("command line", "tls-cert/tls-key", None, "give both or neither")
    try:
        if settings.workers > 1:
            from ..server import workers

            return workers.supervise(settings, args.argv)
        return app.run(settings)
    except tls.TlsConfigError as err:
        print(f"totp-admin: TLS configuration error: {err}", file=sys.stderr)
        return 2


def _manage(args) -> int:
    # Ask for the password before the transaction: a prompt must not hold a database lock.
    password = None
    if args.command == "user" and args.action in ("add", "passwd"):
        ref = parse_username(args.username)
        if args.action == "add":  # a name PRECIS refuses is refused before the prompt
            ref = UserRef(ref.tenant, new_username(ref.name).stored)
        password = read_password("New password: " if args.action == "passwd" else "Password: ")
        check_new_password(password, ref.name)
    # Only the QR code needs to decrypt claims, so only it opens the key ring.
    db = open_database(store_settings(data_dir=args.data_dir, database_url=args.database_url),
                       with_keys=args.command == "qr")
    try:
        if args.command == "audit":
            return audit_cli.run(args, db)
        with db.transaction() as transaction:
            if args.command == "qr":
                account = transaction.accounts.find(parse_username(args.username), for_update=False)
                return qr_cli.run(args, qr_cli.otpauth_url(account))
            if args.command == "tenant":
                return _tenant(args, transaction.users)
            return _user(args, transaction, password)
    finally:
        db.dispose()


def _tenant(args, users) -> int:
    if args.action == "add":
        users.add_tenant(args.domain)
        print(f"added tenant {args.domain.lower()}")
    else:
        for domain, count in users.tenants():
            print(f"{domain}\t{count} user{'' if count == 1 else 's'}")
    return 0


def _user(args, transaction, password: str | None) -> int:
    users = transaction.users
    if args.action == "list":
        for record, user_id in users.users_with_ids(args.tenant.lower() if args.tenant else None):
            print(f"{record.ref.qualified}\t{record.role}\t{user_id}")
        return 0
    ref = parse_username(args.username)
    if args.action == "add":
        ref = users.add_user(ref, PasswordHasher().hash(password), args.role)
        print(f"added user {ref.qualified} ({args.role})")
    elif args.action == "passwd":
        users.set_password(ref, PasswordHasher().hash(password))
        print(f"changed the password of {ref.qualified}")
    elif args.action == "remove":
        users.remove_user(ref)
        print(f"removed user {ref.qualified}")
    elif args.action == "role":
        changed = users.set_role(ref, args.role)
        print(f"changed the role of {ref.qualified} to {args.role}" if changed
              else f"{ref.qualified} already has the role {args.role}")
    elif args.action == "unlock":
        Validation(TotpSettings()).unlock(transaction.accounts.find(ref))
        print(f"unlocked TOTP of {ref.qualified}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
