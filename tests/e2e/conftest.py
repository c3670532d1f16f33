"""Browser tests: headless Chromium driven by Playwright (sync API).

- `browser`: one Chromium for all tests of this folder (starting it is the slow part).
- `console_page(live, username, role, lang="en")`: a fresh browser context
  (own cookies and storage) whose page has signed in through the real login
  form; returns the Playwright `Page`, showing the console in `lang`.
- `anonymous_page(live, lang="en")`: a fresh page, not signed in;
  `sign_in(page, username)` fills and submits the login form on it.
- On a failed test every page still open is saved as a screenshot under
  $TMPDIR/gateway-e2e/ (the path is printed in the report).
- `api_as(live, username, role="admin")`: an httpx.Client with that user's
  bearer token, to arrange data and to check what the browser did.
- An uncaught JavaScript error on any console page fails the test.

Every test here is a plain `def`, even one without a browser: Playwright's
sync API runs its own event loop in the main thread, and while it is alive
pytest-asyncio cannot start one there.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveGateway, require_peer

CHROMIUM = Path("/usr/bin/chromium")
# Without these Chromium waits on network services this offline machine cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PASSWORD = "correct-horse-1"
TIMEOUT_MS = 15_000
SHOTS = Path(tempfile.gettempdir()) / "gateway-e2e"
LOCALES = {"en": "en-US", "zh-CN": "zh-CN"}
LANG_KEY = "gw.lang"  # where static/i18n.js keeps the language chosen in the header


def _patient_expect() -> None:
    # expect() retries until its timeout (5 s by default); other areas' tests
    # share these 2 cores, so allow as long as for any other browser action.
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    # Fixtures read this at teardown to decide whether to keep screenshots.
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    # Package scope, not session: while Playwright's sync API is alive its loop
    # counts as running in the main thread, and every async test collected after
    # this folder (tests/gps, tests/uploads...) would fail to start its own.
    require_peer(CHROMIUM.exists(), f"Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    _patient_expect()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def anonymous_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Factory: `anonymous_page(live, lang="en", choose_lang=True, **context_options)` -> a Page
    in a fresh context (own cookies and storage), not signed in, nothing loaded yet.
    `lang` is the browser's locale and, with `choose_lang`, the language chosen in the
    console (stored as if picked in the header); `choose_lang=False` leaves it to the
    gateway's default. `context_options` go to `browser.new_context` (`timezone_id`...)."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(live: LiveGateway, lang: str = "en", *, choose_lang: bool = True, **context_options: Any) -> Any:
        options = {"locale": LOCALES.get(lang, lang), "base_url": live.url, "viewport": {"width": 1440, "height": 900}, **context_options}
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        if choose_lang:
            # As if the user had picked `lang` in the header once (localStorage), so the
            # page's language does not depend on the gateway's console.default_language.
            # A later choice in the page is kept: this only fills an empty slot.
            context.add_init_script(script=f"try {{ localStorage.getItem({LANG_KEY!r}) || localStorage.setItem({LANG_KEY!r}, {json.dumps(lang)}); }} catch (e) {{}}")
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        return page

    yield open_page

    failed = any(getattr(getattr(request.node, f"report_{w}", None), "failed", False) for w in ("setup", "call"))
    if failed:
        SHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
        for i, context in enumerate(contexts):
            for j, page in enumerate(context.pages):
                path = SHOTS / f"{name}-{i}-{j}.png"
                try:
                    page.screenshot(path=str(path), full_page=True)
                    print(f"screenshot: {path}")
                except Exception as e:  # a crashed page must not hide the real failure
                    print(f"screenshot failed: {e}")
    for context in contexts:
        context.close()
    if errors and not failed:
        pytest.fail("JavaScript errors in the console:\n" + "\n".join(errors))


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    """Fill and submit the real login form on the current page."""
    page.wait_for_selector("body[data-ready]")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")


@pytest.fixture
def console_page(anonymous_page: Callable[..., Any]) -> Callable[..., Any]:
    """Factory: `console_page(live, username, role, lang="en", **page_options)` -> a Page signed
    in through the login form, showing the console with its first page rendered
    (`page_options` as for `anonymous_page`)."""

    def open_page(live: LiveGateway, username: str, role: str, lang: str = "en", password: str = PASSWORD, **page_options: Any) -> Any:
        try:
            live.add_user(username, role, password)
        except ValueError:
            pass  # the same user signing in from a second browser
        page = anonymous_page(live, lang, **page_options)
        page.goto("/login")
        sign_in(page, username, password)
        page.wait_for_url(re.compile(r"/console/"))
        page.wait_for_selector("#page[data-ready]")
        return page

    return open_page


@pytest.fixture
def api_as() -> Iterator[Callable[..., httpx.Client]]:
    """Factory: `api_as(live, username, role="admin")` -> httpx.Client with a bearer token."""
    clients: list[httpx.Client] = []

    def make(live: LiveGateway, username: str, role: str = "admin") -> httpx.Client:
        try:
            live.add_user(username, role, PASSWORD)
        except ValueError:
            pass
        client = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.token(username, PASSWORD)}"}, timeout=30)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


class SocketGate:
    """The console WebSocket of a page, routed through the test: passed through to the gateway
    (`sockets`), or, while `hold` is set, accepted and left silent, as a gateway that is
    restarting would leave it (`held`: the client sees no hello and keeps retrying)."""

    def __init__(self, page: Any) -> None:
        self.sockets: list[Any] = []
        self.held: list[Any] = []
        self.hold = False
        page.route_web_socket("**/api/events", self._route)

    def _route(self, ws: Any) -> None:
        if self.hold:
            self.held.append(ws)
        else:
            ws.connect_to_server()
            self.sockets.append(ws)


@pytest.fixture
def camera_browser(browser: Any) -> Iterator[Callable[[Path], Any]]:
    """Factory: `camera_browser(video)` -> a Chromium whose camera plays `video` (a y4m file,
    looped: --use-file-for-fake-video-capture) with the permission prompt answered; closed
    after the test."""
    launched: list[Any] = []

    def launch(video: Path) -> Any:
        b = browser.browser_type.launch(executable_path=str(CHROMIUM), headless=True, args=[
            *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"])
        launched.append(b)
        return b

    yield launch
    for b in launched:
        b.close()


@pytest.fixture
def camera_context(camera_browser: Callable[[Path], Any]) -> Callable[..., Any]:
    """Factory: `camera_context(live, video, timeout_ms=60_000, **options)` -> a browser context
    on the gateway whose camera plays `video` and whose microphone beeps (Chromium's fake
    devices), both allowed; zh-CN unless `locale` says otherwise."""

    def make(live: LiveGateway, video: Path, timeout_ms: int = 60_000, **options: Any) -> Any:
        ctx = camera_browser(video).new_context(base_url=live.url, **{"locale": "zh-CN", **options})
        ctx.set_default_timeout(timeout_ms)
        ctx.grant_permissions(["camera", "microphone"], origin=live.url)
        return ctx

    return make


def enroll(admin: httpx.Client, person_id: str, name: str, photo: Path) -> None:
    """A person with one enrolled photo (a real one from ../shared/data/faces), through the API."""
    assert admin.post("/api/persons", json={"id": person_id, "name": name}).status_code == 201
    r = admin.post(f"/api/persons/{person_id}/photos", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}, timeout=60)
    assert r.status_code == 201, r.text


def paired_kiosk(admin: httpx.Client, context: Any, kiosk_id: str = "kiosk-1", name: str = "大厅一号机", location: str | None = None) -> dict[str, Any]:
    """A kiosk registered through the API, its key put in `context`'s storage as pairing on the
    keypad leaves it (tests/e2e/test_kiosk_app.py pairs through the keypad): /kiosk opens on
    its home screen."""
    r = admin.post("/api/devices", json={"id": kiosk_id, "kind": "kiosk", "name": name, "settings": {"location": location} if location else {}})
    assert r.status_code == 201, r.text
    device = {"id": kiosk_id, "name": name, "key": r.json()["key"], **({"location": location} if location else {})}
    context.add_init_script(script=f"localStorage.setItem('gateway.kiosk.device', {json.dumps(json.dumps(device))});")
    return device


def signed_in(context: Any, username: str, errors: list[str]) -> Any:
    """A console page of `context` signed in through the login form (confirm dialogs
    accepted, page errors collected in `errors`)."""
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: d.accept())
    page.goto("/login")
    sign_in(page, username)
    page.wait_for_url("**/console/**")
    return page
