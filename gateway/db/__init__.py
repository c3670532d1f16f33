"""Storage: SQLAlchemy 2 models, Alembic migrations, async sessions."""

from gateway.db.engine import Database

__all__ = ["Database"]
