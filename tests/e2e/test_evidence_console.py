"""Evidence page in headless Chromium: an upload made with tuspy shows with its
thumbnail, plays (the viewing lands in the custody log), and an upload in
flight shows live progress pushed over the event socket."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
from playwright.sync_api import expect

from simulators.bodycam import Recorder, upload_file
from tests.uploads.conftest import make_mp4


def test_evidence_list_player_custody_and_progress(live_gateway, console_page, api_as, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin = api_as(live_gateway, "boss", "admin")
    r = admin.post("/api/devices", json={"id": "bc-9", "kind": "bodycam", "settings": {"officer": "wang"}})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    clip = make_mp4(tmp_path / "patrol.mp4", seconds=1)
    res = upload_file(Recorder(live_gateway.url, "bc-9", key, case_ref="E2E-1"), clip, chunk_size=64 * 1024)
    ev = admin.get("/api/evidence", params={"sha256": res.sha256}).json()[0]

    page = console_page(live_gateway, "li", "officer")
    page.goto("/console/evidence")
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    row = page.locator(f"table.evidence tr[data-id='{ev['id']}']")
    expect(row).to_have_attribute("data-state", "stored")
    expect(row).to_contain_text("E2E-1")
    expect(row.locator("img")).to_have_js_property("complete", True)
    assert row.locator("img").evaluate("img => img.naturalWidth") > 0

    row.get_by_role("button").click()
    expect(page.locator("tr[data-action='viewed']")).to_have_count(1)
    custody = admin.get(f"/api/evidence/{ev['id']}").json()["custody"]
    assert [c["action"] for c in custody][-1] == "viewed" and custody[-1]["actor"] == "li"

    # an upload in flight appears and advances as PATCHes land
    data = make_mp4(tmp_path / "long.mp4", seconds=2, seed=4).read_bytes()
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                    {"filename": "long.mp4", "device_id": "bc-9", "recorded_at": "2026-11-22T10:00:00Z"}.items())
    h = {"Tus-Resumable": "1.0.0", "X-Device-Key": key}
    url = httpx.post(f"{live_gateway.url}/api/uploads/", headers={**h, "Upload-Length": str(len(data)), "Upload-Metadata": meta}).headers["location"]
    upload_id = url.rsplit("/", 1)[1]
    third = len(data) // 3
    r = httpx.patch(f"{live_gateway.url}{url}", content=data[:third], headers={**h, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204
    up = page.locator(f"tr[data-upload='{upload_id}']")
    expect(up).to_have_attribute("data-offset", str(third))
    r = httpx.patch(f"{live_gateway.url}{url}", content=data[third:], headers={**h, "Upload-Offset": str(third), "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204
    expect(up).to_have_count(0)  # complete: leaves the in-flight list, joins the evidence list
    expect(page.locator("table.evidence tr[data-state='stored']")).to_have_count(2)
