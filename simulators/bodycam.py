"""Simulated body-worn recorders uploading over a 4G link with tuspy.

    gateway-sim bodycam --url http://127.0.0.1:8080 --device bc-1:dk_xxx --device bc-2:dk_yyy \
        [--files a.mp4 b.mp4 | --generate 2 --seconds 10] [--chunk-size 1048576] \
        [--rate 2000000] [--cut-at 300000] [--person-id p1] [--case-ref C-42]

Each device uploads its files (generated H.264 clips when --generate is used)
to /api/uploads/ in chunks with a sha1 Upload-Checksum per chunk. --rate
limits each device to that many bytes per second (a 4G uplink); --cut-at
drops the connection in the middle of a PATCH after that many bytes of the
file, the way a recorder losing coverage does, then resumes from the offset
the server reports (HEAD), as tuspy does after a failure.

Python API (for the scenario runner)::

    from simulators.bodycam import Recorder, upload_file, run_recorders
    rec = Recorder(base_url, "bc-1", key, person_id="p1")
    result = upload_file(rec, Path("clip.mp4"), chunk_size=256 * 1024, rate_bps=500_000, cut_at=100_000)
    result.url, result.sha256, result.size, result.resumed, result.seconds
    results = run_recorders([(rec, [path1, path2]), (rec2, [path3])], chunk_size=..., rate_bps=...)  # one thread per device
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from tusclient.client import TusClient
from tusclient.uploader import Uploader

ENDPOINT = "/api/uploads/"


@dataclass
class Recorder:
    base_url: str
    device_id: str
    key: str
    person_id: str | None = None
    case_ref: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Device-Key": self.key}


@dataclass
class UploadResult:
    device_id: str
    path: Path
    url: str
    size: int
    sha256: str
    resumed: bool = False
    seconds: float = 0.0
    cut_offset: int | None = None  # server offset after the cut


class Throttled(io.RawIOBase):
    """A file whose reads take as long as a link of `rate_bps` would."""

    def __init__(self, f: IO[bytes], rate_bps: float | None) -> None:
        self.f, self.rate = f, rate_bps
        self._t0, self._sent = time.monotonic(), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.f.seek(pos, whence)

    def tell(self) -> int:
        return self.f.tell()

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        data = self.f.read(n)
        if self.rate and data:
            self._sent += len(data)
            ahead = self._sent / self.rate - (time.monotonic() - self._t0)
            if ahead > 0:
                time.sleep(ahead)
        return data


def metadata(rec: Recorder, path: Path, recorded_at: datetime | None = None) -> dict[str, str]:
    m = {"filename": path.name, "device_id": rec.device_id,
         "recorded_at": (recorded_at or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)).isoformat()}
    if rec.person_id:
        m["person_id"] = rec.person_id
    if rec.case_ref:
        m["case_ref"] = rec.case_ref
    return m


def cut_patch(url: str, headers: dict[str, str], data: bytes, offset: int, send: int) -> None:
    """A PATCH announcing `len(data)` bytes whose connection dies after `send` of them."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=30)
    conn.putrequest("PATCH", u.path)
    for k, v in {**headers, "Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
                 "Content-Type": "application/offset+octet-stream", "Content-Length": str(len(data))}.items():
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(data[:send])
    conn.sock.close()  # coverage lost: no FIN after a complete body, just gone


