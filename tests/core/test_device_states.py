"""Device state events land in the devices table, a burst in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select

from gateway.db.models import Device
from gateway.events import DeviceState
from tests.conftest import running
from tests.waiting import wait_for


async def test_a_burst_of_states_is_one_transaction_and_last_wins(make_config: Any) -> None:
    devices = [{"id": f"t{i}", "kind": "tracker"} for i in range(50)]
    async with running(make_config(devices=devices)) as gw:
        svc = gw.services
        commits: list[int] = []
        event.listen(svc.db.engine.sync_engine, "commit", lambda conn: commits.append(1))
        for i in range(50):
            await svc.bus.publish(DeviceState(device_id=f"t{i}", kind="tracker", state="online"))
        await svc.bus.publish(DeviceState(device_id="t7", kind="tracker", state="offline", reason="last will"))
        await svc.bus.publish(DeviceState(device_id="ghost", kind="tracker", state="online"))

        async def stored() -> dict[str, Device] | None:
            async with svc.db.session() as s:
                rows = {r.id: r for r in (await s.scalars(select(Device))).all()}
            return rows if rows["t7"].state == "offline" and all(r.state != "unknown" for r in rows.values()) else None

        rows = await wait_for(stored, what="every state written")
        assert {r.id: r.state for r in rows.values()} == {f"t{i}": "offline" if i == 7 else "online" for i in range(50)}
        assert rows["t7"].state_reason == "last will" and rows["t7"].last_seen_at is not None
        assert rows["t3"].state_reason is None and rows["t3"].last_seen_at is not None
        assert len(commits) <= 3  # not one per event
