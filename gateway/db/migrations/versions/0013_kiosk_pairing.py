"""kiosk terminals: one-time pairing codes, check-ins by the terminal's own reference
(a replay answers the first decision), and the person a kiosk event is about

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pairing_codes",
        sa.Column("code_hash", sa.String(128), primary_key=True),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_pairing_codes_device", "pairing_codes", ["device_id"])
    with op.batch_alter_table("kiosk_events") as b:
        b.add_column(sa.Column("person_id", sa.String(64), nullable=True))
    op.create_index("ix_kiosk_events_person", "kiosk_events", ["person_id", "received_at"])
    op.create_table(
        "kiosk_submissions",
        sa.Column("kiosk_id", sa.String(64), primary_key=True),
        sa.Column("client_ref", sa.String(100), primary_key=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("kiosk_submissions")
    op.drop_index("ix_kiosk_events_person", table_name="kiosk_events")
    with op.batch_alter_table("kiosk_events") as b:
        b.drop_column("person_id")
    op.drop_index("ix_pairing_codes_device", table_name="pairing_codes")
    op.drop_table("pairing_codes")
