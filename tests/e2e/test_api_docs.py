"""The API reference (/docs) is Swagger UI served by the gateway itself: no CDN (command
centres are often offline, and a script from elsewhere on the authenticated origin could
read everything), under the console's CSP, behind the login."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.test_console_csp import SETTLE, assert_strict_csp, watch_csp


def test_docs_render_from_the_gateway_only(live_gateway: Any, anonymous_page: Any, console_page: Any) -> None:
    live = live_gateway
    outsider = anonymous_page(live)
    outsider.goto("/docs")
    outsider.wait_for_url(re.compile(r"/login\?next=%2Fdocs"))

    page = console_page(live, "dev1", "admin")
    seen = watch_csp(page)
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    assert_strict_csp(page.goto("/docs"))
    expect(page.locator(".opblock-tag-section").first).to_be_visible()  # the operations, read from /openapi.json
    expect(page.get_by_text("/api/alerts", exact=True).first).to_be_attached()
    page.evaluate(SETTLE)
    assert seen == []
    foreign = [u for u in requested if not u.startswith(live.url) and not u.startswith("data:")]
    assert foreign == []
