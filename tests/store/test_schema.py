"""Schema migrations: Alembic's revisions match the models; serve refuses an out-of-date schema."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from totpadmin.store import schema
from totpadmin.store.database import Database
from totpadmin.store.models import Base


def test_migrations_create_exactly_the_models(database, tmp_path):
    (tmp_path / "data").mkdir(exist_ok=True)
    db = Database(database.url)
    try:
        db.create_schema()
        assert schema.current_revision(db.engine) == schema.head_revision()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], diff
    finally:
        db.dispose()


def test_serve_refuses_an_out_of_date_schema_until_db_upgrade(make_server):
    srv = make_server()
    assert srv.stop() == 0
    engine = sa.create_engine(srv.database.url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()

    before = len(srv.log())
    srv.start(wait=False)
    assert srv.proc.wait(timeout=30) == 2
    message = srv.log()[before:]
    assert "totp-admin db upgrade" in message and "0000" in message and "Traceback" not in message

    status = srv.cli("db", "status", check=False)
    assert status.returncode == 1 and "0000" in status.stdout
    with engine.begin() as conn:  # as if revision 0000 had been the previous release's
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :head"), {"head": schema.head_revision()})
    engine.dispose()
    assert srv.cli("db", "upgrade").stdout.startswith(f"schema at revision {schema.head_revision()}")
    srv.start()
    r = srv.session().post(srv.url + "/resetTOTP", data={"username": "admin"})
    assert r.status_code == 200
