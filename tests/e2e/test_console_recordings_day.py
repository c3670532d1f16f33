"""The recordings page opens on the browser's local calendar day, not the UTC one: at
01:30 in Shanghai (17:30 UTC the day before) it shows that morning's date and asks the
API for the local day, 00:00 to 24:00 Shanghai time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

SHANGHAI = timezone(timedelta(hours=8))


def recordings_query(request) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


def is_recordings_list(request) -> bool:  # type: ignore[no-untyped-def]
    return urlsplit(request.url).path == "/api/recordings"


def test_recordings_open_on_the_local_day(make_config, start_live_gateway, console_page) -> None:
    # A camera nothing serves: the page only needs it listed.
    live = start_live_gateway(make_config(devices=[{"id": "cam-1", "kind": "camera", "url": "rtsp://127.0.0.1:9/none"}]))
    page = console_page(live, "qian", "officer", lang="zh-CN", timezone_id="Asia/Shanghai")
    page.clock.set_fixed_time(datetime(2026, 12, 5, 1, 30, tzinfo=SHANGHAI))  # = 2026-12-04 17:30 UTC
    assert page.evaluate("() => new Date().toISOString()") == "2026-12-04T17:30:00.000Z"

    with page.expect_request(is_recordings_list) as first:
        page.goto("/console/recordings")
    expect(page.locator("#page")).to_have_attribute("data-ready", "1")
    expect(page.locator("input[type=date]")).to_have_value("2026-12-05")
    q = recordings_query(first.value)
    assert q["camera_id"] == "cam-1"
    assert q["since"] == "2026-12-04T16:00:00.000Z" and q["until"] == "2026-12-05T16:00:00.000Z", q

    # Another day picked in the input: again its local midnight to the next.
    with page.expect_request(is_recordings_list) as picked:
        page.fill("input[type=date]", "2026-12-01")
    q = recordings_query(picked.value)
    assert q["since"] == "2026-11-30T16:00:00.000Z" and q["until"] == "2026-12-01T16:00:00.000Z", q
