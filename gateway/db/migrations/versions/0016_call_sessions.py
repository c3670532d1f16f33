"""call_sessions, call_parties, call_checks: remote video sessions recorded as proceedings

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("proceeding_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=True),
        sa.Column("case_ref", sa.String(100), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("checks", sa.Boolean(), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("path", sa.String(500), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(64), nullable=True),
        sa.Column("end_reason", sa.String(200), nullable=True),
        sa.Column("unit_id", sa.String(64), nullable=False, server_default="root"),
    )
    op.create_index("ix_call_sessions_proceeding_id", "call_sessions", ["proceeding_id"])
    op.create_index("ix_call_sessions_person_id", "call_sessions", ["person_id"])
    op.create_index("ix_call_sessions_unit_id", "call_sessions", ["unit_id"])
    op.create_table(
        "call_parties",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("call_sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=True),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("token_sha256", sa.String(64), nullable=True, unique=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=True),
        sa.Column("gaps", sa.JSON(), nullable=False),
    )
    op.create_index("ix_call_parties_session_id", "call_parties", ["session_id"])
    op.create_index("ix_call_parties_device_id", "call_parties", ["device_id"])
    op.create_table(
        "call_checks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_id", sa.String(32), sa.ForeignKey("call_sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("party_id", sa.String(32), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(16), nullable=False),
    )
    op.create_index("ix_call_checks_session_id", "call_checks", ["session_id"])


def downgrade() -> None:
    op.drop_table("call_checks")
    op.drop_table("call_parties")
    op.drop_table("call_sessions")
