"""Remote video sessions: an officer and the parties (a kiosk, people with a join link)
meet through the gateway, which mixes and records them (streams/call_room.py) and seals the
recording as the session's proceeding, with the manifest and hash chain proceedings have.

A session lives on the node that set it up (its `node_id`; requests reaching another node
are passed on: gateway/api/calls.py). Parties join with an SDP offer and get the answer
(WHEP-like, no trickle: aiortc gathers its candidates before answering). A party whose
connection fails is "dropped": the recording goes on with the others and the gap is noted;
joining again (same link) closes the gap. Identity: each party who is a supervised person is
checked by face when their picture first arrives, at random moments when the session asks
for it (remote education), and when the officer asks; consecutive checks seeing another face
or nobody raise an alert, and attendance minutes count only the verified time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
from aiortc import RTCPeerConnection, RTCSessionDescription
from sqlalchemy import select, update

from config.calls import CallSettings
from gateway.clock import as_utc
from gateway.db.models import CallCheck, CallParty, CallSession, Device
from gateway.events import CallChanged
from gateway.evidence import confined, sha256_file
from streams.call_room import Room, SessionRecorder, ascii_label, trim_partial_fragment
from streams.proceedings import ProceedingError, iso

if TYPE_CHECKING:
    from recognition.service import Recognition
    from streams.proceedings import Proceedings

log = logging.getLogger(__name__)

ALERTS = {"impostor": "call_impostor", "absent": "call_absent"}


class CallError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class PartySpec:
    role: str  # kiosk | link
    label: str
    person_id: str | None = None
    device_id: str | None = None


@dataclass
class Party:
    id: str
    role: str
    label: str
    person_id: str | None
    device_id: str | None
    username: str | None
    state: str = "invited"
    joined_at: datetime | None = None
    gaps: list[dict[str, Any]] = field(default_factory=list)
    last_check: dict[str, Any] | None = None
    strikes: dict[str, int] = field(default_factory=lambda: {"impostor": 0, "absent": 0})

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "label": self.label, "person_id": self.person_id, "device_id": self.device_id,
                "username": self.username, "state": self.state, "joined_at": iso(self.joined_at), "gaps": self.gaps, "last_check": self.last_check}


@dataclass
class Live:
    id: str
    kind: str
    person_id: str | None
    case_ref: str | None
    unit_id: str
    proceeding_id: int
    path: str
    room: Room
    checks: bool
    created_at: datetime
    created_by: str
    state: str  # ringing | active
    parties: dict[str, Party] = field(default_factory=dict)
    pcs: dict[str, RTCPeerConnection] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    ending: bool = False

    def device_id(self) -> str | None:
        return next((p.device_id for p in self.parties.values() if p.role == "kiosk"), None)


class Calls:
    """The sessions this node runs. Built by the composition root with what it uses."""

    name = "calls"

    def __init__(self, *, settings: CallSettings, db: Any, audit: Any, bus: Any, alerts: Any, clock: Any, metrics: Any, media_dir: Path,
                 recognition: Recognition, proceedings: Proceedings, node_id: str, disk: Any) -> None:
        self.settings = settings
        self.disk = disk  # gateway.disk.DiskMonitor
        self.db, self.audit, self.bus, self.alerts, self.clock = db, audit, bus, alerts, clock
        self.media_dir, self.recognition, self.proceedings, self.node_id = media_dir, recognition, proceedings, node_id
        self.live: dict[str, Live] = {}
        self.m_sessions = metrics.gauge("gateway_call_sessions", "Remote video sessions running on this node")
        self.m_parties = metrics.gauge("gateway_call_parties_connected", "Parties connected to this node's sessions")
        self.m_checks = metrics.counter("gateway_call_identity_checks_total", "Identity checks during remote sessions", ("outcome",))

    # -- lifecycle -----------------------------------------------------------
    async def start(self) -> None:
        await self._seal_orphans()

    async def stop(self) -> None:
        await asyncio.gather(*(self.hangup(sid, "gateway", "the gateway was stopped") for sid in list(self.live)), return_exceptions=True)

    async def _seal_orphans(self) -> None:
        """Sessions this node ran when it died: sealed over what their file holds (fragmented
        MP4: everything up to its last fragment)."""
        async with self.db.session() as s:
            rows = (await s.scalars(select(CallSession).where(CallSession.state != "ended", CallSession.node_id == self.node_id))).all()
        for row in rows:
            try:
                await self._seal(row.id, row.proceeding_id, row.path, "gateway", "the gateway stopped during the session; the recording "
                                 "holds everything up to its last fragment", {}, None)
            except Exception:
                log.exception("sealing session %s left by a stopped gateway failed", row.id)

    # -- setting up ------------------------------------------------------------
    async def create(self, *, kind: str, person_id: str | None, case_ref: str | None, unit_id: str, created_by: str,
                     officer: tuple[str, str] | None, parties: list[PartySpec], checks: bool, ringing: bool = False) -> tuple[Live, dict[str, str]]:
        """A session with its parties; returns it and each link party's token (shown once).
        `officer` is (username, label) of the user who takes part from the console."""
        if not self.settings.enabled:
            raise CallError(503, "remote video sessions are disabled here (calls.enabled)")
        if len(parties) + (1 if officer else 0) > self.settings.max_parties:
            raise CallError(422, f"a session has at most {self.settings.max_parties} parties (calls.max_parties)")
        if len(self.live) >= self.settings.max_sessions:
            raise CallError(503, f"this gateway node runs {len(self.live)} sessions already (calls.max_sessions): try again later")
        mine = sum(1 for live in self.live.values() if live.created_by == created_by and not live.ending)
        if mine >= self.settings.max_open_per_user:
            raise CallError(429, f"{created_by} has {mine} sessions running (calls.max_open_per_user): hang one up first")
        if self.disk.full(self.media_dir):
            raise CallError(507, "the disk that holds the recordings is full: a session could not be recorded; free space first")
        for p in parties:
            if p.role == "kiosk" and p.device_id and not ringing:  # a kiosk that calls is there
                await self._reachable(p.device_id)
        sid = secrets.token_hex(8)
        try:
            proceeding = await self.proceedings.start_remote(kind, person_id, case_ref, created_by, unit_id, sid)
        except ProceedingError as e:
            raise CallError(e.status, str(e)) from None
        now = as_utc(self.clock.now())
        rel = f"calls/{now:%Y-%m-%d}/{sid}.mp4"
        tokens: dict[str, str] = {}
        members: list[Party] = []
        rows: list[CallParty] = []
        if officer is not None:
            members.append(Party(secrets.token_hex(6), "officer", officer[1], None, None, officer[0]))
        for spec in parties:
            members.append(Party(secrets.token_hex(6), spec.role, spec.label, spec.person_id, spec.device_id, None))
        expires = now + timedelta(minutes=self.settings.link_valid_minutes)
        for m in members:
            token = None
            if m.role == "link":
                token = secrets.token_urlsafe(24)
                tokens[m.id] = token
            rows.append(CallParty(id=m.id, session_id=sid, role=m.role, label=m.label, person_id=m.person_id, device_id=m.device_id,
                                  username=m.username, token_sha256=token_hash(token) if token else None,
                                  expires_at=expires if token else None, state="invited", gaps=[]))
        async with self.audit.tx() as s:
            s.add(CallSession(id=sid, proceeding_id=proceeding.id, kind=kind, person_id=person_id, case_ref=case_ref,
                              state="ringing" if ringing else "active", checks=checks, node_id=self.node_id, path=rel,
                              created_by=created_by, created_at=now, unit_id=unit_id))
            await s.flush()
            s.add_all(rows)
            await self.audit.add(s, created_by, "call.started", f"call:{sid}", {"kind": kind, "person_id": person_id, "proceeding_id": proceeding.id,
                                                                               "parties": [{"role": m.role, "label": m.label, "person_id": m.person_id,
                                                                                            "device_id": m.device_id} for m in members]})
        st = self.settings
        path = confined(self.media_dir, rel)
        loop = asyncio.get_running_loop()
        room = Room(st.width, st.height, st.fps, st.max_parties,
                    SessionRecorder(path, st.width, st.height, st.fps, st.bitrate,
                                    on_error=lambda e: loop.call_soon_threadsafe(self._recording_failed, sid, path, e)))
        live = Live(sid, kind, person_id, case_ref, unit_id, proceeding.id, rel, room, checks, now, created_by, "ringing" if ringing else "active")
        for m in members:
            live.parties[m.id] = m
            room.add(m.id, tile_label(m))
        self.live[sid] = live
        room.start()
        if checks:
            live.tasks.append(asyncio.ensure_future(self._random_checks(live)))
        if ringing:
            live.tasks.append(asyncio.ensure_future(self._ring_timeout(live)))
        live.tasks.append(asyncio.ensure_future(self._end_when_idle(live)))
        self.m_sessions.set(len(self.live))
        await self._changed(live)
        return live, tokens

    def _recording_failed(self, sid: str, path: Path, e: BaseException) -> None:
        """The session's file could not be written (a full disk, most likely): what was written
        stays (each fragment is on disk), the session goes on unrecorded, and the officer is told
        by a red recording_failed alert; the disk monitor hears of a full disk at once."""
        self.disk.report(e, path)
        live = self.live.get(sid)
        task = asyncio.ensure_future(self.alerts.raise_alert(
            "recording_failed", person_id=live.person_id if live else None, key=f"recording_failed:call:{sid}",
            message=f"remote session {sid}: the recording stopped ({e}); the session goes on unrecorded",
            details={"session_id": sid, "proceeding_id": live.proceeding_id if live else None}))
        task.add_done_callback(lambda t: None if t.cancelled() or t.exception() is None else log.error("alert for session %s not raised: %s", sid, t.exception()))

    async def _reachable(self, kiosk_id: str) -> None:
        """A call to a kiosk that is not there fails at once, saying why (no ringing into the void)."""
        async with self.db.session() as s:
            dev = await s.get(Device, kiosk_id)
        if dev is None or dev.kind != "kiosk":
            raise CallError(404, f"no kiosk {kiosk_id}")
        if not dev.enabled:
            raise CallError(409, f"kiosk {kiosk_id} is disabled")
        seen = as_utc(dev.last_seen_at) if dev.last_seen_at is not None else None
        age = None if seen is None else (as_utc(self.clock.now()) - seen).total_seconds()
        if dev.state == "offline" or age is None or age > self.settings.kiosk_online_s:
            when = "never" if seen is None else f"{int(age or 0)} s ago"
            raise CallError(409, f"kiosk {kiosk_id} is offline (last heard from {when}): it cannot take a call")

    def get(self, session_id: str) -> Live:
        live = self.live.get(session_id)
        if live is None:
            raise CallError(404, "no such session running here (it ended, or never was)")
        return live

    def add_officer(self, session_id: str, username: str, label: str) -> Party:
        """The officer's own party (the one who set the session up, or who answers a kiosk's call)."""
        live = self.get(session_id)
        for p in live.parties.values():
            if p.role == "officer" and p.username == username:
                return p
        party = Party(secrets.token_hex(6), "officer", label, None, None, username)
        live.room.add(party.id, tile_label(party))  # raises when the grid is full
        live.parties[party.id] = party
        return party

    async def answer(self, session_id: str, username: str, label: str) -> Party:
        """An officer takes a call a kiosk made."""
        live = self.get(session_id)
        try:
            party = self.add_officer(session_id, username, label)
        except ValueError as e:
            raise CallError(409, str(e)) from None
        async with self.audit.tx() as s:
            if await s.get(CallParty, party.id) is None:
                s.add(CallParty(id=party.id, session_id=live.id, role="officer", label=label, username=username, state="invited", gaps=[]))
            if live.state == "ringing":
                live.state = "active"
                await s.execute(update(CallSession).where(CallSession.id == live.id).values(state="active"))
            await self.audit.add(s, username, "call.answered", f"call:{live.id}", {})
        await self._changed(live)
        return party

    async def party_by_token(self, token: str) -> tuple[Live, Party]:
        async with self.db.session() as s:
            row = await s.scalar(select(CallParty).where(CallParty.token_sha256 == token_hash(token)))
        if row is None:
            raise CallError(404, "this link is not known")
        expires = as_utc(row.expires_at) if row.expires_at is not None else None
        live = self.live.get(row.session_id)
        if live is None:
            raise CallError(410, "this session has ended")
        if expires is not None and expires < as_utc(self.clock.now()) and row.state == "invited":
            raise CallError(410, "this link has expired")
        return live, live.parties[row.id]

    def ringing_for(self, kiosk_id: str) -> tuple[Live, Party] | None:
        """A session waiting for this kiosk to join (or to join again after a drop)."""
        for live in self.live.values():
            for p in live.parties.values():
                if p.role == "kiosk" and p.device_id == kiosk_id and p.state in ("invited", "dropped") and not live.ending:
                    return live, p
        return None

    # -- media -------------------------------------------------------------------
    async def join(self, session_id: str, party_id: str, offer_sdp: str) -> str:
        """A party's browser sends its offer; the answer comes back. Joining again (after a
        drop, or from a reloaded page) replaces the party's earlier connection."""
        live = self.get(session_id)
        party = live.parties.get(party_id)
        if party is None:
            raise CallError(404, "no such party in this session")
        if party.state == "left":
            raise CallError(409, "this party has left the session")
        old = live.pcs.pop(party_id, None)
        if old is not None:
            await old.close()
        pc = RTCPeerConnection()
        live.pcs[party_id] = pc
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            incoming = [t.receiver.track for t in pc.getTransceivers() if t.receiver is not None and t.receiver.track is not None
                        and t.direction in ("sendrecv", "recvonly")]
            for track in live.room.outputs(party_id):
                pc.addTrack(track)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:
            live.pcs.pop(party_id, None)
            await pc.close()
            raise CallError(422, f"the offer could not be used: {e}") from None
        live.room.attach(party_id, incoming)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if live.pcs.get(party_id) is not pc:
                return  # replaced by a newer connection of the same party
            if pc.connectionState == "connected":
                await self._connected(live, party)
            elif pc.connectionState in ("failed", "closed"):
                await self._dropped(live, party, f"connection {pc.connectionState}")

        task = asyncio.ensure_future(self._connect_deadline(live, party, pc))
        live.tasks.append(task)
        return str(pc.localDescription.sdp)

    async def _connect_deadline(self, live: Live, party: Party, pc: RTCPeerConnection) -> None:
        await asyncio.sleep(self.settings.connect_s)
        if live.pcs.get(party.id) is pc and pc.connectionState != "connected" and not live.ending:
            await self._dropped(live, party, f"did not connect within {self.settings.connect_s:g} s")

    async def _connected(self, live: Live, party: Party) -> None:
        now = as_utc(self.clock.now())
        first = party.joined_at is None
        if party.gaps and party.gaps[-1].get("ended_at") is None:
            party.gaps[-1] |= {"ended_at": iso(now), "duration_s": round((now - datetime.fromisoformat(party.gaps[-1]["started_at"])).total_seconds(), 1)}
        party.state = "connected"
        party.joined_at = party.joined_at or now
        self._count()
        await self._store_party(party)
        await self._changed(live)
        if first and party.person_id:
            live.tasks.append(asyncio.ensure_future(self._first_check(live, party)))

    async def _dropped(self, live: Live, party: Party, why: str) -> None:
        if party.state in ("left", "dropped") or live.ending:
            return
        if party.joined_at is not None:  # a gap in what was recorded of them
            party.gaps.append({"started_at": iso(as_utc(self.clock.now())), "ended_at": None, "reason": why})
        log.info("session %s: %s (%s) dropped: %s", live.id, party.label, party.role, why)
        await self._disconnect(live, party, "dropped")

    async def leave(self, session_id: str, party_id: str) -> None:
        live = self.get(session_id)
        party = live.parties.get(party_id)
        if party is None or party.state == "left":
            return
        await self._disconnect(live, party, "left")

    async def _disconnect(self, live: Live, party: Party, state: str) -> None:
        """The party is gone (`dropped`: its tile says so, or `left`): its connection closed, stored, pushed."""
        party.state = state
        pc = live.pcs.pop(party.id, None)
        live.room.detach(party.id, dropped=state == "dropped")
        if pc is not None:
            await pc.close()
        self._count()
        await self._store_party(party)
        await self._changed(live)

    def _count(self) -> None:
        self.m_parties.set(sum(1 for live in self.live.values() for p in live.parties.values() if p.state == "connected"))

    async def _store_party(self, party: Party) -> None:
        async with self.db.session() as s, s.begin():
            await s.execute(update(CallParty).where(CallParty.id == party.id).values(state=party.state, joined_at=party.joined_at, gaps=list(party.gaps)))

    # -- identity ------------------------------------------------------------------
    async def _first_check(self, live: Live, party: Party) -> None:
        """At the start: as soon as the party's picture arrives (up to half a minute)."""
        for _ in range(60):
            if live.room.snapshot(party.id) is not None:
                break
            await asyncio.sleep(0.5)
        await self.check(live.id, "start", [party.id])

    async def _random_checks(self, live: Live) -> None:
        st = self.settings
        while True:
            await asyncio.sleep(random.uniform(st.check_min_s, st.check_max_s))
            try:
                await self.check(live.id, "random")
            except CallError:
                return
            except Exception:
                log.exception("session %s: identity check failed", live.id)

    async def check(self, session_id: str, reason: str, party_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Check every connected party who is a supervised person (or those named): is the
        enrolled person in front of the camera?"""
        live = self.get(session_id)
        results = []
        for party in list(live.parties.values()):
            if not party.person_id or party.state != "connected" or (party_ids is not None and party.id not in party_ids):
                continue
            picture = live.room.snapshot(party.id)
            if picture is None:
                outcome, distance, why = "absent", None, "no picture from the party's camera"
            else:
                jpeg = await asyncio.to_thread(_jpeg, picture)
                outcome, distance, why = await self.recognition.presence(party.person_id, jpeg)
            at = as_utc(self.clock.now())
            party.last_check = {"outcome": outcome, "distance": distance, "reason": why, "at": iso(at), "why": reason}
            async with self.db.session() as s, s.begin():
                s.add(CallCheck(session_id=live.id, party_id=party.id, person_id=party.person_id, at=at, outcome=outcome, distance=distance, reason=reason))
            self.m_checks.labels(outcome).inc()
            await self._judge(live, party, outcome, distance)
            results.append({"party_id": party.id, "label": party.label, "person_id": party.person_id, "outcome": outcome,
                            "distance": distance, "reason": why, "at": at})
        await self._changed(live)
        return results

    async def _judge(self, live: Live, party: Party, outcome: str, distance: float | None) -> None:
        """Consecutive checks seeing another face (or nobody) raise an alert for the officer;
        the enrolled person seen again resolves it."""
        assert party.person_id is not None
        if outcome == "present":
            for what in ("impostor", "absent"):
                if party.strikes[what] >= self._needed(what):
                    await self.alerts.clear(ALERTS[what], person_id=party.person_id, key=f"{ALERTS[what]}:{live.id}:{party.id}",
                                            note="the enrolled person was verified again")
                party.strikes[what] = 0
            return
        if outcome not in ALERTS:
            return  # uncertain: neither way
        other = "absent" if outcome == "impostor" else "impostor"
        party.strikes[other] = 0
        party.strikes[outcome] += 1
        if party.strikes[outcome] == self._needed(outcome):
            text = {"impostor": "someone else is in front of the camera", "absent": "nobody is in front of the camera"}[outcome]
            await self.alerts.raise_alert(
                ALERTS[outcome], person_id=party.person_id, key=f"{ALERTS[outcome]}:{live.id}:{party.id}",
                message=f"remote {live.kind} session: {text} ({party.label})",
                details={"session_id": live.id, "party_id": party.id, "proceeding_id": live.proceeding_id, "distance": distance,
                         "checks": party.strikes[outcome]})

    def _needed(self, what: str) -> int:
        return self.settings.impostor_after if what == "impostor" else self.settings.absent_after

    # -- ending ------------------------------------------------------------------
    async def _ring_timeout(self, live: Live) -> None:
        await asyncio.sleep(self.settings.ring_s)
        if live.state == "ringing" and live.id in self.live:
            await self.hangup(live.id, "gateway", f"not answered within {self.settings.ring_s:g} s")

    async def _end_when_idle(self, live: Live) -> None:
        """A session nobody is connected to for `idle_s` ends: it would record an empty grid."""
        idle_since = time.monotonic()
        step = min(5.0, self.settings.idle_s / 4)
        while True:
            await asyncio.sleep(step)
            if any(p.state == "connected" for p in live.parties.values()):
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= self.settings.idle_s and live.id in self.live and not live.ending:
                await self.hangup(live.id, "gateway", f"nobody connected for {self.settings.idle_s:g} s")
                return

    async def hangup(self, session_id: str, user: str, reason: str = "hung up") -> int:
        """End the session: close every connection, finish the file, seal the proceeding."""
        live = self.get(session_id)
        if live.ending:
            raise CallError(409, "the session is ending already")
        live.ending = True
        me = asyncio.current_task()
        for t in live.tasks:
            if t is not me:  # the ring or idle timer hanging up is not cancelled by its own hang-up
                t.cancel()
        await asyncio.gather(*(pc.close() for pc in live.pcs.values()), return_exceptions=True)
        live.pcs.clear()
        await live.room.stop()
        recorder = live.room.recorder
        notes = {"recording_error": recorder.error if recorder else None, "recording_dropped_frames": recorder.dropped if recorder else 0,
                 "composite_frames": live.room.video_index, "late_ticks": live.room.late_ticks}
        try:
            return await self._seal(live.id, live.proceeding_id, live.path, user, reason, notes, live)
        finally:
            self.live.pop(live.id, None)
            self.m_sessions.set(len(self.live))
            self._count()

    async def _seal(self, sid: str, proceeding_id: int | None, rel: str | None, user: str, reason: str, notes: dict[str, Any], live: Live | None) -> int:
        async with self.db.session() as s:
            row = await s.get(CallSession, sid)
            parties = (await s.scalars(select(CallParty).where(CallParty.session_id == sid))).all()
            checks = (await s.scalars(select(CallCheck).where(CallCheck.session_id == sid).order_by(CallCheck.at))).all()
        assert row is not None
        ended = as_utc(self.clock.now())
        items: list[dict[str, Any]] = []
        if rel:
            path = confined(self.media_dir, rel)
            if path.is_file():
                cut = await asyncio.to_thread(trim_partial_fragment, path)
                if cut:
                    notes = {**notes, "trimmed_bytes": cut}  # a fragment half-written when the disk filled or the gateway died
            if path.is_file() and path.stat().st_size > 0:
                items.append({"camera_id": f"call-{sid}", "path": rel, "sha256": await asyncio.to_thread(sha256_file, path), "size": path.stat().st_size,
                              "started_at": iso(row.created_at), "ended_at": iso(ended)})
        stored = [Party(p.id, p.role, p.label, p.person_id, p.device_id, p.username, p.state, p.joined_at, p.gaps or []) for p in parties]
        members = {p.id: p.summary() for p in (live.parties.values() if live else stored)}
        for m in members.values():
            for g in m["gaps"]:
                if g.get("ended_at") is None:  # dropped until the end
                    g["ended_at"] = iso(ended)
        gaps = [{"party_id": pid, "label": m["label"], **g} for pid, m in members.items() for g in m["gaps"]]
        attendance = attendance_of(checks, members, ended, self.settings.check_max_s)
        extra = {"session": {"id": sid, "end_reason": reason, "node_id": row.node_id, "parties": list(members.values()),
                             "checks": [{"party_id": c.party_id, "person_id": c.person_id, "at": iso(c.at), "outcome": c.outcome,
                                         "distance": c.distance, "reason": c.reason} for c in checks], **notes}}
        pid = proceeding_id
        if pid is not None:
            try:
                await self.proceedings.seal_remote(pid, user, items, gaps, extra, attendance)
            except ProceedingError as e:
                log.warning("session %s: proceeding %s not sealed: %s", sid, pid, e)
        async with self.audit.tx() as s:
            await s.execute(update(CallSession).where(CallSession.id == sid).values(state="ended", ended_at=ended, ended_by=user, end_reason=reason))
            for p in members.values():
                await s.execute(update(CallParty).where(CallParty.id == p["id"]).values(
                    state=p["state"] if p["state"] in ("left", "dropped") else "left", gaps=p["gaps"]))
            await self.audit.add(s, user, "call.ended", f"call:{sid}", {"reason": reason, "proceeding_id": pid})
        await self.bus.publish(CallChanged(session_id=sid, state="ended", kind=row.kind, person_id=row.person_id, proceeding_id=pid,
                                           unit_id=row.unit_id, device_id=live.device_id() if live else None, reason=reason,
                                           parties=[{k: m[k] for k in ("id", "role", "label", "state")} for m in members.values()]))
        return pid or 0

    async def _changed(self, live: Live) -> None:
        await self.bus.publish(CallChanged(session_id=live.id, state="ringing" if live.state == "ringing" else "active", kind=live.kind,
                                           person_id=live.person_id, device_id=live.device_id(), proceeding_id=live.proceeding_id,
                                           unit_id=live.unit_id, parties=[p.summary() for p in live.parties.values()]))


def tile_label(p: Party) -> str:
    """The name drawn under the party's tile: OpenCV draws ASCII only, so a Chinese label
    (调解员) falls back to the person, kiosk or user id, else the role."""
    return p.label if ascii_label(p.label) == p.label.strip() else (p.person_id or p.device_id or p.username or p.role)


def _jpeg(rgb: Any) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return bytes(buf) if ok else b""


def attendance_of(checks: Any, members: dict[str, dict[str, Any]], ended: datetime, check_max_s: float) -> list[dict[str, Any]]:
    """Minutes each supervised party was verified present: from each check that saw them to
    the next check (or the end), never more than the longest wait between two checks."""
    out = []
    by_party: dict[str, list[Any]] = {}
    for c in checks:
        by_party.setdefault(c.party_id, []).append(c)
    for party_id, cs in by_party.items():
        verified = 0.0
        for i, c in enumerate(cs):
            if c.outcome != "present":
                continue
            nxt = as_utc(cs[i + 1].at if i + 1 < len(cs) else ended)
            verified += max(0.0, min((nxt - as_utc(c.at)).total_seconds(), check_max_s))
        present = [c for c in cs if c.outcome == "present"]
        if not present:
            continue
        out.append({"person_id": cs[0].person_id, "party_id": party_id, "label": members.get(party_id, {}).get("label"),
                    "first_seen": iso(present[0].at), "last_seen": iso(present[-1].at), "camera_ids": [],
                    "best_distance": min((c.distance for c in present if c.distance is not None), default=None),
                    "verified_minutes": round(verified / 60, 2), "checks": len(cs),
                    "impostor_checks": sum(1 for c in cs if c.outcome == "impostor"), "absent_checks": sum(1 for c in cs if c.outcome == "absent")})
    return out

