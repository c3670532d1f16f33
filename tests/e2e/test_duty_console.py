"""The duty page in Chromium: an officer adds a shift through the form and sees it in the
roster, on duty now and incoming in the handover view, which lists the open alerts of the
officer's office (not a sibling office's, not resolved ones); names containing HTML are
shown as text. The units page renders the tree, or says the units API is not there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect
from sqlalchemy import update

from gateway.db.models import Alert, AlertNote, Person, Unit, User

SHANGHAI = ZoneInfo("Asia/Shanghai")
TREE = (("county", "root", "某县司法局"), ("office-a", "county", "甲司法所"), ("office-b", "county", "乙司法所"))


def arrange(live: Any, officer: str) -> dict[str, int]:
    """Units, the officer moved into office-a, persons and alerts; the alerts' ids."""
    async def go() -> dict[str, int]:
        now = datetime.now(UTC)
        async with live.services.db.session() as s:
            paths = {"root": "/root/"}
            for uid, parent, name in TREE:
                paths[uid] = f"{paths[parent]}{uid}/"
                s.add(Unit(id=uid, name=name, parent_id=parent, path=paths[uid], source="api", created_at=now, updated_at=now))
            await s.execute(update(User).where(User.username == officer).values(unit_id="office-a"))
            s.add_all([Person(id="p-a", name="<img src=x>张三", unit_id="office-a"), Person(id="p-b", name="王五", unit_id="office-b")])
            rows = {
                "open": Alert(kind="curfew", level="red", state="open", person_id="p-a", unit_id="office-a", opened_at=now - timedelta(hours=5),
                              notes=[AlertNote(at=now - timedelta(hours=4), author="li", action="note", text="<i>已电话联系</i>")]),
                "resolved": Alert(kind="sos", level="red", state="resolved", person_id="p-a", unit_id="office-a", opened_at=now - timedelta(hours=6)),
                "sibling": Alert(kind="sos", level="orange", state="open", person_id="p-b", unit_id="office-b", opened_at=now - timedelta(hours=7)),
            }
            for key, a in rows.items():
                a.dedup_key, a.original_level, a.updated_at, a.count = f"e2e-{key}", a.level, a.opened_at, 1
            s.add_all(rows.values())
            await s.commit()
            return {k: a.id for k, a in rows.items()}

    return live.call(go)  # type: ignore[no-any-return]


