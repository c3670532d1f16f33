"""Console benchmarks: time to interactive of the console's pages in headless Chromium, and
the size of the JSON each page fetches, with a seeded database against an empty one.

Two gateways run one after the other in this process (uvicorn in a thread, SQLite in a temp
folder, as tests/conftest.py's live gateway): the first on an empty database, the second on
one seeded through the ORM (bulk inserts, not the HTTP API) with 2,000 persons in 6 units,
500 devices (trackers and body cameras bound to persons, kiosks), 10,000 alerts (open,
acknowledged and resolved, spread over 30 days, each with its history notes), 2,000
check-ins and 20 positions per tracker.

Each page is loaded N times (5, 3 with --quick) in a browser context signed in as an admin
through the login form, each time in a new tab, after one load to warm up. Time to
interactive: the document's performance.now() (from navigation start) when the page's main
content is there: app.js has marked `#page[data-ready="1"]` (its render, data loads
included, has returned) and the page's own condition holds (table rows, dashboard figures
and chart, map markers). Median of the N loads.

The API table: every GET /api/... request a page made while loading (seen in the browser),
fetched again with the admin's token: bytes of JSON, rows (a list's length, a GeoJSON
collection's features) and the server time (median of 3).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from gateway.threaded import ThreadedGateway, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USER, PASSWORD = "bench-admin", "correct-horse-1"
GOAL_MS = 1000.0
PERSONS, DEVICES, ALERTS, CHECKINS, POSITIONS_PER_TRACKER = 2000, 500, 10_000, 2000, 20
UNITS = ("north", "south", "east", "west", "centre")

# page -> the condition (JS expression) that says its main content is on screen
PAGES: dict[str, str] = {
    "dashboard": "document.querySelector('.dash-card.dash-persons .big[data-value]') && document.querySelector('.dash-chart[data-total] canvas, .dash-chart[data-total] svg')",
    "alerts": "document.querySelector('#page tbody tr.alert-row, #page tbody tr.empty')",
    "persons": "document.querySelector('#page tbody tr[data-id], #page tbody tr.empty')",
    "devices": "document.querySelector('#page tbody tr[data-id], #page tbody tr.empty')",
    "map": "document.querySelector('#page .leaflet-container .leaflet-marker-pane')",
    "checkins": "document.querySelector('#page tbody tr')",
}
READY = "document.querySelector('#page[data-ready=\"1\"]')"


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(data_dir: Path) -> ThreadedGateway:
    """A real server (uvicorn) on a free port in a thread, as `gateway run` builds it."""
    from config.loader import load_config_text

    cfg = load_config_text(json.dumps({"gateway": {"data_dir": str(data_dir), "port": _port()}}), "<bench>", env={})
    live = serve_in_thread(cfg, name="bench-gateway")
    from gateway.users import add_user

    live.call(add_user, cfg, USER, "admin", PASSWORD, "bench")
    return live


async def seed(core: Any) -> dict[str, int]:
    """The seeded database, through SQLAlchemy Core bulk inserts (a few seconds)."""
    from sqlalchemy import insert

    from gateway.db.models import Alert, AlertNote, CheckInRow, Device, Person, PositionRow, Unit
    from gateway.units import ROOT_PATH, path_of

    rnd = random.Random(19)
    now = datetime.now(UTC)
    units = ["root", *UNITS]
    kinds = ["exclusion_breach", "tamper", "sos", "inclusion_exit", "curfew", "lost_contact", "no_fix", "checkin_failed", "low_battery"]
    async with core.db.session() as s:
        await s.execute(insert(Unit), [{"id": u, "name": u.title(), "parent_id": "root", "path": path_of(ROOT_PATH, u), "source": "api",
                                        "created_at": now, "updated_at": now} for u in UNITS])
        persons = [{"id": f"p{i:05d}", "name": f"Person {i:05d}", "category": rnd.choice(["parole", "probation", "bail", "community"]),
                    "notes": None, "active": rnd.random() > 0.05, "supervision_level": rnd.choice(["strict", "ordinary", "lenient"]),
                    "officer": USER, "unit_id": units[i % len(units)], "source": "api",
                    "created_at": now - timedelta(days=rnd.uniform(30, 400)), "updated_at": now - timedelta(days=rnd.uniform(0, 30))}
                   for i in range(PERSONS)]
        await s.execute(insert(Person), persons)
        devices = []
        for i in range(DEVICES):
            kind = "tracker" if i < 300 else "bodycam" if i < 420 else "kiosk"
            person = persons[i % PERSONS] if kind != "kiosk" else None
            state = rnd.choices(["online", "offline", "unknown"], [70, 25, 5])[0]
            settings: dict[str, Any] = {}
            if kind == "kiosk":
                settings = {"checkins": [{"person_id": persons[(i * 7 + j) % PERSONS]["id"], "days": [1, 2, 3, 4, 5, 6, 7]} for j in range(4)]}
            devices.append({"id": f"{kind[:3]}-{i:04d}", "kind": kind, "name": f"{kind} {i}", "person_id": person["id"] if person else None,
                            "settings": settings, "state": state, "state_reason": None if state == "online" else "no message",
                            "last_seen_at": now - timedelta(minutes=rnd.uniform(0, 3 * 24 * 60)), "battery": rnd.randint(5, 100),
                            "enabled": True, "unit_id": person["unit_id"] if person else units[i % len(units)], "source": "api",
                            "created_at": now - timedelta(days=60), "updated_at": now})
        await s.execute(insert(Device), devices)
        trackers = [d for d in devices if d["kind"] == "tracker"]
        positions = []
        for d in trackers:
            lat, lon = 31.2 + rnd.uniform(-0.2, 0.2), 121.4 + rnd.uniform(-0.2, 0.2)
            for k in range(POSITIONS_PER_TRACKER):
                t = now - timedelta(minutes=5 * (POSITIONS_PER_TRACKER - k))
                positions.append({"device_id": d["id"], "person_id": d["person_id"], "fix_time": t, "received_at": t,
                                  "lat": lat + k * 1e-4, "lon": lon + k * 1e-4, "speed_mps": 1.0, "source": "nmea", "in_order": True})
        await s.execute(insert(PositionRow), positions)
        alerts, notes = [], []
        for i in range(ALERTS):
            person = persons[rnd.randrange(PERSONS)]
            opened = now - timedelta(seconds=rnd.uniform(0, 30 * 86400))
            state = rnd.choices(["open", "acknowledged", "resolved"], [10, 10, 80])[0]
            level = rnd.choice(["red", "orange", "yellow", "blue"])
            acked = opened + timedelta(minutes=rnd.uniform(1, 60)) if state != "open" else None
            resolved = acked + timedelta(minutes=rnd.uniform(1, 600)) if state == "resolved" and acked else None
            updated = min(resolved or acked or opened, now)
            kind = rnd.choice(kinds)
            alerts.append({"id": i + 1, "kind": kind, "level": level, "original_level": level, "state": state,
                           "dedup_key": f"{kind}:{person['id']}:{i}", "person_id": person["id"], "device_id": None, "zone_id": None,
                           "message": f"{kind} for {person['name']}", "details": {"bench": True}, "lat": 31.2, "lon": 121.4, "count": 1,
                           "opened_at": opened, "updated_at": updated, "acknowledged_at": acked, "acknowledged_by": USER if acked else None,
                           "resolved_at": resolved, "resolved_by": USER if resolved else None, "unit_id": person["unit_id"]})
            notes.append({"alert_id": i + 1, "at": opened, "author": "gateway", "action": "opened", "text": None})
            if acked:
                notes.append({"alert_id": i + 1, "at": acked, "author": USER, "action": "acknowledged", "text": "on it"})
            if resolved:
                notes.append({"alert_id": i + 1, "at": resolved, "author": USER, "action": "resolved", "text": "done"})
        await s.execute(insert(Alert), alerts)
        await s.execute(insert(AlertNote), notes)
        kiosks = [d for d in devices if d["kind"] == "kiosk"]
        checkins = []
        for _ in range(CHECKINS):
            p, kiosk = persons[rnd.randrange(PERSONS)], rnd.choice(kiosks)
            ok = rnd.random() > 0.1
            checkins.append({"kiosk_id": kiosk["id"], "person_id": p["id"], "at": now - timedelta(seconds=rnd.uniform(0, 30 * 86400)),
                             "result": "accepted" if ok else "rejected", "distance": rnd.uniform(0.2, 0.6), "threshold": 0.5,
                             "reason": None if ok else "no match", "thumbnail": None, "liveness": {}, "unit_id": p["unit_id"]})
        await s.execute(insert(CheckInRow), checkins)
        await s.commit()
    return {"units": len(UNITS), "persons": len(persons), "devices": len(devices), "alerts": len(alerts), "notes": len(notes),
            "positions": len(positions), "checkins": len(checkins)}


def _rows(body: Any) -> int | None:
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict) and isinstance(body.get("features"), list):
        return len(body["features"])
    return None


def measure(live: ThreadedGateway, browser: Any, loads: int) -> tuple[dict[str, list[float]], dict[str, dict[str, tuple[int, int | None, float]]]]:
    """Per page: time to interactive of each load (ms); and the API GETs it made:
    path -> (bytes, rows, server ms)."""
    context = browser.new_context(base_url=live.url, viewport={"width": 1440, "height": 900}, locale="en-US")
    context.set_default_timeout(60_000)
    context.add_init_script(script="try { localStorage.getItem('gw.lang') || localStorage.setItem('gw.lang', 'en'); } catch (e) {}")
    errors: list[str] = []
    try:
        page = context.new_page()
        page.goto("/login")
        page.wait_for_selector("body[data-ready]")
        page.fill("#username", USER)
        page.fill("#password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#page[data-ready]")
        page.close()
        times: dict[str, list[float]] = {}
        fetched: dict[str, list[str]] = {}
        for name, cond in PAGES.items():
            times[name] = []
            for i in range(loads + 1):  # the first warms up (module compile, HTTP cache)
                page = context.new_page()
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                seen: list[str] = []
                page.on("request", lambda r, seen=seen: seen.append(r.url) if r.method == "GET" and urlsplit(r.url).path.startswith("/api/") else None)
                page.goto(f"/console/{name}", wait_until="commit")
                try:
                    handle = page.wait_for_function(f"() => ({READY} && ({cond})) ? performance.now() : false", polling="raf", timeout=60_000)
                except Exception as e:
                    raise RuntimeError(f"/console/{name}: {e}") from e
                ms = float(handle.json_value())
                if i:
                    times[name].append(ms)
                fetched[name] = seen
                page.close()
        if errors:
            raise RuntimeError("JavaScript errors in the console: " + "; ".join(errors[:5]))
    finally:
        context.close()

    token = httpx.post(f"{live.url}/api/auth/token", data={"username": USER, "password": PASSWORD}).raise_for_status().json()["access_token"]
    apis: dict[str, dict[str, tuple[int, int | None, float]]] = {}
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        for name, urls in fetched.items():
            apis[name] = {}
            for url in dict.fromkeys(urls):
                parts = urlsplit(url)
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                spent = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    r = c.get(live.url + path)
                    spent.append((time.perf_counter() - t0) * 1000)
                if r.headers.get("content-type", "").startswith("application/json"):  # not the thumbnails
                    apis[name][path] = (len(r.content), _rows(r.json()), statistics.median(spent))
    return times, apis


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} kB" if n >= 1024 else f"{n} B"


def main(quick: bool = False) -> None:
    from playwright.sync_api import sync_playwright

    loads = 3 if quick else 5
    results: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for label in ("empty", "seeded"):
                live = start_gateway(Path(tmp) / label)
                try:
                    if label == "seeded":
                        t0 = time.monotonic()
                        counts = live.call(seed, live.core, timeout=300)
                        print(f"seeded in {time.monotonic() - t0:.1f} s: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()), flush=True)
                    results[label] = measure(live, browser, loads)
                finally:
                    live.stop()
        finally:
            browser.close()

    (t_empty, api_empty), (t_seeded, api_seeded) = results["empty"], results["seeded"]
    # other work on the machine moves these figures more than anything measured here
    print(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs")
    print(f"\ntime to interactive (navigation start -> main content rendered), median of {loads} loads, headless Chromium:")
    print(f"{'page':<10} | {'empty ms':>8} | {'seeded ms':>9} | {'ratio':>5} | seeded loads (ms)")
    worst = ("", 0.0)
    for name in PAGES:
        e, s = statistics.median(t_empty[name]), statistics.median(t_seeded[name])
        worst = max(worst, (name, s), key=lambda x: x[1])
        print(f"{name:<10} | {e:8.0f} | {s:9.0f} | {s / e:5.2f} | {' '.join(f'{x:.0f}' for x in t_seeded[name])}")
    print("\nAPI responses each page fetches (uncompressed JSON; server time median of 3, with a bearer token):")
    print(f"{'page':<10} {'request':<48} | {'empty':>9} | {'seeded':>9} | {'rows':>11} | {'ms e/s':>9}")
    for name in PAGES:
        for path, (sb, sr, sms) in api_seeded[name].items():
            eb, er, ems = api_empty[name].get(path, (0, None, 0.0))
            rows = f"{er if er is not None else '-'} / {sr if sr is not None else '-'}"
            print(f"{name:<10} {path[:48]:<48} | {_kb(eb):>9} | {_kb(sb):>9} | {rows:>11} | {ems:3.0f}/{sms:3.0f}")
    verdict = "met" if worst[1] < GOAL_MS else "NOT met"
    print(f"\ngoal (under {GOAL_MS:.0f} ms to interactive, seeded): {verdict}; slowest page {worst[0]} at {worst[1]:.0f} ms")
