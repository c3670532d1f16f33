"""1:N face sampler: a few decoded frames per second from cameras with
`recognition: true`, identified against the enrolled persons with voting across
frames, reported as `face.seen` events and `face_matches` rows.

Per camera, a thread reads the camera's fan-out (its own bounded queue, so a
slow sampler only loses its own packets), decodes H.264 and hands a frame to
asyncio every 1/sample_fps seconds, but only when the previous one has been
processed: under load the sampler lowers its rate instead of building a
backlog. Detection and encoding run in the recognition worker processes.

A sighting is reported when `min_votes` frames within `vote_window_s` agree on a
person; a face that matches nobody clearly is kept as unknown (person_id None),
never given to the nearest person. Attendance: every `face.seen` of a person on
a camera of a proceeding that is recording is added to `proceedings.attendance`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from sqlalchemy import select

from config.faces import FaceSettings
from gateway.bus import EventBus
from gateway.db.engine import Database
from gateway.db.models import FaceMatch, Proceeding
from gateway.events import FaceSeen
from gateway.metrics import Metrics
from streams.fanout import Consumer, Fanout

if TYPE_CHECKING:
    from drivers.camera import CameraArea
    from recognition.service import Recognition

log = logging.getLogger(__name__)


@dataclass
class Sighting:
    person_id: str | None
    distance: float | None
    votes: int


class Voter:
    """Votes across frames per camera. Pure (times are passed in), so it is tested without video."""

    def __init__(self, window_s: float, min_votes: int, cooldown_s: float) -> None:
        self.window_s, self.min_votes, self.cooldown_s = window_s, min_votes, cooldown_s
        self._obs: dict[str, deque[tuple[float, str | None, float | None]]] = {}
        self._last: dict[tuple[str, str | None], float] = {}

    def add(self, camera_id: str, t: float, person_id: str | None, distance: float | None) -> Sighting | None:
        q = self._obs.setdefault(camera_id, deque())
        q.append((t, person_id, distance))
        while q and q[0][0] < t - self.window_s:
            q.popleft()
        same = [o for o in q if o[1] == person_id]
        if len(same) < self.min_votes:
            return None
        last = self._last.get((camera_id, person_id))
        if last is not None and t - last < self.cooldown_s:
            return None
        self._last[(camera_id, person_id)] = t
        dists = [o[2] for o in same if o[2] is not None]
        return Sighting(person_id, min(dists) if dists else None, len(same))


class FaceSampler:
    name = "face-sampler"

    def __init__(self, *, settings: FaceSettings, bus: EventBus, db: Database, metrics: Metrics, recognition: "Recognition", cameras: "CameraArea") -> None:
        self.settings, self.bus, self.db = settings, bus, db
        self.recognition, self.cameras = recognition, cameras
        s = settings
        self.fps, self.max_side = s.sample_fps, s.sample_max_side
        self.voter = Voter(s.vote_window_s, s.min_votes, s.seen_cooldown_s)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._consumers: dict[str, tuple[Fanout, Consumer]] = {}  # per camera sampled
        self._loop: asyncio.AbstractEventLoop | None = None
        self._busy: set[str] = set()
        m = metrics
        self.m_frames = m.counter("gateway_face_sampled_frames_total", "Frames sampled for 1:N", ("camera_id",))
        self.m_seen = m.counter("gateway_face_seen_total", "face.seen events", ("camera_id", "known"))

    async def start(self) -> None:
        self.bus.subscribe("face-attendance", self._on_proceeding, topics=("proceeding",), maxsize=100)
        self._loop = asyncio.get_running_loop()
        self._sync()
        # cameras added, edited or removed through the API: the area tells us after each change
        self.cameras.watch(self._sync)

    def _sync(self) -> None:
        """Sample exactly the cameras with `recognition: true` that the area runs now: a
        consumer on each one's current fan-out (a camera replaced by an edit has a new one)."""
        wanted = {c.id: c.fanout for c in self.cameras.cameras.values() if c.cfg.recognition}
        for cam_id, (fanout, consumer) in list(self._consumers.items()):
            if wanted.get(cam_id) is not fanout:
                fanout.remove(consumer)  # its thread sees the consumer closed and ends
                del self._consumers[cam_id]
        assert self._loop is not None
        for cam_id, fanout in wanted.items():
            if cam_id in self._consumers:
                continue
            consumer = fanout.add(Consumer(f"sampler:{cam_id}", 300, video_only=True))
            self._consumers[cam_id] = (fanout, consumer)
            t = threading.Thread(target=self._decode_loop, args=(cam_id, consumer, self._loop), name=f"sampler-{cam_id}", daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    async def stop(self) -> None:
        self._stop.set()
        for fanout, consumer in self._consumers.values():
            fanout.remove(consumer)
        self._consumers.clear()
        for t in self._threads:
            await asyncio.to_thread(t.join, 5)

    # -- decoding thread ---------------------------------------------------
    def _decode_loop(self, cam_id: str, consumer: Consumer, loop: asyncio.AbstractEventLoop) -> None:
        import av

        from streams.fanout import MediaPacket, SourceDown, StreamInfo

        ctx: Any = None
        want_key = True
        next_at = 0.0
        while not self._stop.is_set() and not consumer.closed:
            item = consumer.get(timeout=0.5)
            if item is None:
                continue
            if isinstance(item, StreamInfo):
                ctx = cast("av.VideoCodecContext", av.CodecContext.create(item.codec, "r"))
                if item.extradata:
                    ctx.extradata = item.extradata
                want_key = True
                continue
            if isinstance(item, SourceDown):
                ctx, want_key = None, True
                continue
            if not isinstance(item, MediaPacket) or ctx is None or (want_key and not item.keyframe):
                continue
            want_key = False
            try:
                frames = ctx.decode(av.Packet(item.data))
            except av.error.FFmpegError as e:
                log.debug("sampler %s: decode error %s; waiting for a keyframe", cam_id, e)
                want_key = True
                continue
            for frame in frames:
                now = time.monotonic()
                if now < next_at or cam_id in self._busy:
                    continue
                next_at = now + 1 / self.fps
                scale = min(1.0, self.max_side / max(frame.width, frame.height))
                rgb = frame.to_ndarray(format="rgb24", width=int(frame.width * scale) // 2 * 2, height=int(frame.height * scale) // 2 * 2) if scale < 1 else frame.to_ndarray(format="rgb24")
                self._busy.add(cam_id)
                asyncio.run_coroutine_threadsafe(self._process(cam_id, rgb, item.at), loop)

    # -- on the event loop -------------------------------------------------
    async def _process(self, cam_id: str, rgb: np.ndarray, at: float) -> None:
        try:
            self.m_frames.labels(cam_id).inc()
            a = await self.recognition.workers.analyse_rgb(rgb, self.recognition.params(thumbnail=False, max_faces=10))
            for f in a.faces:
                if f.encoding is None:
                    continue
                m = self.recognition.match_encoding(f.encoding, 1)
                sighting = self.voter.add(cam_id, at, m["person_id"], m["distance"])
                if sighting is not None:
                    await self._report(cam_id, rgb, f.box, sighting, datetime.fromtimestamp(at, UTC))
        except Exception:
            if self._stop.is_set():
                log.debug("sampler %s: frame dropped while stopping", cam_id, exc_info=True)
            else:
                log.exception("sampler %s: frame failed", cam_id)
        finally:
            self._busy.discard(cam_id)

    async def _report(self, cam_id: str, rgb: np.ndarray, box: tuple[int, int, int, int], s: Sighting, seen_at: datetime) -> None:
        from recognition.images import to_jpeg

        t, r, b, lf = box
        m = (b - t) // 2
        h, w = rgb.shape[:2]
        jpg = await asyncio.to_thread(to_jpeg, rgb[max(0, t - m): min(h, b + m), max(0, lf - m): min(w, r + m)], 200)
        rel = await asyncio.to_thread(self.recognition._store, f"seen/{seen_at:%Y-%m-%d}", f"{uuid.uuid4().hex}.jpg", jpg)
        async with self.db.session() as sess:
            row = FaceMatch(camera_id=cam_id, person_id=s.person_id, at=seen_at, distance=s.distance, snapshot=rel)
            sess.add(row)
            await sess.commit()
        self.m_seen.labels(cam_id, "yes" if s.person_id else "no").inc()
        await self.bus.publish(FaceSeen(camera_id=cam_id, person_id=s.person_id, distance=s.distance, seen_at=seen_at, snapshot=f"/api/faces/matches/{row.id}/snapshot.jpg"))
        if s.person_id:
            await record_attendance(self.db, cam_id, s.person_id, seen_at, s.distance)


    async def _on_proceeding(self, event: Any) -> None:
        if getattr(event, "state", None) == "sealed":
            await seal_attendance(self.db, self.settings, event.proceeding_id)


async def seal_attendance(db: Database, settings: FaceSettings, proceeding_id: int) -> None:
    """At the end, attendance is recomputed from every sighting on its cameras during it
    (so a person reported just before the start, still in cooldown, is not missed: the
    window opens `vote_window_s` early)."""
    from datetime import timedelta

    window = timedelta(seconds=settings.vote_window_s + settings.seen_cooldown_s)
    async with db.session() as s:
        p = await s.get(Proceeding, proceeding_id)
        if p is None or p.stopped_at is None:
            return
        rows = (await s.scalars(select(FaceMatch).where(
            FaceMatch.camera_id.in_(list(p.camera_ids or [])), FaceMatch.person_id.is_not(None),
            FaceMatch.at >= p.started_at - window, FaceMatch.at <= p.stopped_at).order_by(FaceMatch.at))).all()
        att: dict[str, dict[str, Any]] = {a["person_id"]: dict(a) for a in (p.attendance or []) if a.get("person_id")}
        for m in rows:
            assert m.person_id is not None
            e = att.setdefault(m.person_id, {"person_id": m.person_id, "first_seen": m.at.isoformat(), "last_seen": m.at.isoformat(), "camera_ids": [], "best_distance": m.distance})
            e["first_seen"] = min(e["first_seen"], m.at.isoformat())
            e["last_seen"] = max(e["last_seen"], m.at.isoformat())
            if m.camera_id not in e["camera_ids"]:
                e["camera_ids"] = [*e["camera_ids"], m.camera_id]
            if m.distance is not None and (e.get("best_distance") is None or m.distance < e["best_distance"]):
                e["best_distance"] = m.distance
        p.attendance = sorted(att.values(), key=lambda a: a["first_seen"])
        await s.commit()


async def record_attendance(db: Database, camera_id: str, person_id: str, seen_at: datetime, distance: float | None) -> None:
    """Add the person to every recording proceeding that uses this camera."""
    async with db.session() as s:
        rows = (await s.scalars(select(Proceeding).where(Proceeding.state == "recording"))).all()
        changed = False
        for p in rows:
            if camera_id not in (p.camera_ids or []):
                continue
            att = [dict(a) for a in (p.attendance or [])]
            entry = next((a for a in att if a.get("person_id") == person_id), None)
            if entry is None:
                att.append({"person_id": person_id, "first_seen": seen_at.isoformat(), "last_seen": seen_at.isoformat(), "camera_ids": [camera_id], "best_distance": distance})
            else:
                entry["last_seen"] = seen_at.isoformat()
                if camera_id not in entry["camera_ids"]:
                    entry["camera_ids"].append(camera_id)
                if distance is not None and (entry.get("best_distance") is None or distance < entry["best_distance"]):
                    entry["best_distance"] = distance
            p.attendance = att
            changed = True
        if changed:
            await s.commit()
