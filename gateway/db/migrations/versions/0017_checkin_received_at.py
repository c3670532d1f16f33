"""checkins.received_at: a check-in queued at a terminal while the gateway was out of reach
counts at the time it was made (`at`); when it reached the gateway is kept beside it

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checkins") as batch:
        batch.add_column(sa.Column("received_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkins") as batch:
        batch.drop_column("received_at")
