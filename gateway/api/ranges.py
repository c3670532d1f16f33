"""Whether an answer serves the start of a file: what marks a viewing of a recording or an
evidence item in the audit and custody logs. A player asks for many ranges per viewing;
the one that covers byte 0 (no Range at all, `bytes=0-`, `bytes=00-`, a suffix range as
long as the file, one range of several...) is the viewing. The decision follows Starlette's
own parsing of the header, so what is logged is what FileResponse will serve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable


def file_response(path: Path, **kw: Any) -> FileResponse:
    """A FileResponse with its validators (ETag, Last-Modified) set now, for `serves_start`."""
    return FileResponse(path, stat_result=os.stat(path), **kw)


def serves_start(request: Request, response: FileResponse) -> bool:
    rng = request.headers.get("range")
    if rng is None or request.method.upper() not in ("GET", "HEAD"):
        return True
    if_range = request.headers.get("if-range")
    if if_range is not None and (if_range.startswith("W/") or if_range not in (response.headers.get("etag"), response.headers.get("last-modified"))):
        return True  # a stale If-Range: the whole file is sent
    size = int(response.headers["content-length"])
    try:
        ranges = FileResponse._parse_range_header(rng, size)  # noqa: SLF001 - the parser FileResponse itself uses
    except (MalformedRangeHeader, RangeNotSatisfiable):
        return False  # 400 / 416: nothing of the file is sent
    return not ranges or any(start == 0 for start, _ in ranges)
