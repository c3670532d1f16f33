"""Every route that answers JSON declares its response model, so OpenAPI documents what
integrators get (and FastAPI filters the answer through it: nothing stored leaks by
accident). Routes are enumerated from the real app, so a route added later is covered."""

from __future__ import annotations

import types
import typing
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import JSONResponse

from tests.core.test_route_auth import http_routes

# Answers that are not JSON documents: files, media, SDP, pages, scripts, redirects, no body.
NOT_JSON = {
    ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/metrics"), ("GET", "/static/roles.js"), ("GET", "/login"), ("GET", "/"),
    ("GET", "/console"), ("GET", "/console/{page:path}"), ("OPTIONS", "/api/uploads/"), ("POST", "/api/uploads/"),
    ("HEAD", "/api/uploads/{upload_id}"), ("PATCH", "/api/uploads/{upload_id}"), ("DELETE", "/api/uploads/{upload_id}"),
    ("PATCH", "/api/cameras/{camera_id}/whep/{session_id}"),
}


def _is_model(t: Any) -> bool:
    if typing.get_origin(t) in (list, typing.Union, types.UnionType):
        return all(_is_model(a) or a is type(None) for a in typing.get_args(t))
    return isinstance(t, type) and issubclass(t, BaseModel)


def _answers_json(route: APIRoute) -> bool:
    rc = route.response_class
    cls = getattr(rc, "value", rc)  # FastAPI wraps the default in a placeholder
    return route.status_code != 204 and isinstance(cls, type) and issubclass(cls, JSONResponse)


async def test_every_json_route_has_a_response_model(make_config: Any) -> None:
    from gateway.app import create_app

    app = create_app(make_config())
    missing = [f"{m} {path}" for m, path, r in http_routes(app)
               if (m, path) not in NOT_JSON and _answers_json(r) and not _is_model(r.response_model)]
    assert missing == [], "JSON routes without a response model: " + ", ".join(missing)
    schema = app.openapi()
    assert schema["paths"]["/api/alerts"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"].endswith("/AlertListed")  # AlertPublic with the place in the tiles' datum too
