"""users.username_key: the PRECIS case-mapped name, unique per tenant (core/precis_usernames.py).

Existing names get their key here. A name PRECIS refuses keeps no key (NULL); of existing names that
differ only in case or width, the oldest keeps the key and the others none, so the upgrade never fails
and every existing user keeps logging in under the name stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from totpadmin.core.precis_usernames import name_key

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Printable ASCII without space: PRECIS keeps such a name as it is and its key is the name in lower case
# (core/precis_usernames.py takes the same shortcut); one UPDATE does them all. translate, not lower, on
# PostgreSQL: its lower() follows the database's locale (Turkish 'I').
_PLAIN_ASCII = {
    "sqlite": ("lower(username)", "username NOT GLOB '*[^!-~]*'"),
    "postgresql": ("translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')",
                   "username ~ '^[!-~]+$'"),
}
_BATCH = 10_000


def upgrade() -> None:
    op.add_column("users", sa.Column("username_key", sa.String(255)))
    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("username", sa.String),
                     sa.column("tenant_id", sa.Integer), sa.column("username_key", sa.String))
    if conn.dialect.name in _PLAIN_ASCII:
        lowered, plain = _PLAIN_ASCII[conn.dialect.name]
        conn.execute(sa.text(f"UPDATE users SET username_key = {lowered} WHERE {plain}"))
    # The others (every name, on other databases) through PRECIS, a page at a time.
    last = 0
    while True:
        rows = conn.execute(sa.select(users.c.id, users.c.username)
                            .where(users.c.id > last, users.c.username_key.is_(None))
                            .order_by(users.c.id).limit(_BATCH)).all()
        if not rows:
            break
        last = rows[-1][0]
        keys = [{"b_id": uid, "b_key": key} for uid, name in rows if (key := name_key(name)) is not None]
        if keys:
            conn.execute(users.update().where(users.c.id == sa.bindparam("b_id"))
                         .values(username_key=sa.bindparam("b_key")), keys)
    # Names that differ only in case or width: all but the oldest lose their key.
    clashes = conn.execute(sa.select(users.c.tenant_id, users.c.username_key, sa.func.min(users.c.id))
                           .where(users.c.username_key.is_not(None))
                           .group_by(users.c.tenant_id, users.c.username_key)
                           .having(sa.func.count() > 1)).all()
    for tenant_id, key, oldest in clashes:
        conn.execute(users.update().where(users.c.tenant_id == tenant_id, users.c.username_key == key,
                                          users.c.id != oldest).values(username_key=None))
    op.create_index("uq_users_tenant_id_username_key", "users", ["tenant_id", "username_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_tenant_id_username_key", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("username_key")
