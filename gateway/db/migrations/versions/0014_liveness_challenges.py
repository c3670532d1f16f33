"""liveness_challenges: active-liveness challenges issued to kiosks (single use, short-lived)

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "liveness_challenges",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_liveness_challenges_device_id", "liveness_challenges", ["device_id"])
    op.create_index("ix_liveness_challenges_expires_at", "liveness_challenges", ["expires_at"])


def downgrade() -> None:
    op.drop_table("liveness_challenges")
