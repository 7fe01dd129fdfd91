"""Sessions of the self-service APIs (core/sessions.py), and each user's stable public id (users.uuid),
given to the users that exist at the upgrade.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A column added and an index, never a rebuilt table: on SQLite, rebuilding users (batch mode) would
    # drop it, and with foreign keys on that deletes every user's claims, state and devices.
    op.add_column("users", sa.Column("uuid", sa.String(36), nullable=True))
    users = sa.table("users", sa.column("id", sa.Integer()), sa.column("uuid", sa.String(36)))
    conn = op.get_bind()
    for (user_id,) in conn.execute(sa.select(users.c.id)).all():
        conn.execute(sa.update(users).where(users.c.id == user_id).values(uuid=str(uuid.uuid4())))
    op.create_index("uq_users_uuid", "users", ["uuid"], unique=True)
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("totp_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_index("ix_sessions_last_seen_at", "sessions", ["last_seen_at"])


def downgrade() -> None:
    op.drop_table("sessions")
    op.drop_index("uq_users_uuid", "users")
    op.execute("ALTER TABLE users DROP COLUMN uuid")  # SQLite 3.35+ and PostgreSQL: no rebuilt table
