"""uploads area: tus upload state

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import gateway.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", gateway.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", gateway.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", gateway.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("evidence_id", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
    )
    op.create_index("ix_uploads_device_id", "uploads", ["device_id"])
    op.create_index("ix_uploads_state", "uploads", ["state"])
    op.create_index("ix_uploads_expires_at", "uploads", ["expires_at"])


def downgrade() -> None:
    op.drop_table("uploads")