def local(t: datetime) -> str:
    """The value an <input type=datetime-local> holds for `t` in the browser's time zone."""
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def test_an_officer_adds_a_shift_and_hands_over_the_open_alerts(live_gateway, console_page) -> None:
    live = live_gateway
    live.add_user("guo", "officer")
    ids = arrange(live, "guo")
    page = console_page(live, "guo", "officer", timezone_id="Asia/Shanghai")
    page.locator("#nav").get_by_role("link", name="Duty").click()
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    expect(page.locator(".duty-now")).to_contain_text("No one is on duty for this unit now.")

    # the handover view already lists the office's open alert, as text
    handover = page.locator("section.duty-handover")
    expect(handover.locator(".duty-handover-heading")).to_contain_text("甲司法所")
    row = handover.locator(f"table.handover-alerts tr[data-id='{ids['open']}']")
    expect(row).to_have_attribute("data-level", "red")
    expect(row).to_contain_text("<img src=x>张三")
    expect(row).to_contain_text("<i>已电话联系</i>")
    expect(row).to_contain_text("Curfew violation")
    expect(handover.locator("table.handover-alerts tbody tr")).to_have_count(1)  # not resolved, not the sibling office's
    expect(handover.locator("img, i")).to_have_count(0)

    # add a shift that is on now: the unit is a select once the units API is there, else typed
    form = page.locator("form.duty-form")
    unit = form.locator("[name=unit_id]")
    if unit.evaluate("el => el.tagName") == "SELECT":
        unit.select_option("office-a")
    else:
        unit.fill("office-a")
    now = datetime.now(UTC)
    form.locator("[name=name]").fill("<b>王</b>值班")
    form.locator("[name=starts_at]").fill(local(now - timedelta(hours=1)))
    form.locator("[name=ends_at]").fill(local(now + timedelta(hours=7)))
    form.locator("[name=channel]").fill("wecom-a")
    form.get_by_role("button", name="Add shift").click()
    expect(form.locator("[role=status]")).to_have_text("Shift added.")

    shift = page.locator("table.duty-roster-table tbody tr[data-now='1']")
    expect(shift).to_have_count(1)
    expect(shift).to_contain_text("<b>王</b>值班")
    expect(shift).to_contain_text("wecom-a")
    expect(shift.locator("b")).to_have_count(0)
    expect(page.locator(".duty-now-list")).to_contain_text("<b>王</b>值班")
    expect(handover.locator(".duty-incoming")).to_contain_text("<b>王</b>值班")

    # on the server: the shift as entered, the browser's local times as UTC
    token = live.token("guo")
    shifts = httpx.get(f"{live.url}/api/duty", headers={"Authorization": f"Bearer {token}"},
                       params={"since": (now - timedelta(hours=2)).isoformat()}).json()
    assert [(s["unit_id"], s["name"], s["created_by"]) for s in shifts] == [("office-a", "<b>王</b>值班", "guo")]
    starts = datetime.fromisoformat(shifts[0]["starts_at"])
    assert abs(starts - (now - timedelta(hours=1))) < timedelta(minutes=1)

    # printed, the handover is all there is: no menu, no form, no roster
    page.emulate_media(media="print")
    expect(page.locator("#nav")).to_be_hidden()
    expect(form).to_be_hidden()
    expect(page.locator("table.duty-roster-table")).to_be_hidden()
    expect(row).to_be_visible()
    expect(handover.locator(".duty-print-only")).to_contain_text("guo")
    page.emulate_media(media="screen")

    # a bad shift is refused with the server's reason, next to the form
    form.locator("[name=name]").fill("倒班")
    form.locator("[name=ends_at]").fill(local(now - timedelta(hours=2)))
    form.get_by_role("button", name="Add shift").click()
    expect(form.locator(".form-error")).to_contain_text("ends_at must be after starts_at")


def test_a_monitor_sees_the_duty_page_in_chinese_without_the_form(live_gateway, console_page) -> None:
    page = console_page(live_gateway, "zhang", "monitor", lang="zh-CN")
    page.locator("#nav").get_by_role("link", name="值班").click()
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    expect(page.locator("#page-title")).to_have_text("值班")
    expect(page.locator(".duty-now h2")).to_have_text("当前值班")
    expect(page.locator(".duty-handover-empty")).to_have_text("本单位及下级单位没有未处理的告警。")
    expect(page.locator("form.duty-form")).to_have_count(0)


def test_the_units_page_shows_the_tree_and_adds_a_unit(live_gateway, console_page, api_as) -> None:
    """The tree is listed, indented by depth; an admin adds a unit below one of theirs."""
    live = live_gateway
    live.add_user("chief", "admin")
    arrange(live, "nobody")
    page = console_page(live, "chief", "admin")
    page.locator("#nav").get_by_role("link", name="Units").click()
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    expect(page.locator("table.units tr[data-id='office-a']")).to_have_attribute("data-depth", "2")
    expect(page.locator("table.units tr[data-id='county']")).to_have_attribute("data-depth", "1")
    expect(page.locator("table.units tr[data-id='office-b']")).to_contain_text("乙司法所")
    form = page.locator("form.units-add")
    expect(form).to_have_count(1)
    form.locator("select[name=parent_id]").select_option("office-a")
    form.locator("input[name=id]").fill("office-a1")
    form.locator("input[name=name]").fill("甲所一组")
    form.locator("button[type=submit]").click()
    expect(page.locator("table.units tr[data-id='office-a1']")).to_have_attribute("data-depth", "3")
    assert api_as(live, "chief").get("/api/units/office-a1").json()["path"] == "/root/county/office-a/office-a1/"
