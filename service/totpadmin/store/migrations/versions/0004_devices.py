"""totp_devices and device_challenges: several named TOTP devices per user, and the authIds of the
device API (core/devices.py).

Existing enrolments need no row: a user whose claims hold an active secret and who has no primary device
row has the primary device "default" (store/accounts.py), so nobody re-enrolls.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "totp_devices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("pending_expires_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("user_id", "name"),
    )
    op.create_index("ix_totp_devices_user_id", "totp_devices", ["user_id"])
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


def downgrade() -> None:
    op.drop_table("device_challenges")
    op.drop_table("totp_devices")
