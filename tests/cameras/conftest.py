"""Cameras test peers: GStreamer's RTSP server (system python + gi) as the third-party camera."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.conftest import free_port, port_open, require_peer
from tests.waiting import wait_for  # noqa: F401 - the suite's one wait_for, used through here

HERE = Path(__file__).parent
SYSTEM_PY = "/usr/bin/python3"


def playable_frames(path: Path, tolerate_cut: bool = False) -> int:
    """Frames decodable from the file; with tolerate_cut, up to where a cut-off write ends it."""
    n = 0
    try:
        with av.open(str(path)) as c:
            for _ in c.decode(video=0):
                n += 1
    except av.error.InvalidDataError:
        if not tolerate_cut:
            raise
    return n


def gst_available() -> bool:
    if not (os.path.exists(SYSTEM_PY) and shutil.which("gst-inspect-1.0")):
        return False
    ok = subprocess.run([SYSTEM_PY, "-c", "import gi; gi.require_version('GstRtspServer','1.0'); from gi.repository import GstRtspServer"],
                        capture_output=True).returncode == 0
    return ok and subprocess.run(["gst-inspect-1.0", "x264enc"], capture_output=True).returncode == 0


class GstServer:
    def __init__(self, port: int, profile: str, auth: tuple[str, str] | None, audio: bool = False) -> None:
        self.port, self.profile, self.auth, self.audio = port, profile, auth, audio
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        args = [SYSTEM_PY, str(HERE / "gst_rtsp_server.py"), str(self.port), self.profile, *(self.auth or ()), *(["--audio"] if self.audio else [])]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert b"READY" in line, "GStreamer RTSP server did not start"
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "GStreamer RTSP server is not listening"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def gst_server() -> Iterator[Callable[..., GstServer]]:
    require_peer(gst_available(), "GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly)")
    servers: list[GstServer] = []

    def start(profile: str = "high", auth: tuple[str, str] | None = None, port: int | None = None, audio: bool = False) -> GstServer:
        s = GstServer(port or free_port(), profile, auth, audio)
        s.start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.kill()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Factory: a fresh tmpfs of the given size (`"40m"`) mounted in a temp folder, unmounted
    after the test. Needs root; a failed mount fails the test in CI (skips elsewhere)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        mnt = tmp_path / f"tmpfs{len(mounted)}"
        mnt.mkdir()
        ok = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True).returncode == 0
        require_peer(ok, f"a {size} tmpfs for the disk-full tests (root, mount -t tmpfs)")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder: Path) -> Path:
    """Take all the space left on `folder`'s disk; returns the filler file (unlink it to free)."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def camera_config(make_config: Callable[..., Any], cams: dict[str, str], segment_s: int = 2, **rec: Any) -> Any:
    devices = [{"id": cid, "kind": "camera", "url": url, **({} if isinstance(url, str) else url)} if isinstance(url, str)
               else {"id": cid, "kind": "camera", **url} for cid, url in cams.items()]
    return make_config(devices=devices, recording={"segment_s": segment_s, "pre_roll_s": 2, "stall_s": 3, "open_timeout_s": 3,
                                                   "retention_check_s": 3600, "min_free_bytes": 0, **rec})