def upload_file(rec: Recorder, path: Path, *, chunk_size: int = 1024 * 1024, rate_bps: float | None = None,
                cut_at: int | None = None, checksum: bool = True, recorded_at: datetime | None = None) -> UploadResult:
    """Upload one file like a recorder; with `cut_at`, cut the link there and resume."""
    t0 = time.monotonic()
    size = path.stat().st_size
    client = TusClient(rec.base_url.rstrip("/") + ENDPOINT, headers=rec.headers)
    meta = metadata(rec, path, recorded_at)
    resumed, cut_offset = False, None
    with open(path, "rb") as f:
        stream = Throttled(f, rate_bps)
        up = Uploader(file_stream=stream, client=client, chunk_size=chunk_size, metadata=meta, upload_checksum=checksum)  # type: ignore[arg-type]
        if cut_at is not None and 0 < cut_at < size:
            # whole chunks up to the chunk the cut falls in, then the torn PATCH
            below = (cut_at // chunk_size) * chunk_size
            if below:
                up.upload(stop_at=below)
            else:
                up.set_url(up.create_url())
            end = min(below + chunk_size, size)
            f.seek(below)
            cut_patch(up.url, rec.headers, f.read(end - below), below, cut_at - below)  # type: ignore[arg-type]
            # a fresh uploader on the same URL asks the server (HEAD) where to go on
            up = Uploader(file_stream=stream, client=client, url=up.url, chunk_size=chunk_size, metadata=meta, upload_checksum=checksum)  # type: ignore[arg-type]
            cut_offset, resumed = up.offset, True
        up.upload()
        url = up.url
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return UploadResult(rec.device_id, path, str(url), size, h.hexdigest(), resumed, time.monotonic() - t0, cut_offset)


def run_recorders(jobs: list[tuple[Recorder, list[Path]]], **kw: Any) -> list[UploadResult]:
    """Several devices at once, one thread each (files in order per device)."""
    results: list[UploadResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one(rec: Recorder, paths: list[Path]) -> None:
        for p in paths:
            try:
                r = upload_file(rec, p, **kw)
            except BaseException as e:  # reported to the caller, not swallowed
                with lock:
                    errors.append(e)
                return
            with lock:
                results.append(r)

    threads = [threading.Thread(target=one, args=job, name=f"bodycam-{job[0].device_id}") for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


async def play(spec: dict[str, Any], ctx: Any) -> None:
    """Scenario player: `{kind: bodycam, id: bc-1, params: {every_s: 600, seconds: 20, count: 0,
    chunk_size: 262144, rate_bps: 500000, cut_at: 100000, person_id: p1, case_ref: C-1}}`.
    Records (generates) a clip every `every_s` scenario seconds and uploads it; `count: 0`
    means until the scenario stops. The key comes from `ctx.device_keys`."""
    import asyncio
    import logging

    from simulators.media import make_clip

    log = logging.getLogger(__name__)
    p = dict(spec.get("params") or {})
    key = ctx.device_keys.get(spec["id"])
    if key is None:
        raise ValueError(f"no key for body-cam {spec['id']} (create it with POST /api/devices or `gateway device key`)")
    rec = Recorder(ctx.gateway_url, spec["id"], key, p.get("person_id"), p.get("case_ref"))
    count, n = int(p.get("count", 0)), 0
    with tempfile.TemporaryDirectory(prefix=f"bodycam-{spec['id']}-") as tmp:
        while not ctx.stop.is_set() and (count == 0 or n < count):
            clip = Path(await asyncio.to_thread(make_clip, Path(tmp) / f"{spec['id']}-{n:04d}.mp4", seconds=float(p.get("seconds", 10))))
            try:
                r = await asyncio.to_thread(upload_file, rec, clip, chunk_size=int(p.get("chunk_size", 256 * 1024)), rate_bps=p.get("rate_bps"),
                                            cut_at=p.get("cut_at"), recorded_at=datetime.now(timezone.utc))
                log.info("bodycam %s: uploaded %s (%d bytes%s)", spec["id"], clip.name, r.size, f", cut and resumed at {r.cut_offset}" if r.resumed else "")
            except Exception as e:  # a refused upload is reported, the recorder goes on
                log.warning("bodycam %s: upload of %s failed: %s", spec["id"], clip.name, e)
            clip.unlink(missing_ok=True)
            n += 1
            await ctx.sleep_scenario(float(p.get("every_s", 600)))


def _main(args: argparse.Namespace) -> int:
    recs = []
    for spec in args.device:
        dev, _, key = spec.partition(":")
        if not key:
            raise SystemExit(f"--device {spec!r}: expected ID:KEY")
        recs.append(Recorder(args.url, dev, key, args.person_id, args.case_ref))
    with tempfile.TemporaryDirectory(prefix="bodycam-") as tmp:
        jobs: list[tuple[Recorder, list[Path]]] = []
        for rec in recs:
            files = [Path(p) for p in args.files]
            if args.generate:
                from simulators.media import make_clip

                files = [make_clip(Path(tmp) / f"{rec.device_id}-{n}.mp4", seconds=args.seconds) for n in range(args.generate)]
                files = [Path(p) for p in files]
            jobs.append((rec, files))
        results = run_recorders(jobs, chunk_size=args.chunk_size, rate_bps=args.rate, cut_at=args.cut_at)
    for r in results:
        extra = f" (cut, resumed from {r.cut_offset})" if r.resumed else ""
        print(f"{r.device_id} {r.path.name}: {r.size} bytes in {r.seconds:.1f}s sha256={r.sha256[:16]}… {r.url}{extra}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("bodycam", help="body-worn recorders uploading with tus (tuspy), over a throttled, cut-prone link",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL")
    p.add_argument("--device", action="append", required=True, metavar="ID:KEY", help="a body-cam and its device key (repeat for several devices at once)")
    p.add_argument("--files", nargs="*", default=[], help="files to upload (each device uploads all of them)")
    p.add_argument("--generate", type=int, default=0, metavar="N", help="generate N H.264 clips per device instead")
    p.add_argument("--seconds", type=float, default=10, help="length of generated clips")
    p.add_argument("--chunk-size", type=int, default=1024 * 1024, help="bytes per PATCH")
    p.add_argument("--rate", type=float, default=None, metavar="BYTES_PER_S", help="bandwidth limit per device")
    p.add_argument("--cut-at", type=int, default=None, metavar="BYTE", help="drop the connection at this byte of each file, then resume")
    p.add_argument("--person-id", default=None)
    p.add_argument("--case-ref", default=None)
    p.set_defaults(func=_main)


__all__ = ["Recorder", "UploadResult", "upload_file", "run_recorders", "play", "register"]
