"""``totp-admin client``: the OAuth2 clients (applications) of the JSON APIs (docs/oauth2.md). A secret
is printed once, when it is made, and stored only as its Argon2id hash."""

from __future__ import annotations

from ..config.loader import store_settings
from ..core.application import REQUIRED, SCOPES, TOTP_POLICIES, scope_text
from ..core.passwords import PasswordHasher
from ..operations.oauth import OAuthClients
from ..wiring import open_database


def register(commands, add_store_options) -> None:
    client = commands.add_parser("client", help="manage OAuth2 clients (applications)").add_subparsers(
        dest="action", required=True)
    add = client.add_parser("add", help="add a client; prints its client_id and secret (shown once)")
    add.add_argument("--scope", action="append", choices=SCOPES,
                     help=f"a scope it may ask for (repeatable; default: all of {', '.join(SCOPES)})")
    add.add_argument("--totp", choices=TOTP_POLICIES, default=REQUIRED,
                     help=f"TOTP as the second factor for this application's users (default: {REQUIRED})")
    listing = client.add_parser("list", help="list clients (never their secrets)")
    listing.add_argument("--tenant", help="only this tenant's clients")
    remove = client.add_parser("remove", help="remove a client; its access tokens stop working at once")
    rotate = client.add_parser("rotate-secret", help="a new secret (shown once); the old one and its tokens stop "
                                                     "working at once")
    for sub in (add, remove, rotate):
        sub.add_argument("name", help="the client's name, unique in its tenant (e.g. shop-frontend)")
        sub.add_argument("--tenant", required=True, help="the client's tenant domain, e.g. carbon.super")
    for sub in (add, listing, remove, rotate):
        add_store_options(sub)


def run(args) -> int:
    db = open_database(store_settings(data_dir=args.data_dir, database_url=args.database_url), with_keys=False)
    try:
        clients = OAuthClients(db, PasswordHasher())
        if args.action == "add":
            new = clients.add(args.name, args.tenant, args.scope, args.totp)
            print(f"added client {args.name} in {args.tenant.lower()}")
            print(f"client_id: {new.client_id}")
            print(f"client_secret: {new.client_secret}")
            print("(the secret is shown only this once)")
        elif args.action == "list":
            for client in clients.list(args.tenant):
                print(f"{client.tenant}\t{client.name}\t{client.client_id}\t{scope_text(client.scopes)}\t"
                      f"totp={client.totp_policy}")
        elif args.action == "remove":
            clients.remove(args.name, args.tenant)
            print(f"removed client {args.name} of {args.tenant.lower()}")
        else:
            secret = clients.rotate_secret(args.name, args.tenant)
            print(f"new client_secret of {args.name}: {secret}")
            print("(the secret is shown only this once; the old one and its tokens no longer work)")
        return 0
    finally:
        db.dispose()
