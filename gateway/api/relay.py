"""Requests for work another node of the cluster runs, passed on to that node.

A camera is recorded and relayed by one node (docs/cluster.md): a live view (WHEP), a
snapshot or a segment rotation asked of another node is sent on to the owner, as the
user asked it (their Authorization header or session cookie: every node verifies the
same tokens, as they share `gateway.secret_key`), and its answer returned as it is. The
media of a live view then flows between the browser and the owner directly (the SDP
answer carries the owner's ICE candidates).
"""

from __future__ import annotations

import logging

import httpx
from fastapi import HTTPException, Request, Response

from gateway.core import Core

log = logging.getLogger(__name__)

FORWARDED = ("authorization", "cookie", "content-type", "accept")
PASSED_BACK = ("location", "etag", "content-type", "cache-control", "allow")
# marks a request already passed on once: a node never passes it on again (no loops when
# two nodes disagree for a moment about who owns a camera)
HOP = "x-gateway-relayed"


async def to_owner(request: Request, core: Core, kind: str, target: str, path: str, body: bytes | None = None,
                   timeout_s: float = 15.0) -> Response | None:
    """The owner's answer when another node runs `target`; None when this node does (or
    when the request was passed on already)."""
    if request.headers.get(HOP):
        return None
    owner = await core.cluster.owner(kind, target)
    if owner is None:
        raise HTTPException(503, f"no gateway node runs {kind} {target} at the moment (being taken over); try again in a few seconds")
    node, url = owner
    if node == core.cluster.node_id:
        return None
    if not url or core.http is None:
        raise HTTPException(502, f"gateway node {node} runs {kind} {target} but cannot be reached")
    return await _pass_on(request, core, node, url + path, body, timeout_s, f"gateway node {node}, which runs {kind} {target}, did not answer")


async def _pass_on(request: Request, core: Core, node: str, url: str, body: bytes | None, timeout_s: float, failed: str,
                   extra: tuple[str, ...] = ()) -> Response:
    headers = forwarded_headers(request, core)
    headers |= {h: request.headers[h] for h in extra if h in request.headers}
    assert core.http is not None
    try:
        r = await core.http.request(request.method, url, headers=headers, content=body, timeout=timeout_s)
    except httpx.HTTPError as e:
        log.warning("relay of %s %s to node %s failed: %s", request.method, request.url.path, node, type(e).__name__)
        raise HTTPException(502, failed) from None
    return Response(r.content, status_code=r.status_code, headers={k: v for k, v in r.headers.items() if k in PASSED_BACK})


async def to_node(request: Request, core: Core, node: str, path: str, body: bytes | None = None, timeout_s: float = 30.0) -> Response:
    """Pass the request on to one named node (one that runs a remote session), as it came."""
    if request.headers.get(HOP):
        raise HTTPException(502, f"gateway node {node} runs this, and the request was passed on once already")
    url = dict(await core.cluster.peers()).get(node)
    if not url or core.http is None:
        raise HTTPException(502, f"gateway node {node}, which runs this session, is not reachable (a session left by a node that died is sealed when that node starts again)")
    # a join link's token and a kiosk's key are the credentials of those routes
    return await _pass_on(request, core, node, url + path, body, timeout_s, f"gateway node {node}, which runs this session, did not answer",
                          ("x-call-token", "x-device-key"))


def forwarded_headers(request: Request, core: Core) -> dict[str, str]:
    """What a request passed on to another node carries: the user's credentials, the body's
    type, and the mark that it was passed on once."""
    headers = {k: v for k, v in request.headers.items() if k in FORWARDED}
    headers[HOP] = core.cluster.node_id
    return headers
