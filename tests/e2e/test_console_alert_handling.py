"""Handling an alert in the console, in a real browser against a real gateway: assign,
assess, dispose, feed back and notes from the alert's detail, the server's refusals shown
next to the form, the history drawn as text (an HTML-looking note stays text)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import SHOTS

HTMLISH = '<img src=x onerror="window.pwned=1"><b>bold</b>'


def test_officer_handles_an_alert_from_its_detail(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    admin = api_as(live, "admin")
    assert admin.post("/api/persons", json={"id": "p1", "name": "张三"}).status_code == 201
    alert = live.call(live.services.alerts.raise_alert, "curfew", person_id="p1", device_id="trk-1", message="out after 22:00")
    page = console_page(live, "chen", "officer")
    row = page.locator(f"tr.alert-row[data-id='{alert['id']}']")
    row.get_by_role("button", name="Details").click()
    detail = page.locator(f"section.alert-detail[data-id='{alert['id']}']")
    expect(detail).to_be_visible()
    expect(detail.locator(".history-item")).to_have_count(1)
    expect(page.locator("a.export-csv")).to_have_attribute("href", "/api/alerts/export.csv?state=ongoing")

    # the order rules are the server's; its message shows next to the form
    form = detail.locator("form[data-action=feedback]")
    form.locator("textarea").fill("all done")
    form.get_by_role("button", name="Feed back and close").click()
    expect(form.locator(".form-error")).to_contain_text("no disposal yet")

    form = detail.locator("form[data-action=assign]")
    unit = form.locator("[name=unit_id]")
    # a picker when GET /api/units answers, a text field when it does not
    if unit.evaluate("el => el.tagName") == "SELECT":
        unit.select_option("root")
    else:
        unit.fill("root")
    form.locator("[name=assignee]").fill("chen")
    form.get_by_role("button", name="Assign").click()
    expect(detail.locator(".assigned")).to_contain_text("chen")
    expect(row.locator(".assigned")).to_contain_text("chen")  # the list row shows it too

    form = detail.locator("form[data-action=assess]")
    form.locator("textarea").fill("track confirms the breach")
    form.get_by_role("button", name="Record assessment").click()
    expect(detail.locator(".history-item[data-action=assessed]")).to_contain_text("track confirms the breach")

    form = detail.locator("form[data-action=notes]")
    form.locator("input").fill(HTMLISH)
    form.get_by_role("button", name="Add note").click()
    note = detail.locator(".history-item[data-action=note] .history-text")
    expect(note).to_have_text(HTMLISH)  # shown as text, not markup
    assert detail.locator(".history-item b, .history-item img").count() == 0
    assert page.evaluate("window.pwned") is None

    form = detail.locator("form[data-action=dispose]")
    form.locator("select").select_option(label="Home visit")
    form.locator("[name=disposal_note]").fill("visited at 23:10")
    form.get_by_role("button", name="Record disposal").click()
    expect(detail.locator(".history-item[data-action=disposed]")).to_contain_text("home_visit: visited at 23:10")

    form = detail.locator("form[data-action=feedback]")
    form.locator("textarea").fill("back home, warned")
    form.get_by_role("button", name="Feed back and close").click()
    expect(detail.locator(".state")).to_have_text("Resolved")
    # closed: only notes remain
    expect(detail.locator("form[data-action=assess]")).to_be_hidden()
    expect(detail.locator("form[data-action=notes]")).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "alert-handling.png"), full_page=True)

    on_server = admin.get(f"/api/alerts/{alert['id']}").json()
    assert [n["action"] for n in on_server["notes"]] == ["opened", "assigned", "assessed", "note", "disposed", "fed_back"]
    assert on_server["state"] == "resolved" and on_server["fed_back_by"] == "chen" and on_server["assignee"] == "chen"
    assert on_server["notes"][3]["text"] == HTMLISH
