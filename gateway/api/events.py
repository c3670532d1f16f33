"""WS /api/events: live alerts, device states, positions, check-ins.

Auth: the console's cookie, `Authorization: Bearer`, or `?token=` (browsers
cannot set headers on a WebSocket). A browser's connection must come from this
gateway's own pages (its Origin), or it is refused: the session cookie would
otherwise let any site a user visits listen in. An open socket checks its token
again when its user changes (role, password, disabled, logged out) and at least
every `RECHECK_S`, and closes (1008) when the token no longer holds.
A client may send `{"subscribe": ["alert", "position"]}` to narrow what it receives.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from gateway.api.deps import origin_allowed, principal_from_token, websocket_token

router = APIRouter(tags=["events"])
RECHECK_S = 60.0  # also when nothing changed: a token expires


@router.websocket("/api/events")
async def events(ws: WebSocket) -> None:
    core = ws.app.state.core
    if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"), core.config.gateway.public_url):
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="origin not allowed")
        return
    token = websocket_token(ws)
    user = await principal_from_token(core, token) if token else None
    if token is None or user is None:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="authentication required")
        return
    await ws.accept()
    client = core.push.connect(user.id, user.reach, user.username)
    await ws.send_text(json.dumps({"type": "hello", "user": user.username, "role": user.role}))

    async def reader() -> None:
        while True:
            msg = await ws.receive_text()
            try:
                data = json.loads(msg)
                topics = data.get("subscribe")
                if isinstance(topics, list):
                    client.topics = {str(t) for t in topics}
            except (ValueError, AttributeError):
                await ws.send_text(json.dumps({"type": "error", "message": "send JSON like {\"subscribe\": [\"alert\"]}"}))

    async def still_valid() -> None:
        """Returns when the session has ended."""
        while True:
            try:
                await asyncio.wait_for(client.recheck.wait(), RECHECK_S)
            except TimeoutError:
                pass
            client.recheck.clear()
            now = await principal_from_token(core, token)
            if now is None:
                return
            client.reach = now.reach  # moved to another unit: pushed what the new unit sees from now on

    read_task = asyncio.create_task(reader())
    watch_task = asyncio.create_task(still_valid())
    try:
        while True:
            get = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait({get, read_task, watch_task}, return_when=asyncio.FIRST_COMPLETED)
            if read_task in done:
                get.cancel()
                break
            if watch_task in done:
                get.cancel()
                await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="session ended")
                break
            await ws.send_text(get.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        read_task.cancel()
        watch_task.cancel()
        core.push.disconnect(client)
