"""The console under a Content-Security-Policy without 'unsafe-inline': every page of
the menu (static/nav.js), the hidden ones and the login page render in Chromium
without a single CSP violation, and dom.js's h() refuses a style attribute string."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.conftest import sign_in
from tests.gps.helpers import LAT0, LON0, square

# Chromium logs every refused inline style or script to the console ("Refused to apply
# inline style because it violates the following Content Security Policy directive...");
# the event listener adds what the page saw, with the blocked sample.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked=${e.blockedURI} sample=${e.sample} at ${e.sourceFile}:${e.lineNumber}`);
});
"""
# Lets the browser run the tasks already queued (a violation event is dispatched from one).
SETTLE = "() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve)))"


def watch_csp(page: Any) -> list[str]:
    seen: list[str] = []
    page.context.add_init_script(script=REPORT_VIOLATIONS)
    page.on("console", lambda msg: seen.append(f"{page.url}: {msg.text}")
            if msg.type == "error" and ("Content Security Policy" in msg.text or "CSP violation" in msg.text) else None)
    return seen


def assert_strict_csp(response: Any) -> None:
    csp = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp, csp
    assert re.search(r"(^|;)\s*style-src 'self'\s*(;|$)", csp), csp
    assert re.search(r"(^|;)\s*script-src 'self'\s*(;|$)", csp), csp


def test_every_page_renders_without_csp_violations(make_config, start_live_gateway, anonymous_page, console_page, api_as) -> None:
    cfg = make_config(
        console={"tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png", "map_center": [LAT0, LON0]},  # nothing listens there
        devices=[{"id": "cam-1", "kind": "camera", "name": "谈话室", "url": "rtsp://127.0.0.1:9/none"}],
        zones=[{"id": "home", "name": "Home", "kind": "inclusion", "geometry": square(300)}],
    )
    live = start_live_gateway(cfg)
    admin = api_as(live, "chief")
    admin.post("/api/persons", json={"id": "p1", "name": "张三"}).raise_for_status()

    # The login page, before anyone signs in.
    login = anonymous_page(live)
    login_seen = watch_csp(login)
    assert_strict_csp(login.goto("/login"))
    login.wait_for_selector("body[data-ready]")
    login.evaluate(SETTLE)
    assert login_seen == []

    page = console_page(live, "chief", "admin", lang="zh-CN")
    seen = watch_csp(page)
    names = page.evaluate("async () => (await import('/static/nav.js')).NAV.map((p) => p.name)")
    assert {"alerts", "live", "map", "recordings", "evidence", "person"} <= set(names), names
    params = {"person": "?id=p1", "recordings": "?camera=cam-1"}
    for name in names:
        response = page.goto(f"/console/{name}{params.get(name, '')}")
        assert_strict_csp(response)
        expect(page.locator("#page")).to_have_attribute("data-ready", "1")
        expect(page.locator("#page")).to_have_attribute("data-page", name)
        if name == "map":
            # Leaflet still lays itself out: its stylesheet applies and the map has a size.
            expect(page.locator("path.zone-inclusion")).to_have_count(1)
            page.locator("path.zone-inclusion").hover(position={"x": 12, "y": 12})
            expect(page.locator(".leaflet-tooltip")).to_contain_text("Home")
            layout = page.evaluate("""() => {
              const map = document.querySelector('#gw-map'), pane = document.querySelector('.leaflet-map-pane');
              return {height: map.getBoundingClientRect().height, width: map.getBoundingClientRect().width,
                      overflow: getComputedStyle(map).overflow, pane: getComputedStyle(pane).position};
            }""")
            assert layout["height"] >= 360 and layout["width"] > 400, layout
            assert layout["overflow"] == "hidden" and layout["pane"] == "absolute", layout
        if name == "recordings":
            expect(page.locator(".timebar")).to_be_visible()
        page.evaluate(SETTLE)
        assert seen == [], f"CSP violations on /console/{name}:\n" + "\n".join(seen)

    # Signing in again after a sign-out goes through the login page with its own module.
    page.locator("#logout").click()
    page.wait_for_url(re.compile(r"/login"))
    sign_in(page, "chief")
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    page.evaluate(SETTLE)
    assert seen == [], "\n".join(seen)

    # The watch does see a violation when there is one (else every check above would pass
    # whatever the pages did): an inline style attribute, as a page might set one.
    page.evaluate("() => document.querySelector('#page').setAttribute('style', 'outline: 1px solid red')")
    page.evaluate(SETTLE)
    assert any("style-src" in line for line in seen), seen


def test_dom_h_refuses_style_attribute_strings(live_gateway, console_page) -> None:
    page = console_page(live_gateway, "wu", "officer")
    result = page.evaluate("""async () => {
      const { h } = await import('/static/dom.js');
      const refused = (props) => { try { h('div', props); return false; } catch (e) { return e instanceof TypeError; } };
      const el = h('div', { class: 'x', style: { left: '12%' } });
      return {
        string: refused({ style: 'color: red' }),
        upper: refused({ STYLE: 'color: red' }),
        handlerString: refused({ onclick: 'alert(1)' }),
        cssom: el.style.left,
      };
    }""")
    assert result == {"string": True, "upper": True, "handlerString": True, "cssom": "12%"}, result
