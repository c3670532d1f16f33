"""Health (public), metrics, and the OpenAPI docs behind auth."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from gateway import __version__
from gateway.api.deps import CoreDep, CurrentUser

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str] = Field(description='Each check, "ok" or what is wrong (database, mqtt, disk...).')


@router.get("/healthz", response_model=Health, responses={503: {"model": Health, "description": "A check failed"}},
            summary="Liveness and readiness; no auth")
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
    health = Health(status="ok" if ok else "degraded", version=__version__, checks=checks)
    return JSONResponse(health.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse, responses={200: {"content": {"text/plain; version=0.0.4": {}}}},
            summary="Prometheus text format")
async def metrics(_: CurrentUser, core: CoreDep) -> Response:
    return Response(core.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/openapi.json", include_in_schema=False)
async def openapi(_: CurrentUser, request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())



