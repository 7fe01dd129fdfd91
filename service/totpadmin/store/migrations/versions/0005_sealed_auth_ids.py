"""spent_auth_ids replaces device_challenges: an authId of the device API is now a sealed token that
names its user, device and application (core/device_challenges.py), so nothing is stored when one is
issued; only a spent one is remembered, until it expires. AuthIds issued before the upgrade (a few
minutes' worth at most) stop working: their sign-in is started again.

totp_devices gets AUTOINCREMENT on SQLite (rebuilt, rows kept), so that a removed device's id never
names a later device (PostgreSQL's sequence never reuses one anyway).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("device_challenges")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("totp_devices", recreate="always",
                                  table_kwargs={"sqlite_autoincrement": True}):
            pass
    op.create_table(
        "spent_auth_ids",
        sa.Column("auth_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_spent_auth_ids_expires_at", "spent_auth_ids", ["expires_at"])


def downgrade() -> None:
    op.drop_table("spent_auth_ids")
    op.create_table(
        "device_challenges",
        sa.Column("auth_hash", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("device_id", sa.Integer(), sa.ForeignKey("totp_devices.id", ondelete="CASCADE"), nullable=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("spent", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_device_challenges_user_id", "device_challenges", ["user_id"])
    op.create_index("ix_device_challenges_device_id", "device_challenges", ["device_id"])
    op.create_index("ix_device_challenges_expires_at", "device_challenges", ["expires_at"])
