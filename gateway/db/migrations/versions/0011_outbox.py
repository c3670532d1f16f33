"""the durable outbox: alert changes to deliver, and one delivery per channel

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(32), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("routed", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_outbox_changes_unrouted", "outbox_changes", ["routed", "id"])
    op.create_table(
        "outbox_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("change_id", sa.Integer(), sa.ForeignKey("outbox_changes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("address", sa.String(320), nullable=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_outbox_deliveries_due", "outbox_deliveries", ["state", "next_at"])


def downgrade() -> None:
    op.drop_table("outbox_deliveries")
    op.drop_table("outbox_changes")
