"""WS /api/events: live alerts, device states, positions, check-ins.

Auth: the console's cookie, `Authorization: Bearer`, or `?token=` (browsers
cannot set headers on a WebSocket). A client may send
`{"subscribe": ["alert", "position"]}` to narrow what it receives.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from gateway.api.deps import websocket_user

router = APIRouter(tags=["events"])


@router.websocket("/api/events")
async def events(ws: WebSocket) -> None:
    core = ws.app.state.core
    user = await websocket_user(ws, core)
    if user is None:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="authentication required")
        return
    await ws.accept()
    client = core.push.connect()
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

    read_task = asyncio.create_task(reader())
    try:
        while True:
            get = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait({get, read_task}, return_when=asyncio.FIRST_COMPLETED)
            if read_task in done:
                get.cancel()
                break
            await ws.send_text(get.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        read_task.cancel()
        core.push.disconnect(client)
