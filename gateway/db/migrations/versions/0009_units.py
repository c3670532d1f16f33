"""units: the organisation tree (ministry → province → city → county → office) and the
unit every user, person, device, zone, alert, proceeding, evidence item and check-in
belongs to. Existing rows go to the root unit, so a gateway without units behaves as
before.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from gateway.db.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OWNED = ("users", "persons", "devices", "zones", "alerts", "proceedings", "evidence", "checkins")


def upgrade() -> None:
    units = op.create_table(
        "units",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True, index=True),
        sa.Column("path", sa.String(1000), nullable=False, index=True),
        sa.Column("source", sa.String(16), nullable=False, server_default="api"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    now = sa.func.current_timestamp()
    op.execute(units.insert().values(id="root", name="root", parent_id=None, path="/root/", source="system", created_at=now, updated_at=now))
    for table in OWNED:
        with op.batch_alter_table(table) as b:
            b.add_column(sa.Column("unit_id", sa.String(64), nullable=False, server_default="root"))
            b.create_index(f"ix_{table}_unit_id", ["unit_id"])


def downgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table) as b:
            b.drop_index(f"ix_{table}_unit_id")
            b.drop_column("unit_id")
    op.drop_table("units")
