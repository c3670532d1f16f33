"""After signing in, the login page follows `next` only to a page of this gateway:
values a browser would resolve to another origin (after stripping tabs and newlines,
or reading a backslash as a slash) land on the alerts page instead."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from playwright.sync_api import expect

from tests.e2e.conftest import sign_in

HOSTILE = [
    "/\t/evil.example/",
    "/\n/evil.example/",
    "//evil.example",
    "/\\evil.example",
    "/\t\\evil.example/",
    "https://evil.example/",
    "http://evil.example/console/alerts",
    "javascript:alert(1)",
    "/login?next=//evil.example",
]


def test_hostile_next_stays_on_the_gateway(make_config, start_live_gateway, anonymous_page) -> None:
    live = start_live_gateway(make_config(auth={"login_attempts_per_minute": 100}))  # one sign-in per value
    live.add_user("feng", "monitor")
    home = f"{live.url}/console/dashboard"  # a monitor's landing page
    escaped = []
    for target in HOSTILE:
        page = anonymous_page(live)  # a fresh browser context: not signed in
        # Should the browser go there, it finds a page rather than a network error.
        page.context.route(re.compile(r"^https?://evil\.example/"), lambda route: route.fulfill(status=200, content_type="text/html", body="<p>evil</p>"))
        page.goto(f"/login?next={quote(target, safe='')}")
        sign_in(page, "feng")
        page.wait_for_url(lambda url: urlsplit(url).path != "/login")
        if page.url != home:
            escaped.append(f"login form, next={target!r} -> {page.url}")
            continue
        expect(page.locator("#page")).to_have_attribute("data-ready", "1")
        # Signed in, the server answers /login?next=... with a redirect: the same rule.
        page.goto(f"/login?next={quote(target, safe='')}")
        if page.url != home:
            escaped.append(f"server redirect, next={target!r} -> {page.url}")
        page.context.close()
    assert escaped == [], "\n".join(escaped)


def test_a_local_next_is_followed_with_its_query(live_gateway, anonymous_page) -> None:
    live_gateway.add_user("chen", "monitor")
    page = anonymous_page(live_gateway)
    page.goto("/console/devices?state=offline")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    sign_in(page, "chen")
    expect(page).to_have_url(f"{live_gateway.url}/console/devices?state=offline")
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
