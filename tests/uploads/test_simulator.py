"""`gateway-sim bodycam` as a scenario player and from the command line, against a live gateway."""

from __future__ import annotations

import asyncio

import httpx

from simulators.bodycam import play
from simulators.cli import main as sim_main
from simulators.scenario import ScenarioContext


def test_scenario_player_uploads_clips(live) -> None:  # type: ignore[no-untyped-def]
    cam = live.cams[0]
    ctx = ScenarioContext(live.url, None, speed=1000, seed=1, device_keys={cam.id: cam.key})
    spec = {"kind": "bodycam", "id": cam.id, "params": {"count": 2, "seconds": 1, "every_s": 1, "chunk_size": 64 * 1024, "cut_at": 70_000, "case_ref": "SIM-1"}}
    asyncio.run(play(spec, ctx))
    rows = httpx.get(f"{live.url}/api/evidence", params={"case_ref": "SIM-1"}, headers=live.admin).json()
    assert len(rows) == 2 and all(r["state"] == "stored" and r["device_id"] == cam.id for r in rows)


def test_cli_several_devices(live, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    a, b = live.cams
    code = sim_main(["bodycam", "--url", live.url, "--device", f"{a.id}:{a.key}", "--device", f"{b.id}:{b.key}", "--generate", "1",
                     "--seconds", "1", "--chunk-size", "65536", "--rate", "2000000", "--case-ref", "CLI-1"])
    assert code == 0
    rows = httpx.get(f"{live.url}/api/evidence", params={"case_ref": "CLI-1"}, headers=live.admin).json()
    assert sorted(r["device_id"] for r in rows) == ["bc-1", "bc-2"]
