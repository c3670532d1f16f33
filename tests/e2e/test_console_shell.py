"""The console shell in a real browser: login, languages, menu, routing."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import sign_in


def test_login_form_refuses_wrong_password_then_signs_in(live_gateway, anonymous_page) -> None:
    live_gateway.add_user("wang", "monitor")
    page = anonymous_page(live_gateway)
    # A console page without a session lands on the form, remembering where it was going.
    page.goto("/console/devices")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fconsole%2Fdevices$"))

    sign_in(page, "wang", "wrong-password")
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
    expect(page).to_have_url(re.compile(r"/login"))

    sign_in(page, "wang")
    expect(page).to_have_url(re.compile(r"/console/devices$"))
    expect(page.locator("#who")).to_contain_text("wang")
    expect(page.locator("#who .role")).to_have_text("Monitor")
    # The session is an httpOnly cookie: page scripts cannot read it.
    assert "gw_session" not in page.evaluate("document.cookie")
    cookie = next(c for c in page.context.cookies() if c["name"] == "gw_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_shell_in_both_languages_and_language_choice_is_remembered(live_gateway, console_page) -> None:
    page = console_page(live_gateway, "li", "officer", lang="zh-CN", choose_lang=False)
    # Nothing chosen yet: the gateway's default language (zh-CN) without asking.
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    nav = page.locator("#nav")
    for label in ("告警", "实时视频", "地图", "人员", "签到", "录像", "证据", "设备"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="审计")).to_have_count(0)  # admin only
    expect(page.locator("#page-title")).to_have_text("告警")
    expect(page.locator("#logout")).to_have_text("退出登录")
    expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    expect(page.locator("#conn")).to_have_text("实时")

    page.select_option("#lang", "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#page-title")).to_have_text("Alerts")
    expect(nav.get_by_role("link", name="Live video")).to_be_visible()
    expect(page.locator("table.alerts th").first).to_have_text("Level")

    # The choice outlives a reload and beats the gateway's default language.
    page.reload()
    page.wait_for_selector("#page[data-ready]")
    expect(page.locator("#page-title")).to_have_text("Alerts")
    expect(page.locator("#logout")).to_have_text("Sign out")


def test_menu_routes_and_missing_pages_say_not_available(live_gateway, console_page) -> None:
    page = console_page(live_gateway, "zhao", "admin")
    page.locator("#nav").get_by_role("link", name="Devices").click()
    expect(page).to_have_url(re.compile(r"/console/devices$"))
    expect(page.locator("#page[data-ready]")).to_have_attribute("data-page", "devices")
    expect(page.locator("#nav a[aria-current=page]")).to_have_text("Devices")

    page.goto("/console/no-such-page")
    expect(page.locator("#page")).to_have_attribute("data-ready", "unavailable")
    expect(page.locator("#page .notice h2")).to_have_text("Not available yet")

    page.go_back()
    expect(page.locator("#page[data-ready]")).to_have_attribute("data-page", "devices")


def test_monitor_sees_no_audit_page_and_server_refuses_anyway(live_gateway, console_page) -> None:
    page = console_page(live_gateway, "sun", "monitor")
    expect(page.locator("#nav").get_by_role("link", name="Audit log")).to_have_count(0)
    page.goto("/console/audit")
    expect(page.locator("#page")).to_have_attribute("data-ready", "forbidden")
    expect(page.locator("#page .notice h2")).to_have_text("Not permitted")
    token = live_gateway.token("sun")
    assert httpx.get(f"{live_gateway.url}/api/audit", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_sign_out_ends_the_session(live_gateway, console_page) -> None:
    page = console_page(live_gateway, "qian", "officer")
    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/console/alerts")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_a_revoked_session_goes_back_to_the_login_page(live_gateway, console_page, api_as) -> None:
    page = console_page(live_gateway, "feng", "monitor")
    admin = api_as(live_gateway, "admin")
    uid = next(u["id"] for u in admin.get("/api/users").json() if u["username"] == "feng")
    assert admin.patch(f"/api/users/{uid}", json={"disabled": True}).status_code == 200
    page.locator("#nav").get_by_role("link", name="Devices").click()
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fconsole%2Fdevices$"))
