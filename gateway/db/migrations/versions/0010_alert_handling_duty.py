"""alert handling as the corrections units work it (assigned, assessed, disposed, fed back)
and the duty roster

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

HANDLING = (
    ("assigned_unit_id", sa.String(64)), ("assignee", sa.String(64)), ("assigned_at", UTCDateTime()),
    ("assessment", sa.Text()), ("assessed_at", UTCDateTime()), ("assessed_by", sa.String(64)),
    ("disposal", sa.String(32)), ("disposal_note", sa.Text()), ("disposed_at", UTCDateTime()), ("disposed_by", sa.String(64)),
    ("feedback", sa.Text()), ("fed_back_at", UTCDateTime()), ("fed_back_by", sa.String(64)),
)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as b:
        for name, type_ in HANDLING:
            b.add_column(sa.Column(name, type_, nullable=True))
        b.create_index("ix_alerts_assigned_unit_id", ["assigned_unit_id"])
        b.create_index("ix_alerts_opened_at", ["opened_at"])
    op.create_table(
        "duty_shifts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("officer", sa.String(64), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("address", sa.String(320), nullable=True),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_duty_shifts_unit_time", "duty_shifts", ["unit_id", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_duty_shifts_unit_time", "duty_shifts")
    op.drop_table("duty_shifts")
    with op.batch_alter_table("alerts") as b:
        b.drop_index("ix_alerts_opened_at")
        b.drop_index("ix_alerts_assigned_unit_id")
        for name, _ in reversed(HANDLING):
            b.drop_column(name)
