"""A remote session runs on the node that set it up; parties and officers reaching another
node of the cluster are passed on to it (two gateway nodes on one PostgreSQL database, the
media on one shared folder). A party joins through the other node: the answer it gets is the
session node's, and its media flows to that node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.call_party import Party
from tests.faces.conftest import FACES
from tests.kiosk.media import letterboxed
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(300)
SECRET = "cluster-calls-secret-0123456789-abcdefghijklmnop"
PASSWORD = "correct-horse-1"


async def test_a_party_joins_through_the_other_node(make_config: Any, start_live_gateway: Any, pg_url: str, tmp_path: Path) -> None:
    nodes = []
    for name in ("node-a", "node-b"):
        nodes.append(start_live_gateway(make_config(
            gateway={"node_id": name, "secret_key": SECRET, "data_dir": str(tmp_path / name)},
            storage={"database_url": pg_url, "media_dir": str(tmp_path / "media")})))
    a, b = nodes
    a.add_user("officer-li", "officer", PASSWORD)
    headers = {"Authorization": f"Bearer {a.token('officer-li')}"}
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as ca, httpx.AsyncClient(base_url=b.url, timeout=30) as cb:
        made = await ca.post("/api/calls", headers=headers, json={"kind": "talk", "parties": [{"role": "link", "label": "party"}]})
        assert made.status_code == 201, made.text
        sid = made.json()["session"]["id"]
        token = made.json()["links"][0]["url"].split("#", 1)[1]
        assert sid in a.areas.calls.live and sid not in b.areas.calls.live
        info = await cb.get("/api/call-link", headers={"X-Call-Token": token})
        assert info.status_code == 200 and info.json()["session_id"] == sid, info.text
        officer, party = Party(letterboxed(FACES / "biden.jpg")), Party(letterboxed(FACES / "obama.jpg"))
        try:
            assert (await officer.join(cb, f"/api/calls/{sid}/join", headers)).status_code == 200  # the officer's console is on node B
            assert (await party.join(cb, "/api/call-link/join", {"X-Call-Token": token})).status_code == 200

            async def both_connected() -> bool:
                body = (await cb.get(f"/api/calls/{sid}", headers=headers)).json()
                return body["node_id"] == "node-a" and all(p["state"] == "connected" for p in body["parties"])

            await wait_for(both_connected, timeout=60, what="both parties connected to node A's session, seen from node B")
            await wait_for(lambda: officer.composites > 10 and party.composites > 10, timeout=60, what="composites through the session's node")
            ended = await cb.post(f"/api/calls/{sid}/hangup", headers=headers)
            assert ended.status_code == 200, ended.text
        finally:
            await officer.close()
            await party.close()
        proc = (await cb.get(f"/api/proceedings/{ended.json()['proceeding_id']}", headers=headers)).json()
        assert proc["state"] == "sealed" and proc["manifest"]["session"]["node_id"] == "node-a"
