"""a person's supervision level (严管/普管/宽管) and responsible officer

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons") as b:
        b.add_column(sa.Column("supervision_level", sa.String(16), nullable=True))
        b.add_column(sa.Column("officer", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("persons") as b:
        b.drop_column("officer")
        b.drop_column("supervision_level")
