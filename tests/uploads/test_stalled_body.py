"""A client that stops sending in the middle of a PATCH body (a 4G link gone quiet,
the socket still open) is cut off after the idle limit; what arrived before is kept
and the upload resumes from there. Over a real socket to a live gateway."""

from __future__ import annotations

import base64
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.api import uploads
from tests.waiting import wait_for_blocking

TUS = {"Tus-Resumable": "1.0.0"}


def test_stalled_body_is_cut_after_idle_limit_and_resumes(live, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(uploads, "IDLE_TIMEOUT_S", 1.0)
    cam = live.cams[0]
    data = bytes(range(256)) * 1024  # 256 KiB
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                    {"filename": "stall.bin", "device_id": cam.id, "recorded_at": "2026-11-20T08:30:00Z"}.items())
    with httpx.Client(base_url=live.url) as c:
        r = c.post("/api/uploads/", headers={**TUS, **cam.headers, "Upload-Length": str(len(data)), "Upload-Metadata": meta})
        assert r.status_code == 201, r.text
        path = urlsplit(r.headers["location"]).path
        u = urlsplit(live.url)
        sent = 100_000
        with socket.create_connection((u.hostname, u.port), timeout=10) as s:
            head = (f"PATCH {path} HTTP/1.1\r\nHost: {u.hostname}\r\nTus-Resumable: 1.0.0\r\nX-Device-Key: {cam.key}\r\n"
                    f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n\r\n")
            s.sendall(head.encode() + data[:sent])
            t0 = time.monotonic()
            # the link goes quiet: the server must give up on the body by itself, and keep what arrived
            wait_for_blocking(lambda: int(c.head(path, headers={**TUS, **cam.headers}).headers["upload-offset"]) == sent, 30,
                              f"the upload's offset to be the {sent} bytes that arrived before the stall")
            assert time.monotonic() - t0 >= 0.9  # not before the idle limit
        r = c.patch(path, content=data[sent:], headers={**TUS, **cam.headers, "Upload-Offset": str(sent), "Content-Type": "application/offset+octet-stream"})
        assert r.status_code == 204, r.text
        assert int(r.headers["upload-offset"]) == len(data)
