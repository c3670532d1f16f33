"""Enrollment, 1:1 verification (kiosk check-ins) and 1:N identification,
with storage and audit. One instance per gateway, built by the composition root.

Pixels are handled in `FaceWorkers` processes; distances against the index are
numpy in a thread; the event loop only awaits.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import select, update

from config.faces import FaceSettings
from gateway.audit import Audit
from gateway.bus import EventBus
from gateway.clock import Clock, as_utc
from gateway.db.engine import Database
from gateway.db.models import CheckInRow, FaceEncoding, LivenessChallenge, Person
from gateway.events import CheckIn
from gateway.evidence import confined
from gateway.metrics import Metrics
from recognition.challenge import PROMPTS, judge_challenge
from recognition.faces import Analysis, Params
from recognition.index import FaceIndex
from recognition.liveness import LivenessResult, judge
from recognition.worker import FaceWorkers

log = logging.getLogger(__name__)
Result = Literal["accepted", "rejected", "retry"]


class FaceInputError(ValueError):
    """Bad input from the caller (HTTP 4xx): `status` and a clear message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Verdict:
    """Quality verdict for one enrollment photo."""

    accepted: bool
    reasons: list[str]
    metrics: dict[str, Any]
    encoding_id: int | None = None
    duplicate_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "reasons": self.reasons, "metrics": self.metrics, "encoding_id": self.encoding_id, "duplicate_of": self.duplicate_of}


@dataclass
class Decision:
    result: Result
    reason: str
    distance: float | None
    threshold: float
    checkin_id: int | None = None
    liveness: dict[str, Any] = field(default_factory=dict)

    @property
    def match(self) -> bool:
        return self.result == "accepted"

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "match": self.match, "distance": self.distance, "threshold": self.threshold, "reason": self.reason, "checkin_id": self.checkin_id, "liveness": self.liveness}


@dataclass
class Challenge:
    """What a kiosk is asked to do, and how to send it."""

    challenge_id: str
    kind: str
    prompt: dict[str, str]
    frames_wanted: int
    interval_ms: int
    expires_at: datetime


def spread(n: int, k: int) -> frozenset[int]:
    """`k` indices spread over `n` frames, first and last included."""
    if n <= k:
        return frozenset(range(n))
    return frozenset(round(i * (n - 1) / (k - 1)) for i in range(k))


