"""`console.default_language` is the console's language until the user picks one in the
header: the server writes it into the shells (`<html lang>`), whatever the browser's
own language."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import sign_in


def test_configured_default_language_beats_the_browser_language(make_config, start_live_gateway, anonymous_page) -> None:
    live = start_live_gateway(make_config(console={"default_language": "en"}))
    live.add_user("lin", "officer")
    page = anonymous_page(live, "zh-CN", choose_lang=False)  # a Chinese browser, nothing chosen yet
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#login-form button[type=submit]")).to_have_text("Sign in")
    sign_in(page, "lin")
    page.wait_for_url(re.compile(r"/console/alerts"))
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    nav = page.locator("#nav")
    for label in ("Alerts", "Live video", "Map", "Recordings"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(page.locator("#page-title")).to_have_text("Alerts")
    expect(page.locator("#lang")).to_have_value("en")


def test_default_config_shows_chinese_and_a_choice_still_wins(live_gateway, anonymous_page) -> None:
    live_gateway.add_user("zhou", "officer")
    page = anonymous_page(live_gateway, "en", choose_lang=False)  # an English browser, nothing chosen yet
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#login-form button[type=submit]")).to_have_text("登录")
    sign_in(page, "zhou")
    page.wait_for_url(re.compile(r"/console/alerts"))
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    nav = page.locator("#nav")
    for label in ("告警", "实时视频", "地图", "录像"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()

    # The user's own choice is kept over the gateway's default, also after a reload.
    page.select_option("#lang", "en")
    expect(nav.get_by_role("link", name="Alerts", exact=True)).to_be_visible()
    page.reload()
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(nav.get_by_role("link", name="Map", exact=True)).to_be_visible()
