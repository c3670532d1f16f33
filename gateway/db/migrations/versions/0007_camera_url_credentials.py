"""cameras: credentials out of stored camera URLs (data only)

A camera URL with `user:password@` is refused now (URLs are shown: API, console, logs).
A camera stored with one before keeps working: its user goes to `settings.username`
(unless one is set), its password to the write-only `devices.secret` (unless one is
set), and the URL loses them.

Revision ID: 0007
Revises: 0006
"""
from urllib.parse import unquote, urlsplit, urlunsplit

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

devices = sa.table("devices", sa.column("id", sa.String), sa.column("kind", sa.String), sa.column("settings", sa.JSON),
                   sa.column("secret", sa.Text))


def upgrade() -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(devices.c.id, devices.c.settings, devices.c.secret).where(devices.c.kind == "camera")).all():
        settings = dict(row.settings or {})
        url = settings.get("url")
        if not isinstance(url, str) or "@" not in urlsplit(url).netloc:
            continue
        parts = urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[1]
        settings["url"] = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        if parts.username and not settings.get("username"):
            settings["username"] = unquote(parts.username)
        secret = row.secret
        if parts.password is not None and secret is None:
            secret = unquote(parts.password)
        conn.execute(devices.update().where(devices.c.id == row.id).values(settings=settings, secret=secret))


def downgrade() -> None:
    pass  # the credentials stay in their fields, where the older version reads them too
