"""``totp-admin db``: the database schema's version."""

from __future__ import annotations

from ..config.loader import store_settings
from ..store import schema
from ..store.database import Database


def register(commands, add_store_options) -> None:
    db = commands.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    add_store_options(db.add_parser("upgrade", help="create the schema, or upgrade it to this version's"))
    add_store_options(db.add_parser("status", help="show the schema's revision and the one this version needs"))


def run(args) -> int:
    settings = store_settings(data_dir=args.data_dir, database_url=args.database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    try:
        if args.action == "upgrade":
            before = schema.current_revision(db.engine)
            db.create_schema(upgrade=True)
            after = schema.current_revision(db.engine)
            print(f"schema at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))
            return 0
        current, head = schema.current_revision(db.engine), schema.head_revision()
        print(f"database revision: {current or '(none)'}\nthis version needs: {head}")
        return 0 if current == head else 1
    finally:
        db.dispose()
