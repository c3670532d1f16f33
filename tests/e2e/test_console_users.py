"""Users from the console, in a real browser against a real gateway: an admin adds an
officer to a unit, changes the role, disables and enables the account and sets a new
password; the user changes their own password on "My account" (the current one asked
again, the server's refusal shown); a monitor has no Users entry."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.waiting import wait_for_blocking


def can_log_in(live, username: str, password: str) -> bool:
    return httpx.post(f"{live.url}/api/auth/token", data={"username": username, "password": password}).status_code == 200


def test_an_admin_manages_users_and_a_user_their_password(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    admin = api_as(live, "chief")
    for uid, parent in (("county", "root"), ("office-a", "county")):
        assert admin.post("/api/units", json={"id": uid, "name": f"{uid} 司法所", "parent_id": parent}).status_code == 201
    page = console_page(live, "chief", "admin", lang="zh-CN")
    page.locator("#nav").get_by_role("link", name="用户管理").click()
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    form = page.locator("form.users-add")
    form.locator("[name=username]").fill("li")
    form.locator("[name=password]").fill("first-pass-1")
    form.locator("[name=role]").select_option("officer")
    form.locator("[name=unit_id]").select_option("office-a")
    form.locator("button[type=submit]").click()
    row = page.locator("table.users tr[data-username='li']")
    expect(row.locator("[name=unit_id]")).to_have_value("office-a")
    expect(page.locator("form.users-add [role=status]")).to_have_text("已新增用户：li")
    assert can_log_in(live, "li", "first-pass-1")

    row.locator("[name=role]").select_option("monitor")
    wait_for_blocking(lambda: [u for u in admin.get("/api/users").json() if u["username"] == "li"][0]["role"] == "monitor", 10, "the new role")
    row.locator(".btn-toggle").click()
    expect(page.locator("table.users tr[data-username='li']")).to_have_attribute("data-disabled", "1")
    assert not can_log_in(live, "li", "first-pass-1")
    row = page.locator("table.users tr[data-username='li']")
    row.locator(".btn-toggle").click()
    expect(page.locator("table.users tr[data-username='li']")).to_have_attribute("data-disabled", "0")
    row = page.locator("table.users tr[data-username='li']")
    row.locator("[name=password]").fill("short")
    row.locator(".btn-reset").click()
    expect(row.locator(".form-error")).to_contain_text("未完成")  # the server's 422: too short
    row.locator("[name=password]").fill("second-pass-2")
    row.locator(".btn-reset").click()
    expect(page.locator("table.users tr[data-username='li']")).to_be_visible()
    wait_for_blocking(lambda: can_log_in(live, "li", "second-pass-2"), 10, "the new password")

    # the user's own password, from "My account"
    user = console_page(live, "li", "monitor", password="second-pass-2")
    expect(user.locator("#nav").get_by_role("link", name="Users")).to_have_count(0)
    user.locator("#nav").get_by_role("link", name="My account").click()
    expect(user.locator(".account-who")).to_contain_text("office-a")
    pw = user.locator("form.password-form")
    pw.locator("[name=current_password]").fill("not-my-password")
    pw.locator("[name=new_password]").fill("third-pass-3")
    pw.locator("button[type=submit]").click()
    expect(pw.locator(".form-error")).to_contain_text("the current password is wrong")
    pw.locator("[name=current_password]").fill("second-pass-2")
    pw.locator("button[type=submit]").click()
    expect(pw.locator("[role=status]")).to_contain_text("Password changed")
    assert can_log_in(live, "li", "third-pass-3") and not can_log_in(live, "li", "second-pass-2")
    # this browser's session goes on (a new cookie); the page still loads data
    user.locator("#nav").get_by_role("link", name="Alerts").click()
    expect(user.locator("#page")).to_have_attribute("data-ready", "1")
