"""The console: two HTML shells, the app's own static files and vendor files from npm.

Public: `/login` and everything under `/static/` (code and styles, no data).
Every other page needs the session cookie; without it the browser is sent to
`/login?next=...`. Data only ever comes from the authenticated `/api/...`
routes, so the shells themselves carry nothing secret.
See docs/console.md for how pages plug in.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway.api.deps import COOKIE, Principal, principal_from_token
from gateway.auth.roles import PERMISSIONS

WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"
SHELLS = WEB / "pages"
NODE_MODULES = WEB / "node_modules"  # filled by `npm ci` in gateway/web (package-lock.json)

# URL name -> folder inside node_modules. Only these folders are served, so
# nothing else an npm package ships (sources, READMEs, scripts) is reachable.
VENDOR = {
    "leaflet": "leaflet/dist",
    "swagger-ui": "swagger-ui-dist",  # the package root is its dist
    "echarts": "echarts/dist",  # the dashboard's chart (pages/dashboard.js)
    "geoman": "@geoman-io/leaflet-geoman-free/dist",  # drawing and editing zones (static/zone_editor.js)
}

DEFAULT_PAGE = "/console"  # where a signed-in user goes when nothing else is asked: their LANDING page
# The command-centre dashboard for monitors (who watch), the alerts for the roles that handle
# them; static/nav.js landingPage says the same for the browser.
LANDING = {"monitor": "/console/dashboard"}
LANDING_DEFAULT = "/console/alerts"

# Tiles for the map may come from a configured tile server (img-src http/https);
# WebRTC media arrives as blob/MediaStream. Scripts and styles only from this origin:
# no inline <style>, style="..." or handler attributes (pages use console.css classes,
# and set computed values such as Leaflet's positions through the CSSOM, which CSP allows).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob: http: https:; media-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
HTML_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


class ConsoleStatic(StaticFiles):
    """Static files that the browser revalidates (ETag) on every load.

    Modules are plain files without hashed names, so after an upgrade a
    cached old module must not linger next to new ones.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


@router.get("/static/roles.js")
async def roles_module() -> Response:
    """The permission table of gateway/auth/roles.py for the browser, so the console
    hides what the server would refuse without keeping a second copy in sync."""
    table = {perm: sorted(roles) for perm, roles in PERMISSIONS.items()}
    body = f"// Generated from gateway/auth/roles.py.\nexport const PERMISSIONS = {json.dumps(table, sort_keys=True)};\n"
    return Response(body, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


# Mounts after the route above: the first match wins.
for _name, _folder in VENDOR.items():
    # check_dir=False: the gateway still starts before `npm ci` ran; vendor files then 404.
    router.mount(f"/static/vendor/{_name}", ConsoleStatic(directory=NODE_MODULES / _folder, check_dir=False), name=f"vendor-{_name}")
router.mount("/static", ConsoleStatic(directory=STATIC), name="static")


async def _principal(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return await principal_from_token(request.app.state.core, token)


async def _signed_in(request: Request) -> bool:
    return await _principal(request) is not None


def _safe_next(target: str | None) -> str:
    """Only local console paths: an open redirect would help phishing. Control characters
    and backslashes are refused too (browsers drop tabs and newlines and read `\\` as `/`)."""
    if (target and target.startswith("/") and not target.startswith(("//", "/\\", "/login"))
            and not re.search(r"[\x00-\x1f\x7f\\]", target)):
        return target
    return DEFAULT_PAGE


_HTML_TAG = '<html lang="en">'  # as the shells in pages/ begin; the language goes here


def _shell(request: Request, name: str) -> Response:
    """An HTML shell with the configured console language (`console.default_language`)
    as `<html lang data-default-lang>`: static/i18n.js uses it until the user picks a
    language in the page. Written by the server, since the CSP allows no inline script."""
    lang = html.escape(request.app.state.core.config.console.default_language, quote=True)
    text = (SHELLS / name).read_text(encoding="utf-8")
    text = text.replace(_HTML_TAG, f'<html lang="{lang}" data-default-lang="{lang}">', 1)
    return Response(text, media_type="text/html; charset=utf-8", headers=HTML_HEADERS)


def _to_login(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    if await _signed_in(request):
        return RedirectResponse(_safe_next(next), status_code=303)
    return _shell(request, "login.html")


@router.get("/")
async def home(request: Request) -> Response:
    user = await _principal(request)
    if user is None:
        return _to_login(request)
    return RedirectResponse(LANDING.get(user.role, LANDING_DEFAULT), status_code=303)


@router.get("/console")
async def console_root(request: Request) -> Response:
    return await home(request)


@router.get("/kiosk", include_in_schema=False, response_class=HTMLResponse)
async def kiosk_app(request: Request) -> Response:
    """The kiosk terminal's app (static/kiosk/): no user session; the terminal pairs with a
    one-time code from the console and then acts with its own device key."""
    return _shell(request, "kiosk.html")


@router.get("/call", include_in_schema=False, response_class=HTMLResponse)
async def call_page(request: Request) -> Response:
    """The join page of a remote video session: the party's credential is the link's token,
    in the URL's fragment (never sent to the server); the page sends it in X-Call-Token."""
    return _shell(request, "call.html")


@router.get("/remote", include_in_schema=False, response_class=HTMLResponse)
async def remote_app(request: Request) -> Response:
    """The phone's page for a remote check-in (static/remote/): no session; it acts with the
    token in its URL's fragment (/remote#<token>), which the browser never sends here."""
    return _shell(request, "remote.html")


@router.get("/docs", include_in_schema=False)
async def api_docs(request: Request) -> Response:
    """The API reference (Swagger UI, served from the package, under the console's CSP)."""
    if not await _signed_in(request):
        return _to_login(request)
    return _shell(request, "docs.html")


@router.get("/console/{page:path}")
async def console(request: Request, page: str) -> Response:
    # One shell for every page: the browser-side router loads static/pages/<page>.js.
    if not await _signed_in(request):
        return _to_login(request)
    return _shell(request, "console.html")