def sniff_ext(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "bmp"


def when_made(made_at: datetime | None, received: datetime, lapsed: dict[str, Any] | None) -> datetime:
    """When a check-in was made: the terminal's `made_at` (a check-in queued while the gateway was
    out of reach counts for the time and day the person stood there), never after it reached
    the gateway (a clock running ahead), nor before the gateway's lapsed challenge it answered
    was issued (when the gateway confirmed that challenge)."""
    if made_at is None:
        return received
    made = as_utc(made_at)
    if made > received:
        return received
    if lapsed and lapsed.get("confirmed") and lapsed.get("issued_at"):
        made = max(made, as_utc(datetime.fromisoformat(lapsed["issued_at"])))
    return made


class Recognition:
    name = "recognition"

    def __init__(self, *, settings: FaceSettings, db: Database, audit: Audit, bus: EventBus, clock: Clock, metrics: Metrics, media_dir: Path) -> None:
        self.settings = settings
        self.db, self.audit, self.bus, self.clock, self.media_dir = db, audit, bus, clock, media_dir
        self.workers = FaceWorkers(self.settings.workers)
        self.index = FaceIndex()
        m = metrics
        self.m_decisions = m.counter("gateway_face_decisions_total", "1:1 face decisions", ("source", "result"))
        self.m_bad = m.counter("gateway_face_bad_input_total", "Face requests refused as bad input", ("reason",))
        self.m_enroll = m.counter("gateway_face_enrollments_total", "Enrollment photos by verdict", ("verdict",))
        self.m_challenges = m.counter("gateway_face_challenges_total", "Active-liveness challenges judged, by kind and verdict", ("kind", "verdict"))
        self.m_latency = m.histogram("gateway_face_verify_seconds", "1:1 verification time", buckets=(0.05, 0.1, 0.15, 0.25, 0.5, 1, 2, 5))

    # -- lifecycle -------------------------------------------------------
    async def start(self) -> None:
        await self.reload()

    async def stop(self) -> None:
        await asyncio.to_thread(self.workers.close)

    async def reload(self) -> None:
        async with self.db.session() as s:
            rows = (await s.execute(select(FaceEncoding.id, FaceEncoding.person_id, FaceEncoding.encoding))).all()
        self.index.load([(r[0], r[1], np.frombuffer(r[2], dtype="<f8")) for r in rows])

    # -- helpers ---------------------------------------------------------
    def params(self, **kw: Any) -> Params:
        s = self.settings
        return Params(max_pixels=s.max_image_pixels, detect_max_side=s.detect_max_side, upsample=s.detect_upsample,
                      max_clip_pixels=s.max_clip_pixels, max_clip_frames=s.max_clip_frames, **kw)

    def bad(self, status: int, reason_key: str, message: str) -> FaceInputError:
        self.m_bad.labels(reason_key).inc()
        return FaceInputError(status, message)

    def unusable(self, a: Analysis, where: str = "") -> FaceInputError:
        """A worker's refusal as an HTTP error: its kind gives the status (over a pixel limit
        413, anything else 422), never the wording of its message."""
        message = f"{where}{a.error}"
        if a.error_kind == "too_large":
            return self.bad(413, "too_large", message)
        return self.bad(422, "image", message)

    def _store(self, folder: str, name: str, data: bytes) -> str:
        rel = f"faces/{folder}/{name}"
        path = confined(self.media_dir, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return rel

    def classify(self, distance: float) -> tuple[Result, str]:
        thr, margin = self.settings.match_threshold, self.settings.retry_margin
        if distance <= thr - margin:
            return "accepted", f"same person (distance {distance:.3f} <= {thr - margin:.3f})"
        if distance <= thr + margin:
            return "retry", f"uncertain (distance {distance:.3f} within {margin:.2f} of the threshold {thr:.2f}): look straight at the camera and try again"
        return "rejected", f"face does not match the enrolled person (distance {distance:.3f} > {thr + margin:.3f})"

    async def _person(self, person_id: str) -> Person:
        async with self.db.session() as s:
            p = await s.get(Person, person_id)
        if p is None:
            raise self.bad(404, "unknown_person", f"no person {person_id}")
        return p

    async def _analyse_checked(self, data: bytes, p: Params) -> Analysis:
        a = await self.workers.analyse_bytes(data, p)
        if a.error:
            raise self.unusable(a)
        return a

    # -- enrollment ------------------------------------------------------
    async def enroll(self, person_id: str, data: bytes, actor: str) -> Verdict:
        await self._person(person_id)
        a = await self._analyse_checked(data, self.params())
        s = self.settings
        reasons: list[str] = []
        metrics: dict[str, Any] = {"width": a.width, "height": a.height, "faces": len(a.faces)}
        dup: str | None = None
        if not a.faces:
            reasons.append("no face found")
        elif len(a.faces) > 1:
            reasons.append(f"{len(a.faces)} faces found; an enrollment photo must show exactly one")
        else:
            f = a.faces[0]
            metrics.update(face_px=f.size_px, sharpness=round(f.sharpness, 1), brightness=round(f.brightness, 1))
            if f.size_px < s.min_face_px:
                reasons.append(f"face too small ({f.size_px} px, at least {s.min_face_px} px)")
            if f.sharpness < s.min_sharpness:
                reasons.append(f"too blurred (sharpness {f.sharpness:.0f}, at least {s.min_sharpness:.0f})")
            if f.brightness < s.min_brightness:
                reasons.append(f"too dark (brightness {f.brightness:.0f}, at least {s.min_brightness:.0f})")
            if f.encoding is not None:
                near = await asyncio.to_thread(self.index.nearest, f.encoding, 1, person_id)
                limit = s.duplicate_threshold or s.match_threshold
                if near and near[0][1] <= limit:
                    dup = near[0][0]
                    metrics["duplicate_distance"] = round(near[0][1], 4)
                    reasons.append(f"duplicate: this face matches person {dup} (distance {near[0][1]:.3f}); flagged for review")
        verdict = Verdict(not reasons, reasons, metrics, duplicate_of=dup)
        self.m_enroll.labels("accepted" if verdict.accepted else "refused").inc()
        audit = self.audit
        if not verdict.accepted:
            await audit.log(actor, "face.enroll_refused", f"person:{person_id}", {"reasons": reasons, "duplicate_of": dup, **metrics})
            return verdict
        enc = a.faces[0].encoding
        assert enc is not None
        digest = hashlib.sha256(data).hexdigest()
        rel = await asyncio.to_thread(self._store, f"photos/{digest[:2]}", f"{digest}.{sniff_ext(data)}", data)
        async with audit.tx() as sess:
            row = FaceEncoding(person_id=person_id, photo_path=rel, encoding=enc.astype("<f8").tobytes(), quality={"verdict": "accepted", "reasons": [], "sha256": digest, **metrics})
            sess.add(row)
            await sess.flush()
            await audit.add(sess, actor, "face.enrolled", f"person:{person_id}", {"encoding_id": row.id, "sha256": digest, **metrics})
        self.index.add(row.id, person_id, enc)
        verdict.encoding_id = row.id
        return verdict

    async def delete_photo(self, person_id: str, encoding_id: int, actor: str) -> bool:
        async with self.audit.tx() as s:
            row = await s.get(FaceEncoding, encoding_id)
            if row is None or row.person_id != person_id:
                return False
            rel = row.photo_path
            await s.delete(row)
            await self.audit.add(s, actor, "face.photo_deleted", f"person:{person_id}", {"encoding_id": encoding_id})
            await s.flush()
            # Files are named by content hash: keep the file while another row still uses it.
            shared = (await s.scalars(select(FaceEncoding.id).where(FaceEncoding.photo_path == rel).limit(1))).first()
        self.index.remove(encoding_id)
        if shared is None:
            confined(self.media_dir, rel).unlink(missing_ok=True)
        return True

    # -- active liveness ---------------------------------------------------
    async def issue_challenge(self, kiosk_id: str, person_id: str, actor: str | None = None) -> Challenge:
        """A random challenge for this kiosk (or remote link, `remote:<id>`) and person, stored so
        that any node can check the answer."""
        await self._person(person_id)
        if len(self.index.of_person(person_id)) == 0:
            raise self.bad(409, "not_enrolled", f"person {person_id} has no enrolled face photos")
        a = self.settings.active_liveness
        kind = secrets.choice(a.kinds)
        now = self.clock.now()
        row = LivenessChallenge(id=secrets.token_urlsafe(24), device_id=kiosk_id, person_id=person_id, kind=kind, issued_at=now, expires_at=now + timedelta(seconds=a.ttl_s))
        async with self.audit.tx() as sess:
            sess.add(row)
            await self.audit.add(sess, actor or f"kiosk:{kiosk_id}", "kiosk.challenge_issued", f"person:{person_id}", {"kind": kind, "expires_at": row.expires_at.isoformat()})
        return Challenge(row.id, kind, PROMPTS[kind], a.frames_wanted, a.interval_ms, row.expires_at)

    async def take_challenge(self, challenge_id: str, kiosk_id: str, person_id: str) -> str:
        """Uses the challenge up (once, on any node) and returns its kind; FaceInputError when it
        is unknown, another kiosk's or person's, expired or used already."""
        now = self.clock.now()
        async with self.db.session() as s:
            row = await s.get(LivenessChallenge, challenge_id)
            if row is None:
                raise self.bad(404, "challenge_unknown", "unknown challenge_id: ask POST /api/kiosk/challenges for one")
            if row.device_id != kiosk_id:
                raise self.bad(403, "challenge_other_kiosk", "this challenge was issued to another kiosk")
            if row.person_id != person_id:
                raise self.bad(403, "challenge_other_person", f"this challenge was issued for another person, not {person_id}")
            if row.used_at is not None:
                raise self.bad(409, "challenge_used", "this challenge was used already; ask for a new one")
            if now > row.expires_at:
                raise self.bad(410, "challenge_expired", f"this challenge expired at {row.expires_at.isoformat()}; ask for a new one")
            done = await s.execute(update(LivenessChallenge).where(LivenessChallenge.id == challenge_id, LivenessChallenge.used_at.is_(None)).values(used_at=now))
            await s.commit()
        if getattr(done, "rowcount", 1) != 1:  # another request (maybe on another node) took it first
            raise self.bad(409, "challenge_used", "this challenge was used already; ask for a new one")
        return row.kind

    async def _lapsed_challenge(self, challenge_id: str, kiosk_id: str, person_id: str, kind: str | None) -> dict[str, Any]:
        """A terminal-chosen answer sent in place of the gateway's challenge `challenge_id`, which
        lapsed while the check-in waited offline: `confirmed` when that challenge was issued to
        this kiosk for this person, of this kind, and never used (it is used up now), with when
        it was issued and expired (the answer was filmed after it was issued). The answer is
        judged as terminal-chosen either way; a claim the gateway cannot confirm is only noted."""
        async with self.db.session() as s:
            row = await s.get(LivenessChallenge, challenge_id)
            ok = row is not None and row.device_id == kiosk_id and row.person_id == person_id and row.kind == kind and row.used_at is None
            if row is None or not ok:
                return {"challenge_id": challenge_id, "confirmed": False}
            done = await s.execute(update(LivenessChallenge).where(LivenessChallenge.id == challenge_id, LivenessChallenge.used_at.is_(None))
                                   .values(used_at=self.clock.now()))
            await s.commit()
        return {"challenge_id": challenge_id, "confirmed": getattr(done, "rowcount", 1) == 1,
                "issued_at": row.issued_at.isoformat(), "expires_at": row.expires_at.isoformat()}

    # -- 1:1 ---------------------------------------------------------------
    async def verify(self, person_id: str, photos: list[bytes], *, source: str, actor: str, liveness: bool, clip: bytes | None = None,
                     challenge_id: str | None = None, offline_challenge: str | None = None, lapsed_challenge_id: str | None = None,
                     position: dict[str, Any] | None = None, made_at: datetime | None = None) -> Decision:
        """One decision, stored with its distance, threshold and a thumbnail, published as a CheckIn.
        `photos` is a burst of frames, or `clip` a short video from which frames are taken.
        Kiosks (`liveness`): passive liveness first, then the challenge `challenge_id` asked for
        (required when `active_liveness.required`), or the terminal-chosen `offline_challenge`;
        with it, `lapsed_challenge_id`: the gateway's challenge of that kind which lapsed while
        the check-in waited in the terminal's outbox, recorded with the decision. `position`:
        where a remote check-in was made and its verdict, stored with the check-in."""
        t0 = self.clock.monotonic()
        s = self.settings
        if clip is not None and photos:
            raise self.bad(422, "both", "send frames or a clip, not both")
        if not photos and not clip:
            raise self.bad(422, "empty_burst", "no photo or frames in the request")
        if len(photos) > s.max_photos:
            raise self.bad(413, "too_many", f"{len(photos)} photos; at most {s.max_photos} per check-in")
        await self._person(person_id)
        known = self.index.of_person(person_id)
        if len(known) == 0:
            raise self.bad(409, "not_enrolled", f"person {person_id} has no enrolled face photos")
        if clip is None and liveness and len(photos) < s.liveness.min_frames:
            raise self.bad(422, "short_burst", f"a kiosk check-in needs a burst of at least {s.liveness.min_frames} frames for the liveness check, got {len(photos)}")
        act = s.active_liveness
        kind: str | None = None
        chosen_by_terminal = liveness and challenge_id is None and offline_challenge is not None
        if chosen_by_terminal and not act.allow_offline:
            raise self.bad(422, "offline_challenge_refused", "check-ins made offline are not accepted here (active_liveness.allow_offline is false)")
        if liveness and challenge_id is None and offline_challenge is None and act.required:
            raise self.bad(422, "challenge_required", "a kiosk check-in must answer a challenge: POST /api/kiosk/challenges, then send its challenge_id with the frames")
        if liveness and challenge_id is not None:
            kind = await self.take_challenge(challenge_id, source, person_id)
        elif chosen_by_terminal:
            kind = offline_challenge
        if clip is not None:
            frames = await self.workers.analyse_clip(clip, max(s.liveness.min_frames, act.frames_wanted if kind else 5), self.params(landmarks=liveness))
        elif kind is not None:
            burst = photos[: s.liveness.max_frames]
            frames = await self.workers.analyse_sequence(burst, self.params(landmarks=True), spread(len(burst), act.identity_frames))
        else:
            frames = await self.workers.analyse_many(photos[: s.liveness.max_frames], self.params(landmarks=liveness))
        for i, a in enumerate(frames):
            if a.error:
                raise self.unusable(a, f"frame {i}: " if len(frames) > 1 else "")
        live: LivenessResult | None = judge(frames, s.liveness) if liveness else None
        dists = [float(np.min(np.linalg.norm(known - a.faces[0].encoding, axis=1))) for a in frames if len(a.faces) == 1 and a.faces[0].encoding is not None]
        several = sum(1 for a in frames if len(a.faces) > 1)
        distance: float | None = None
        result: Result
        if several and several * 2 >= len(frames):
            result, reason = "rejected", f"several faces in front of the camera ({max(len(a.faces) for a in frames)}); one person at a time"
        elif not dists:
            result, reason = "rejected", "no face found"
        else:
            distance = round(float(np.median(dists)), 4)
            result, reason = self.classify(distance)
            if result == "accepted" and max(dists) > s.match_threshold + s.retry_margin:
                result, reason = "rejected", f"the face changed during the burst (frame distances {min(dists):.3f}..{max(dists):.3f})"
        if live is not None and not live.live and result != "rejected":
            result, reason = "rejected", f"liveness: {live.reason}"
        active = judge_challenge(kind, frames, act) if kind is not None else None
        if active is not None:
            assert kind is not None
            self.m_challenges.labels(kind, "passed" if active.passed else "failed").inc()
            if not active.passed and result != "rejected":
                result, reason = "rejected", f"liveness: challenge {kind} not met: {active.reason}"
        thumb_src = next((a for a in frames if len(a.faces) == 1), frames[0])
        thumb = None
        if thumb_src.thumbnail:
            thumb = await asyncio.to_thread(self._store, f"checkins/{self.clock.now():%Y-%m-%d}", f"{uuid.uuid4().hex}.jpg", thumb_src.thumbnail)
        details = live.details | {"live": live.live, "reason": live.reason} if live else {}
        if active is not None:
            details["challenge"] = {"kind": kind, "passed": active.passed, "reason": active.reason, "details": active.details,
                                    "issued_by": "terminal" if chosen_by_terminal else "gateway"}
            if chosen_by_terminal and lapsed_challenge_id:
                details["challenge"]["lapsed"] = await self._lapsed_challenge(lapsed_challenge_id, source, person_id, kind)
        decision = Decision(result, reason, distance, s.match_threshold, liveness=details)
        kiosk_id = source
        received = self.clock.now()
        at = when_made(made_at, received, (details.get("challenge") or {}).get("lapsed"))
        async with self.audit.tx() as sess:
            unit_id = await sess.scalar(select(Person.unit_id).where(Person.id == person_id)) or "root"  # the person's unit
            row = CheckInRow(kiosk_id=kiosk_id, person_id=person_id, unit_id=unit_id, at=at, received_at=received if at != received else None, result=result, distance=distance, threshold=s.match_threshold, reason=reason, thumbnail=thumb, liveness=details,
                             position=position)
            sess.add(row)
            await sess.flush()
            decision.checkin_id = row.id
            await self.audit.add(sess, actor, "face.checkin", f"person:{person_id}", {"checkin_id": row.id, "result": result, "distance": distance, "source": source})
        self.m_decisions.labels("kiosk" if liveness else "api", result).inc()
        self.m_latency.observe(self.clock.monotonic() - t0)
        await self.bus.publish(CheckIn(checkin_id=row.id, kiosk_id=kiosk_id, person_id=person_id, result=result, distance=distance, reason=reason, at=row.at,
                                     position_verdict=(position or {}).get("verdict")))
        return decision

    async def presence(self, person_id: str, picture: bytes) -> tuple[str, float | None, str]:
        """Is the enrolled person in this picture (a frame of a remote session)? `present`,
        `impostor` (a face, not theirs), `absent` (no face) or `uncertain` (near the threshold,
        or the person has no enrolled face), with the best distance and why."""
        known = self.index.of_person(person_id)
        if len(known) == 0:
            return "uncertain", None, f"person {person_id} has no enrolled face photos"
        a = await self.workers.analyse_bytes(picture, self.params(thumbnail=False))
        if a.error:
            return "uncertain", None, a.error
        encodings = [f.encoding for f in a.faces if f.encoding is not None]
        if not encodings:
            return "absent", None, "no face in the picture"
        best = min(float(np.min(np.linalg.norm(known - e, axis=1))) for e in encodings)
        result, reason = self.classify(best)
        return {"accepted": "present", "retry": "uncertain", "rejected": "impostor"}[result], round(best, 4), reason

    # -- 1:N ---------------------------------------------------------------
    async def identify(self, data: bytes, k: int = 5) -> dict[str, Any]:
        a = await self._analyse_checked(data, self.params(thumbnail=False))
        faces = []
        for f in a.faces:
            assert f.encoding is not None
            faces.append({"box": list(f.box), **self.match_encoding(f.encoding, k)})
        return {"faces": faces, "threshold": self.settings.match_threshold}

    def match_encoding(self, encoding: np.ndarray, k: int = 5) -> dict[str, Any]:
        """Candidates nearest first; `person_id` only when the best is clearly inside the threshold (never forced)."""
        cands = self.index.nearest(encoding, k)
        best = cands[0] if cands else None
        person = best[0] if best and self.classify(best[1])[0] == "accepted" else None
        return {"person_id": person, "distance": round(best[1], 4) if best else None, "candidates": [{"person_id": p, "distance": round(d, 4)} for p, d in cands]}

