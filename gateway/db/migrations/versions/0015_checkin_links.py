"""remote check-in: one-time links an officer sends a person (token stored hashed), and the
phone's position with its verdict against the person's zones on the check-in

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkin_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False, server_default="root"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("busy_since", UTCDateTime(), nullable=True),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("checkin_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_checkin_links_person_id", "checkin_links", ["person_id"])
    with op.batch_alter_table("checkins") as b:
        b.add_column(sa.Column("position", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkins") as b:
        b.drop_column("position")
    op.drop_index("ix_checkin_links_person_id", table_name="checkin_links")
    op.drop_table("checkin_links")
