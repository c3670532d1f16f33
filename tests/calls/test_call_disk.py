"""A remote session whose disk fills up: the recording stops, what was written stays (every
fragment was on disk) and the session goes on; the officer gets a red recording_failed alert
and the disk monitor its disk_full incident; a new session is refused (507) while the disk is
full; the proceeding is sealed over the part recorded, with the error in its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

from simulators.call_party import Party, letterboxed
from tests.cameras.conftest import fill, tmpfs  # noqa: F401 - the fixture, used by name
from tests.conftest import running
from tests.faces.conftest import FACES
from tests.waiting import wait_for


async def test_a_full_disk_stops_the_recording_not_the_session(make_config: Any, tmpfs: Any) -> None:  # noqa: F811
    media: Path = tmpfs("16m")
    cfg = make_config(storage={"media_dir": str(media), "disk_full_below_bytes": 256 << 10, "disk_check_s": 0.5, "disk_clear_after_s": 1})
    async with running(cfg) as r:
        officer = await r.login("officer-li", "officer")
        made = await r.client.post("/api/calls", headers=officer, json={"kind": "talk", "parties": [{"role": "link", "label": "x"}]})
        assert made.status_code == 201, made.text
        sid = made.json()["session"]["id"]
        party = Party(letterboxed(FACES / "obama.jpg"))
        try:
            assert (await party.join(r.client, f"/api/calls/{sid}/join", officer)).status_code == 200
            live = r.areas.calls.live[sid]
            recorder = live.room.recorder
            await wait_for(lambda: recorder.video_frames > 30, timeout=60, what="three seconds recorded")
            filler = fill(media)

            async def failed() -> list[dict[str, Any]]:
                alerts = (await r.client.get("/api/alerts", params={"kind": "recording_failed"}, headers=officer)).json()
                return [a for a in alerts if a["details"].get("session_id") == sid]

            [alert] = await wait_for(failed, timeout=60, what="a recording_failed alert for the session")
            assert alert["level"] == "red" and "unrecorded" in alert["message"]
            await wait_for(lambda: r.services.disk.full(media), timeout=30, what="the disk monitor's incident")
            refused = await r.client.post("/api/calls", headers=officer, json={"kind": "talk", "parties": [{"role": "link", "label": "y"}]})
            assert refused.status_code == 507 and "disk" in refused.json()["detail"]
            # the session itself goes on: the party still receives the composite
            seen = party.composites
            await wait_for(lambda: party.composites > seen + 10, timeout=30, what="the session going on")
            filler.unlink()
            ended = await r.client.post(f"/api/calls/{sid}/hangup", headers=officer)
            assert ended.status_code == 200, ended.text
        finally:
            await party.close()
        proc = (await r.client.get(f"/api/proceedings/{ended.json()['proceeding_id']}", headers=officer)).json()
        assert proc["state"] == "sealed" and "recording failed" in proc["manifest"]["session"]["recording_error"]
        [seg] = proc["manifest"]["segments"]
        with av.open(str(media / seg["path"])) as c:  # what was written before the disk filled plays
            assert sum(1 for _ in c.decode(video=0)) >= 20
