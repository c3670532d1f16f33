"""Pure tus header rules (drivers/bodycam/tus.py), property-checked."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.bodycam.tus import (
    TusError,
    parse_checksum,
    parse_length,
    parse_metadata,
    safe_filename,
)

keys = st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True)


@given(st.dictionaries(keys, st.text(max_size=40), max_size=6))
def test_metadata_round_trip(meta: dict[str, str]) -> None:
    header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in meta.items())
    assert parse_metadata(header) == meta


@given(st.text(max_size=60))
def test_metadata_never_crashes(header: str) -> None:
    try:
        out = parse_metadata(header)
    except TusError as e:
        assert e.status == 400
    else:
        assert isinstance(out, dict)


@given(st.text(max_size=30))
def test_length_is_a_plain_integer_or_refused(value: str) -> None:
    try:
        n = parse_length(value, "Upload-Length", 1000)
    except TusError as e:
        assert e.status in (400, 413)
    else:
        assert value.isdigit() and 0 <= n <= 1000


@given(st.text(min_size=1, max_size=80))
def test_safe_filename_never_returns_a_path(name: str) -> None:
    try:
        out = safe_filename(name)
    except TusError:
        return
    assert "/" not in out and "\\" not in out and out not in (".", "..")


@pytest.mark.parametrize("value", ["sha1", "sha1 !!", "crc32 AAAA", "sha256 " + base64.b64encode(b"short").decode()])
def test_bad_checksum_headers(value: str) -> None:
    with pytest.raises(TusError) as e:
        parse_checksum(value)
    assert e.value.status == 400
