"""An alert's detail shows where its changes were sent (the outbox), in the console's
language; an admin sends a dead letter again from there, a monitor sees no such button."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from gateway.db.models import OutboxChange, OutboxDelivery
from tests.conftest import free_port


def dead_letter(live: Any, alert: dict[str, Any]) -> None:
    async def go() -> None:
        async with live.services.db.session() as s:
            change = OutboxChange(alert_id=alert["id"], change="opened", unit_id="root", payload=alert, routed=True)
            s.add(change)
            await s.flush()
            s.add(OutboxDelivery(change_id=change.id, channel="county-wecom", key=f"{change.id}:county-wecom", state="dead", attempts=1,
                                 last_error="errcode 93000: invalid webhook url"))
            await s.commit()
    live.call(go)


def test_an_admin_sees_a_dead_letter_and_sends_it_again(make_config, start_live_gateway, console_page, api_as) -> None:
    # the channel exists but nothing listens: sent again, the delivery fails and waits (600 s)
    live = start_live_gateway(make_config(delivery={
        "channels": [{"name": "county-wecom", "kind": "webhook", "url": f"http://127.0.0.1:{free_port()}/hook"}],
        "retry": {"base_delay_s": 600}}))
    alert = live.call(live.services.alerts.raise_alert, "sos", device_id="trk-9")
    dead_letter(live, alert)
    page = console_page(live, "chief", "admin", lang="zh-CN")
    page.locator(f"tr.alert-row[data-id='{alert['id']}']").get_by_role("button", name="详情").click()
    item = page.locator("section.alert-detail li.delivery[data-channel='county-wecom']")
    expect(item).to_have_attribute("data-state", "dead")
    expect(item.locator(".delivery-state")).to_have_text("发送失败")
    expect(item.locator(".delivery-error")).to_have_text("errcode 93000: invalid webhook url")
    item.get_by_role("button", name="重新发送").click()
    expect(item).to_have_attribute("data-state", "pending")
    assert api_as(live, "chief").get("/api/outbox/dead").json() == []

    monitor = console_page(live, "zhou", "monitor")
    monitor.goto("/console/alerts")  # a monitor lands on the dashboard
    monitor.locator(f"tr.alert-row[data-id='{alert['id']}']").get_by_role("button", name="Details").click()
    item = monitor.locator("section.alert-detail li.delivery")
    expect(item.locator(".delivery-state")).to_have_text("waiting to be sent")
    expect(item.get_by_role("button")).to_have_count(0)
