"""Person page (enrollment photos, verdicts, upload from the browser, timeline)
and check-in log (thumbnails, distances, live updates) in a real browser."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.faces.conftest import FACES, small_jpeg


def test_enroll_from_browser_and_checkin_log(live_gateway, console_page, api_as, shared_data, tmp_path) -> None:
    live = live_gateway
    admin = api_as(live, "admin")
    admin.post("/api/persons", json={"id": "p-obama", "name": "奥巴马"}).raise_for_status()
    good = tmp_path / "obama.jpg"
    good.write_bytes(small_jpeg(FACES / "obama.jpg"))
    two = tmp_path / "two.jpg"
    two.write_bytes(small_jpeg(FACES / "two_people.jpg"))
    r = admin.post("/api/persons/p-obama/photos", files={"file": ("a.jpg", good.read_bytes(), "image/jpeg")}, timeout=60)
    assert r.status_code == 201, r.text

    page = console_page(live, "guo", "officer")
    page.goto("/console/person?id=p-obama")
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    expect(page.locator("figure.photo")).to_have_count(1)
    expect(page.locator("figure.photo")).to_contain_text("Accepted")
    # A refused photo shows its reasons and is not added.
    page.locator("input[type=file]").set_input_files(str(two))
    expect(page.locator("[data-verdict=refused]")).to_contain_text("2 faces", timeout=60_000)
    expect(page.locator("figure.photo")).to_have_count(1)
    # An accepted one appears with its quality figures.
    obama3 = tmp_path / "obama3.jpg"
    obama3.write_bytes(small_jpeg(FACES / "obama3.jpg", 900))
    page.locator("input[type=file]").set_input_files(str(obama3))
    expect(page.locator("figure.photo")).to_have_count(2, timeout=60_000)

    page.goto("/console/checkins")
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    v = admin.post("/api/faces/verify", data={"person_id": "p-obama"}, files={"file": ("x.jpg", (FACES / "obama2.jpg").read_bytes(), "image/jpeg")}, timeout=60)
    assert v.status_code == 200 and v.json()["result"] == "accepted", v.text
    row = page.locator(f"table.checkins tr[data-id='{v.json()['checkin_id']}']")
    expect(row).to_have_attribute("data-result", "accepted")
    expect(row).to_contain_text("/ 0.6")
    expect(row.locator("img")).not_to_have_js_property("naturalWidth", 0)  # the thumbnail loaded with the session cookie
