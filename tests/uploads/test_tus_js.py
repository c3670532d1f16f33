"""The official JavaScript client (tus-js-client from npm, run by Node)
against the running gateway: whole, chunked, creation-with-upload, and
aborted-then-resumed uploads arrive bit-exact and catalogued.

Setup: `npm ci --prefix tests/uploads/js` (the lock file pins tus-js-client)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_peer
from tests.uploads.conftest import make_mp4, sha256_of

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    require_peer(exe is not None and (JS / "node_modules" / "tus-js-client").is_dir(), "node and tus-js-client (npm ci --prefix tests/uploads/js)")
    return str(exe)


def js_upload(node: str, live, cam, path: Path, **opts) -> dict:  # type: ignore[no-untyped-def]
    args = {"endpoint": f"{live.url}/api/uploads/", "file": str(path), "headers": cam.headers,
            "metadata": {"filename": path.name, "device_id": cam.id, "recorded_at": "2026-11-21T09:00:00Z", "case_ref": "JS-1"}, **opts}
    p = subprocess.run([node, str(JS / "upload.mjs"), json.dumps(args)], capture_output=True, text=True, timeout=120, cwd=JS)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def stored(live, path: Path) -> dict:  # type: ignore[no-untyped-def]
    rows = httpx.get(f"{live.url}/api/evidence", params={"sha256": sha256_of(path)}, headers=live.admin).json()
    assert len(rows) == 1, rows
    ev = rows[0]
    assert (live.services.media_dir / ev["path"]).read_bytes() == path.read_bytes()
    return ev  # type: ignore[no-any-return]


def test_whole_and_creation_with_upload(node: str, live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = make_mp4(tmp_path / "a.mp4", seconds=1, seed=31)
    b = make_mp4(tmp_path / "b.mp4", seconds=1, seed=32)
    js_upload(node, live, live.cams[0], a)
    js_upload(node, live, live.cams[0], b, withCreation=True)
    for p in (a, b):
        ev = stored(live, p)
        assert ev["device_id"] == "bc-1" and ev["case_ref"] == "JS-1" and ev["filename"] == p.name and ev["state"] == "stored"


def test_chunked_aborted_and_resumed(node: str, live, big_clip: Path) -> None:  # type: ignore[no-untyped-def]
    out = js_upload(node, live, live.cams[1], big_clip, chunkSize=512 * 1024, cutAt=700 * 1024)
    assert out["resumedFrom"] is not None and 0 < out["resumedFrom"] < big_clip.stat().st_size
    ev = stored(live, big_clip)
    assert ev["device_id"] == "bc-2"
