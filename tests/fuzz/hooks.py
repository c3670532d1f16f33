"""Schemathesis hooks for the fuzz run (loaded through SCHEMATHESIS_HOOKS): how to send the
one body type it cannot build by itself."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/sdp")
def sdp(ctx: Any, value: Any) -> bytes:
    # WHEP offers are SDP text; whatever was generated goes as text (the server must refuse
    # what is not an offer with a clear 4xx)
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
