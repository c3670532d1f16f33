"""The shared event socket reconnects by itself and the feed catches up."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import SocketGate
from tests.waiting import page_pause, wait_for_blocking


def test_feed_reconnects_and_shows_alerts_raised_while_disconnected(live_gateway, console_page) -> None:
    live = live_gateway
    page = console_page(live, "lin", "monitor")
    # Sockets pass through to the real server unless held; then the page gets a
    # socket that is open but silent (no server hello behind it).
    gate = SocketGate(page)
    page.goto("/console/alerts")  # a monitor lands on the dashboard
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "open")
    expect(conn).to_have_text("Live")
    assert len(gate.sockets) == 1

    gate.hold = True
    gate.sockets[0].close(code=1011, reason="test cut")
    # The client retries by itself and is held at "connecting" until a hello comes.
    expect(conn).to_have_attribute("data-state", "connecting")
    expect(conn).to_have_text("Connecting…")
    wait_for_blocking(lambda: len(gate.held) == 1, 30, "the console retrying by itself", pause=page_pause(page))
    # Raised while this console had no real socket: never pushed to it.
    missed = live.call(live.services.alerts.raise_alert, "sos", device_id="trk-5")

    gate.hold = False
    gate.held[0].close(code=1011, reason="still down")
    expect(conn).to_have_attribute("data-state", "open")
    assert len(gate.sockets) == 2
    # The list fetched after reconnecting has it.
    expect(page.locator(f"tr.alert-row[data-id='{missed['id']}']")).to_be_visible()
    # And the new socket carries live pushes again.
    pushed = live.call(live.services.alerts.raise_alert, "tamper", device_id="trk-6")
    expect(page.locator(f"tr.alert-row[data-id='{pushed['id']}']")).to_be_visible()


def test_socket_refused_after_the_session_ended_leads_to_login(live_gateway, console_page, api_as) -> None:
    live = live_gateway
    page = console_page(live, "jiang", "monitor")
    gate = SocketGate(page)
    page.goto("/console/alerts")  # a monitor lands on the dashboard
    expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    admin = api_as(live, "admin")
    uid = next(u["id"] for u in admin.get("/api/users").json() if u["username"] == "jiang")
    assert admin.patch(f"/api/users/{uid}", json={"disabled": True}).status_code == 200
    # The page makes no request of its own; the reconnect is what finds out.
    gate.sockets[-1].close(code=1011, reason="test cut")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fconsole%2Falerts$"))
