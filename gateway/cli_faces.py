"""Face commands of the `gateway` CLI: `gateway enroll DIR` and `gateway faces calibrate`.

They build the core and the recognition area as the gateway does (gateway/assembly.py),
without starting the rest."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def register(sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
             load: Callable[[argparse.Namespace], Any]) -> None:
    """Add this area's subcommands to `gateway`."""
    p = with_config(sub.add_parser("enroll", help="bulk enrollment: one folder per person (folder name = person id), with a progress bar"))
    p.add_argument("dir", type=Path)
    p.add_argument("--create-persons", action="store_true", help="create persons that do not exist yet (name = folder name)")
    p.set_defaults(func=lambda args: cmd_enroll(args, load(args)))
    faces = sub.add_parser("faces", help="face recognition tools").add_subparsers(dest="faces_command", required=True, metavar="ACTION")
    p = with_config(faces.add_parser("calibrate", help="same-person and different-person distance distributions of the enrolled photos, and the threshold they imply"))
    p.set_defaults(func=lambda args: cmd_calibrate(load(args)))


def cmd_enroll(args: argparse.Namespace, config: Any) -> int:
    root: Path = args.dir
    if not root.is_dir():
        print(f"{root} is not a folder", file=sys.stderr)
        return 2
    jobs = [(d.name, f) for d in sorted(root.iterdir()) if d.is_dir() for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not jobs:
        print(f"no photos found under {root} (expected {root}/<person id>/<photo>.jpg)", file=sys.stderr)
        return 2
    return asyncio.run(_enroll(config, jobs, args.create_persons))


async def _enroll(config: Any, jobs: list[tuple[str, Path]], create: bool) -> int:
    from tqdm import tqdm

    from gateway.assembly import build_recognition
    from gateway.core import Core
    from gateway.db.models import Person
    from recognition.service import FaceInputError

    services = Core.create(config)
    await services.db.upgrade()
    services.media_dir.mkdir(parents=True, exist_ok=True)
    rec = build_recognition(services)
    await rec.start()
    ok = refused = 0
    try:
        async with services.db.session() as s:
            known = {p for (p,) in (await s.execute(Person.__table__.select().with_only_columns(Person.id))).all()}
        for person in sorted({p for p, _ in jobs} - known):
            if create:
                async with services.audit.tx() as s:
                    s.add(Person(id=person, name=person))
                    await services.audit.add(s, "cli", "person.created", f"person:{person}", {"via": "enroll"})
            else:
                print(f"skipping folder {person}: no such person (use --create-persons)", file=sys.stderr)
        jobs = [(p, f) for p, f in jobs if p in known or create]
        bar = tqdm(jobs, unit="photo", desc="enrolling")
        for person, path in bar:
            try:
                v = await rec.enroll(person, path.read_bytes(), "cli")
            except FaceInputError as e:
                refused += 1
                tqdm.write(f"{person}/{path.name}: refused: {e}")
                continue
            if v.accepted:
                ok += 1
            else:
                refused += 1
                tqdm.write(f"{person}/{path.name}: refused: {'; '.join(v.reasons)}")
    finally:
        await rec.stop()
        await services.db.close()
    print(f"enrolled {ok} photos, refused {refused}")
    return 0 if ok else 1


def cmd_calibrate(config: Any) -> int:
    return asyncio.run(_calibrate(config))


def distributions(rows: list[tuple[str, Any]]) -> tuple[list[float], list[float]]:
    import numpy as np

    same: list[float] = []
    diff: list[float] = []
    for (pa, ea), (pb, eb) in itertools.combinations(rows, 2):
        d = float(np.linalg.norm(ea - eb))
        (same if pa == pb else diff).append(d)
    return same, diff


def report(same: list[float], diff: list[float], current: float) -> str:
    import numpy as np

    lines = []
    for name, v in (("same person", same), ("different persons", diff)):
        if v:
            q = np.percentile(v, [0, 5, 50, 95, 100])
            lines.append(f"{name:18s} n={len(v):6d}  min {q[0]:.3f}  p5 {q[1]:.3f}  median {q[2]:.3f}  p95 {q[3]:.3f}  max {q[4]:.3f}")
        else:
            lines.append(f"{name:18s} n=0 (need at least two photos {'of one person' if name == 'same person' else 'of two persons'})")
    if same and diff:
        hi, lo = max(same), min(diff)
        if hi < lo:
            lines.append(f"gap between them: {hi:.3f} .. {lo:.3f}; implied threshold {(hi + lo) / 2:.3f} with a retry margin up to {(lo - hi) / 4:.3f}")
        else:
            frr = sum(d > current for d in same) / len(same)
            far = sum(d <= current for d in diff) / len(diff)
            lines.append(f"the distributions overlap ({lo:.3f} .. {hi:.3f}); at the current threshold {current:.2f}: false rejects {frr:.1%}, false accepts {far:.1%}")
    lines.append(f"configured: thresholds.faces.match_threshold = {current}")
    return "\n".join(lines)


async def _calibrate(config: Any) -> int:
    import numpy as np
    from sqlalchemy import select

    from gateway.db.engine import Database
    from gateway.db.models import FaceEncoding

    db = Database(config.database_url)
    try:
        async with db.session() as s:
            rows = [(p, np.frombuffer(e, dtype="<f8")) for p, e in (await s.execute(select(FaceEncoding.person_id, FaceEncoding.encoding))).all()]
    finally:
        await db.close()
    same, diff = distributions(rows)
    print(f"{len(rows)} enrolled photos of {len({p for p, _ in rows})} persons")
    print(report(same, diff, config.thresholds.faces.match_threshold))
    return 0
