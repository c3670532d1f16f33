"""Persons from the console, in zh-CN and en, against a real gateway: an officer registers a
person (category, supervision level, unit, responsible officer, notes) and lands on their
page; edits them (the server's refusal of an unknown officer shown next to the form);
sees the tracker bound to them with its state; deactivates them (audited). A monitor sees
no write control, and the server refuses the write."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_an_officer_registers_edits_and_deactivates_a_person(live_gateway, console_page, api_as, lang) -> None:
    live = live_gateway
    admin = api_as(live, "chief")
    for uid, parent in (("county", "root"), ("office-a", "county")):
        assert admin.post("/api/units", json={"id": uid, "name": f"{uid}所", "parent_id": parent}).status_code == 201
    api_as(live, "wang", "officer")
    page = console_page(live, "wang", "officer", lang=lang)
    page.locator("#nav").get_by_role("link", name="人员" if lang == "zh-CN" else "Persons").click()
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    page.locator("details.person-add > summary").click()
    form = page.locator("form.person-form")
    form.locator("[name=id]").fill("p-100")
    form.locator("[name=name]").fill("赵六")
    form.locator("[name=category]").fill("社区矫正对象")
    form.locator("[name=supervision_level]").select_option("strict")
    form.locator("[name=unit_id]").select_option("office-a")
    form.locator("[name=officer]").fill("wang")
    form.locator("[name=notes]").fill("<b>每周报到</b>")
    form.locator("button[type=submit]").click()
    expect(page.locator("#page")).to_have_attribute("data-page", "person")
    head = page.locator(".person-head")
    expect(head).to_contain_text("赵六")
    expect(head).to_contain_text("严管" if lang == "zh-CN" else "strict supervision")
    person = admin.get("/api/persons/p-100").json()
    assert (person["unit_id"], person["officer"], person["supervision_level"], person["notes"]) == ("office-a", "wang", "strict", "<b>每周报到</b>")

    # a tracker bound to them shows on their page with its state
    assert admin.post("/api/devices", json={"id": "trk-100", "kind": "tracker", "person_id": "p-100"}).status_code == 201
    page.reload()
    expect(page.locator("table.person-devices tr[data-id='trk-100']")).to_have_attribute("data-state", person_state(admin))

    page.locator("details.person-edit > summary").click()
    form = page.locator("form.person-form")
    form.locator("[name=officer]").fill("nobody-here")
    form.locator("button[type=submit]").click()
    expect(form.locator(".form-error")).to_contain_text("no user nobody-here")
    form.locator("[name=officer]").fill("wang")
    form.locator("[name=supervision_level]").select_option("ordinary")
    form.locator("button[type=submit]").click()
    expect(page.locator(".person-head")).to_contain_text("普管" if lang == "zh-CN" else "ordinary supervision")

    page.once("dialog", lambda d: d.accept())
    page.locator("details.person-edit > summary").click()
    page.locator(".btn-deactivate").click()
    expect(page.locator(".person-head")).to_have_attribute("data-active", "0")
    assert admin.get("/api/persons/p-100").json()["active"] is False
    assert any(e["action"] == "person.deactivated" for e in admin.get("/api/audit", params={"action": "person."}).json())

    monitor = console_page(live, "zhou", "monitor", lang=lang)
    monitor.goto("/console/person?id=p-100")
    expect(monitor.locator("#page")).to_have_attribute("data-ready", "1")
    expect(monitor.locator("details.person-edit")).to_have_count(0)
    monitor.goto("/console/persons")
    expect(monitor.locator("#page")).to_have_attribute("data-ready", "1")
    expect(monitor.locator("details.person-add")).to_have_count(0)
    assert api_as(live, "zhou", "monitor").post("/api/persons", json={"name": "x"}).status_code == 403


def person_state(admin) -> str:
    return str(admin.get("/api/devices/trk-100").json()["state"])
