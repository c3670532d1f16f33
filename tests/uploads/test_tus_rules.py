"""Pure tus header rules (drivers/bodycam/tus.py), property-checked."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from drivers.bodycam.tus import (
    METADATA_KEYS,
    METADATA_VALUES,
    TusError,
    parse_checksum,
    parse_length,
    parse_metadata,
    safe_filename,
)

KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # what a metadata key may be (tus 1.0: no spaces, no commas; ours: this)
keys = st.sampled_from(METADATA_KEYS) | st.from_regex(KEY, fullmatch=True)


@st.composite
def metadata_headers(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """(header, the metadata it carries), encoded as tus 1.0 says: `key base64(value)` pairs
    separated by commas; an empty value may leave out its space, or keep it."""
    meta = draw(st.dictionaries(keys, st.text(max_size=40), max_size=8))
    pairs = []
    for k, v in meta.items():
        if v:
            pairs.append(f"{k} {base64.b64encode(v.encode()).decode()}")
        else:
            pairs.append(draw(st.sampled_from([k, f"{k} "])))
    return draw(st.sampled_from([",", ", "])).join(pairs), meta


@st.composite
def mutated_headers(draw: st.DrawFn) -> str:
    """A valid header with a few characters changed, inserted or removed."""
    chars = list(draw(metadata_headers())[0])
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(chars)))
        piece = draw(st.sampled_from([" ", ",", "=", "+", "/", "\n", "\t", "\x00", "é", "A", "~"]) | st.characters())
        op = draw(st.sampled_from(["insert", "replace", "delete"]))
        if op == "insert" or not chars:
            chars.insert(i, piece)
        elif op == "replace":
            chars[min(i, len(chars) - 1)] = piece
        else:
            del chars[i:i + draw(st.integers(1, 3))]
    return "".join(chars)


LONG_VALID = ",".join(f"k{i} {base64.b64encode(b'x' * 40).decode()}" for i in range(80))
ANY_HEADER = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.text(alphabet="abfilenam_.-09AZ=+/ ,\t\n\x00é", max_size=80),
    metadata_headers().map(lambda hm: hm[0]),
    mutated_headers(),
    st.builds(lambda h, n: h + "," + "k" * n, metadata_headers().map(lambda hm: hm[0]), st.integers(3980, 4100)),  # around the length limit
)


@given(metadata_headers())
@example(("", {}))
@example(("filename Y2xpcC5tcDQ=,device_id YmMtMQ==,recorded_at MjAyNi0xMS0yMFQwODozMDowMFo=", {"filename": "clip.mp4", "device_id": "bc-1", "recorded_at": "2026-11-20T08:30:00Z"}))
@example(("case_ref,officer ,filetype dmlkZW8vbXA0", {"case_ref": "", "officer": "", "filetype": "video/mp4"}))
@example((LONG_VALID, {f"k{i}": "x" * 40 for i in range(80)}))  # well-formed, but over the 4096 characters allowed
def test_metadata_round_trip(header_meta: tuple[str, dict[str, str]]) -> None:
    header, meta = header_meta
    # values the gateway reads (ids, officer, case_ref, filetype) must also be what they say
    refused = [k for k, v in meta.items() if v and k in METADATA_VALUES and not METADATA_VALUES[k][0].fullmatch(v)]
    if len(header) > 4096 or refused:
        with pytest.raises(TusError) as e:
            parse_metadata(header)
        assert e.value.status == 400 and e.value.reason == "bad_metadata"
        if len(header) <= 4096:
            assert refused[0] in e.value.message
    else:
        assert parse_metadata(header) == meta


@given(ANY_HEADER)
@example(None)
@example("a\n YQ==")  # `$` in a pattern also matches before a final newline
@example("filename YQ==,filename Yg==")
@example("filename !!!")
@example("filename //79")  # base64 of bytes that are not UTF-8
@example("x" * 4097)
@example(LONG_VALID)
def test_metadata_never_crashes(header: str | None) -> None:
    """Any header: refused with 400 and a message, or parsed into the pairs it carries, each
    key one a key may be (given once) and each value the text its base64 encodes."""
    try:
        out = parse_metadata(header)
    except TusError as e:
        assert e.status == 400 and e.reason == "bad_metadata"
        assert isinstance(e.message, str) and e.message.startswith("Upload-Metadata") and str(e) == e.message
        return
    assert type(out) is dict
    if not header:
        assert out == {}
        return
    assert len(header) <= 4096
    pairs = [p.strip().split(" ") for p in header.split(",")]
    assert [p[0] for p in pairs] == list(out)  # every pair, in order, none dropped or merged
    for p in pairs:
        key, value = p[0], out[p[0]]
        assert KEY.fullmatch(key), key
        assert type(value) is str
        assert len(p) <= 2 and base64.b64decode(p[1] if len(p) == 2 else "", validate=True) == value.encode()
        if value and key in METADATA_VALUES:
            assert METADATA_VALUES[key][0].fullmatch(value), (key, value)


@given(st.text(max_size=30) | st.integers(0, 2000).map(str) | st.integers(0, 10**25).map(str)
       | st.text(alphabet="0123456789 +-_.e¹٣", max_size=22))
@example(None)
@example("1000")
@example("1001")
@example("0")
@example("00000000000000000001")  # 20 digits
@example("000000000000000000001")  # 21
@example("¹")  # str.isdigit() says yes, int() says no
@example("٣")  # a digit to int() and to \d, not to HTTP
@example(" 7")
def test_length_is_a_plain_integer_or_refused(value: str | None) -> None:
    """ASCII digits (at most 20) are the length, refused with 413 over the limit; anything
    else (signs, spaces, exponents, other scripts' digits) is 400."""
    plain = value is not None and re.fullmatch(r"[0-9]{1,20}", value) is not None
    try:
        n = parse_length(value, "Upload-Length", 1000)
    except TusError as e:
        assert e.message.startswith("Upload-Length")
        assert e.status == (413 if plain else 400), (value, e.status)
        assert not plain or int(value) > 1000  # type: ignore[arg-type]
    else:
        assert plain and n == int(value) <= 1000  # type: ignore[arg-type]


def _plain_file_name(name: str) -> bool:
    return 0 < len(name) <= 255 and not ({"/", "\\"} & set(name)) and name not in (".", "..") and all(ord(c) >= 32 for c in name)


@given(st.text(min_size=1, max_size=80) | st.from_regex(r"[\w .,()\-]{1,40}\.(mp4|MOV|jpg)", fullmatch=True)
       | st.text(alphabet="ab./\\\x00\n", min_size=1, max_size=6) | st.text(alphabet="a.", min_size=250, max_size=260))
@example("..")
@example(".")
@example("...")
@example("clip.mp4")
@example(" clip.mp4 ")
@example("../etc/passwd")
@example("C:\\clip.mp4")
@example("a\x00.mp4")
@example("a" * 255)
@example("a" * 256)
def test_safe_filename_never_returns_a_path(name: str) -> None:
    """A plain file name is kept as it is; anything that could be read as a path (or carries
    control characters) is refused with 400, never cleaned up into something else."""
    try:
        out = safe_filename(name)
    except TusError as e:
        assert e.status == 400 and e.reason == "bad_filename" and e.message.startswith("filename")
        assert not _plain_file_name(name), name
    else:
        assert out == name and _plain_file_name(out)
        assert "/" not in out and "\\" not in out and out not in (".", "..")


@pytest.mark.parametrize("value", ["sha1", "sha1 !!", "crc32 AAAA", "sha256 " + base64.b64encode(b"short").decode()])
def test_bad_checksum_headers(value: str) -> None:
    with pytest.raises(TusError) as e:
        parse_checksum(value)
    assert e.value.status == 400
