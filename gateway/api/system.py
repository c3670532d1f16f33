"""Health (public), metrics, and the OpenAPI docs behind auth."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import text

from gateway import __version__
from gateway.api.deps import CoreDep, CurrentUser

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness and readiness; no auth")
async def healthz(core: CoreDep) -> JSONResponse:
    """503 when something the gateway needs is not there: the database (it answers, and its
    disk is not full: a database that reads but cannot write is not ok), the disks it writes
    to (`disk`: "full: N MB free of ..." during a disk-full incident), the MQTT broker."""
    checks: dict[str, Any] = {}
    try:
        async with core.db.session() as s:
            await s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as e:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"error: {type(e).__name__}"
    disk = core.disk.health()
    checks["disk"] = disk["disk"]
    if checks["database"] == "ok" and "database" in disk:
        checks["database"] = disk["database"]
    if core.mqtt is not None:
        checks["mqtt"] = "ok" if core.mqtt.connected.is_set() else "disconnected"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", "version": __version__, "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus text format")
async def metrics(_: CurrentUser, core: CoreDep) -> Response:
    return Response(core.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/openapi.json", include_in_schema=False)
async def openapi(_: CurrentUser, request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
async def docs(_: CurrentUser) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Supervision gateway API")
