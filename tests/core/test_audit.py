"""The audit log is hash-chained: edits, deletions and a cut tail are detected,
on SQLite and PostgreSQL, by the API's own writes and by `gateway audit verify`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from tests.conftest import running

ROOT = Path(__file__).resolve().parents[2]


async def _some_history(gw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    admin = await gw.login("chief", "admin")
    for i in range(3):
        r = await gw.client.post("/api/persons", headers=admin, json={"id": f"p{i}", "name": f"Person {i}"})
        assert r.status_code == 201
    await gw.client.patch("/api/persons/p1", headers=admin, json={"notes": "moved"})
    r = await gw.client.post("/api/auth/token", data={"username": "chief", "password": "wrong-password"})
    assert r.status_code == 401
    return admin


async def test_state_changes_and_logins_are_audited(any_db_url, make_config) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        admin = await _some_history(gw)
        entries = (await gw.client.get("/api/audit?limit=100", headers=admin)).json()
        actions = [e["action"] for e in reversed(entries)]
        assert actions.count("person.created") == 3
        assert "person.updated" in actions
        assert "auth.login" in actions and "auth.login_failed" in actions
        failed = next(e for e in entries if e["action"] == "auth.login_failed")
        assert failed["actor"] == "chief" and "wrong-password" not in str(failed)
        assert await gw.services.audit.verify() == []


async def test_edit_delete_and_truncation_are_detected(any_db_url, make_config) -> None:
    async with running(make_config(storage={"database_url": any_db_url})) as gw:
        admin = await _some_history(gw)
        audit, db = gw.services.audit, gw.services.db
        assert await audit.verify() == []
        async with db.session() as s:
            last = (await s.execute(text("SELECT max(id) FROM audit"))).scalar_one()
            await s.execute(text("UPDATE audit SET actor = 'someone-else' WHERE id = 2"))
            await s.commit()
        problems = await audit.verify()
        assert problems == ["entry 2: contents do not match their hash: edited"]

        async with db.session() as s:
            await s.execute(text("DELETE FROM audit WHERE id = 3"))
            await s.commit()
        problems = await audit.verify()
        assert any(p.startswith("entry 4: does not follow entry 2") and "entries 3..3 missing" in p for p in problems)

        async with db.session() as s:
            await s.execute(text("DELETE FROM audit WHERE id = :i"), {"i": last})
            await s.commit()
        problems = await audit.verify()
        assert any("newest entries deleted" in p for p in problems)

        # Auditing, and with it every state change, goes on after tampering: entries are
        # numbered after the head, or after the log itself once the head row is gone.
        r = await gw.client.post("/api/persons", headers=admin, json={"id": "p8", "name": "After the cut"})
        assert r.status_code == 201
        async with db.session() as s:
            await s.execute(text("DELETE FROM audit_head"))
            await s.commit()
        r = await gw.client.post("/api/persons", headers=admin, json={"id": "p9", "name": "After the head"})
        assert r.status_code == 201
        async with db.session() as s:
            actions = (await s.execute(text("SELECT action FROM audit ORDER BY id DESC LIMIT 2"))).scalars().all()
        assert actions == ["person.created", "person.created"]
        assert any("does not follow" in p for p in await audit.verify())


def test_audit_verify_command(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"gateway: {{data_dir: {tmp_path / 'data'}}}\n")
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", "gateway.cli", *a, "-c", str(cfg)], capture_output=True, text=True, cwd=ROOT, timeout=120, **kw)  # noqa: E731
    for name in ("ann", "bob"):
        r = run("user", "add", name, "--role", "monitor", "--password-stdin", input="long-enough-pw\n")
        assert r.returncode == 0, r.stderr
    r = run("user", "add", "ann", "--role", "admin", "--password-stdin", input="long-enough-pw\n")
    assert r.returncode == 1 and "already exists" in r.stderr
    ok = run("audit", "verify")
    assert ok.returncode == 0 and "2 entries, INTACT" in ok.stdout, ok.stdout + ok.stderr

    import sqlite3

    con = sqlite3.connect(tmp_path / "data" / "gateway.db")
    con.execute("UPDATE audit SET details = '{\"role\": \"admin\"}' WHERE id = 1")
    con.commit()
    con.close()
    bad = run("audit", "verify")
    assert bad.returncode == 1
    assert "entry 1: contents do not match their hash: edited" in bad.stdout
