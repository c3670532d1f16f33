"""Evidence integrity: file hashes, manifest hashing, and the verify pass.

Used by recordings and proceedings (streams/) and by uploads (drivers/bodycam):
one definition of how a manifest is hashed and chained, so one verify
command checks everything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.db.models import Evidence, Proceeding, Recording

CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def manifest_hash(manifest: dict[str, Any]) -> str:
    """A manifest's hash covers everything in it, including prev_manifest_sha256."""
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


def confined(root: Path, relative: str) -> Path:
    """root/relative, refusing anything that would leave root."""
    base = root.resolve()
    p = (base / relative).resolve()
    if not p.is_relative_to(base):
        raise ValueError(f"path {relative!r} leaves the media folder")
    return p


async def verify_all(db, media_dir: Path) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    """Re-hash every stored file and check the manifest chain. Returns (checked, problems)."""
    checked, problems = 0, []
    async with db.session() as s:
        recordings = (await s.scalars(select(Recording).where(Recording.kind == "segment", Recording.sha256.is_not(None)).order_by(Recording.id))).all()
        evidence = (await s.scalars(select(Evidence).where(Evidence.state == "stored").order_by(Evidence.id))).all()
        proceedings = (await s.scalars(select(Proceeding).where(Proceeding.manifest.is_not(None)).order_by(Proceeding.id))).all()
    for r in recordings:
        checked += 1
        problems += await _check_file(media_dir, r.path or "", r.sha256 or "", f"recording {r.id} ({r.camera_id})")
    for e in evidence:
        checked += 1
        problems += await _check_file(media_dir, e.path, e.sha256, f"evidence {e.id}")
    prev = None
    # seal order (manifest "seq"), not id order: proceedings may overlap and stop out of order
    for p in sorted(proceedings, key=lambda p: ((p.manifest or {}).get("seq", 0), p.id)):
        checked += 1
        manifest = p.manifest or {}
        if manifest_hash(manifest) != p.manifest_sha256:
            problems.append(f"proceeding {p.id}: manifest does not match its recorded hash: changed")
        if manifest.get("prev_manifest_sha256") != prev:
            problems.append(f"proceeding {p.id}: manifest chain broken (expected previous {prev}, manifest says {manifest.get('prev_manifest_sha256')})")
        for seg in manifest.get("segments", []):
            problems += await _check_file(media_dir, seg.get("path", ""), seg.get("sha256", ""), f"proceeding {p.id} segment {seg.get('path')}")
        prev = p.manifest_sha256
    return checked, problems


async def _check_file(media_dir: Path, rel: str, expected: str, what: str) -> list[str]:
    try:
        path = confined(media_dir, rel)
    except ValueError as e:
        return [f"{what}: {e}"]
    if not path.is_file():
        return [f"{what}: file {rel} is missing"]
    actual = await asyncio.to_thread(sha256_file, path)
    if actual != expected:
        return [f"{what}: file {rel} has changed (sha256 {actual[:12]}…, recorded {expected[:12]}…)"]
    return []


async def verify_proceeding(s: Any, media_dir: Path, p: Proceeding) -> tuple[int, list[str]]:
    """One sealed proceeding, as `verify_all` checks it: the manifest against its recorded
    hash, its link to the previous sealed manifest (which must exist), and every segment file
    re-hashed. Returns (segments checked, problems)."""
    manifest = p.manifest or {}
    problems: list[str] = []
    if manifest_hash(manifest) != p.manifest_sha256:
        problems.append(f"proceeding {p.id}: manifest does not match its recorded hash: changed")
    prev = manifest.get("prev_manifest_sha256")
    if prev is not None and (await s.scalars(select(Proceeding.id).where(Proceeding.manifest_sha256 == prev).limit(1))).first() is None:
        problems.append(f"proceeding {p.id}: the previous manifest {prev[:12]}… it is chained to is not there")
    segments = manifest.get("segments", [])
    for seg in segments:
        problems += await _check_file(media_dir, seg.get("path", ""), seg.get("sha256", ""), f"proceeding {p.id} segment {seg.get('path')}")
    return len(segments), problems
