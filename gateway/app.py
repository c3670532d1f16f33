"""`create_app(config, gateway)`: the FastAPI app, built on demand, never at import.

Routes reach the core through `CoreDep` and an area through its typed dependency
(`CamerasDep`, `RecognitionDep`, ...; gateway/api/deps.py), from `app.state.core` and
`app.state.areas`, which the composition root (gateway/assembly.py) built."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.schema import GatewayConfig
from gateway import __version__
from gateway.assembly import Gateway, build_gateway

log = logging.getLogger(__name__)

# Paths whose bodies may exceed gateway.max_body_bytes (they stream to disk).
LARGE_BODY_PREFIXES = ("/api/uploads",)


class ErrorOut(BaseModel):
    """Every error answer: `detail` says what is wrong (a sentence; a few answers add
    structured detail, e.g. a refused photo's verdict), `errors` lists each problem of a
    request that did not validate."""

    detail: str | dict[str, Any] | list[Any]
    errors: list[dict[str, Any]] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": what} for code, what in (
        (400, "Bad request"), (401, "Not signed in, or the token or device key is not (or no longer) valid"),
        (403, "The role or device may not do this"), (404, "No such item"), (405, "Method not allowed (see Allow)"),
        (409, "Conflicts with the item's state"), (410, "The file is gone"), (412, "tus: Tus-Resumable must be 1.0.0"), (413, "Too large"), (415, "Unsupported media type"),
        (416, "Range not satisfiable"), (422, "The request does not validate"), (429, "Too many attempts: wait (Retry-After)"),
        (503, "An area or a peer is not available"), (507, "No space left"),
    )
}
# The tus routes answer their protocol errors in text/plain (tus clients show that text);
# authentication and validation errors stay JSON.
TUS_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {**doc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}, "text/plain": {"schema": {"type": "string"}}}}
    for code, doc in ERRORS.items()
}


def create_app(config: GatewayConfig, gateway: Gateway | None = None, *, manage: bool = True) -> FastAPI:
    """Build the app. With `manage` the lifespan starts and stops the gateway."""
    gw = gateway or build_gateway(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage:
            await gw.start()
        try:
            yield
        finally:
            if manage:
                await gw.stop()

    app = FastAPI(
        title="Supervision gateway", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url=None,  # served behind auth in api/system.py
    )
    app.state.core = gw.core
    app.state.areas = gw.areas
    app.state.config = config

    from gateway.api import (
        alerts,
        audit,
        auth,
        cameras,
        cluster,
        devices,
        events,
        evidence,
        faces,
        kiosk,
        persons,
        proceedings,
        recordings,
        remote,
        system,
        timeline,
        tracks,
        uploads,
        users,
        zones,
    )
    from gateway.web.routes import router as console

    for module in (system, auth, users, persons, timeline, devices, alerts, audit, events, zones, tracks, cameras, recordings, proceedings, faces, kiosk, remote, evidence,
                   cluster):
        app.include_router(module.router, responses=ERRORS)
    app.include_router(uploads.router, responses=TUS_ERRORS)
    from gateway.api import duty  # the duty roster (issue 18)
    app.include_router(duty.router, responses=ERRORS)
    from gateway.api import (  # units, and deliveries to the field (issue 18); the dashboard (issue 19)
        dashboard,
        outbox,
        units,
    )
    app.include_router(units.router, responses=ERRORS)
    app.include_router(dashboard.router, responses=ERRORS)
    app.include_router(outbox.router, responses=ERRORS)
    from gateway.api import calls  # remote video sessions (issue 20)
    app.include_router(calls.router, responses=ERRORS)
    app.include_router(calls.links, responses=ERRORS)
    app.include_router(calls.kiosk_calls, responses=ERRORS)
    app.include_router(console)

    app.add_middleware(BodyLimit, limit=config.gateway.max_body_bytes)
    app.add_middleware(NoSniff)

    methods = _methods_by_path(app)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; a path has one
            # route per method here, so the answer gathers them all
            allow = sorted({m for regex, ms in methods if regex.match(request.url.path) for m in ms})
            if allow:
                headers["Allow"] = ", ".join(allow)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse({"detail": f"{where}: {first['msg']}" if where else str(first["msg"]), "errors": errors}, status_code=422)

    return app


class BodyLimit:
    """413 for bodies over the limit, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(LARGE_BODY_PREFIXES):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await _reject(send, self.limit)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, f"request body over {self.limit} bytes")
            return msg

        await self.app(scope, limited, send)


async def _reject(send: Send, limit: int) -> None:
    body = f'{{"detail":"request body over {limit} bytes"}}'.encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class NoSniff:
    """`X-Content-Type-Options: nosniff` on every answer: a browser must not take an
    API answer or a stored file for something other than its declared type."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_header(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                headers = [h for h in msg.get("headers", []) if h[0].lower() != b"x-content-type-options"]
                msg = {**msg, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
            await send(msg)

        await self.app(scope, receive, with_header)


def _methods_by_path(app: FastAPI) -> list[tuple[re.Pattern[str], set[str]]]:
    """(path regex, methods) of every HTTP route, routers included."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazy router inclusion
        pairs = [(getattr(r, "path", ""), r) for r in app.routes]
    else:
        pairs = [(ctx.path, ctx.original_route) for ctx in iter_route_contexts(app.routes)]
    out = []
    for path, route in pairs:
        ms = getattr(route, "methods", None)
        if ms:
            out.append((compile_path(path)[0], set(ms)))
    return out
