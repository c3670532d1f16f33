"""tus 1.0 protocol rules that need no I/O: header parsing and validation.

Kept pure so the bad-input cases (metadata that is not base64, absurd lengths,
unknown checksum algorithms, unsafe filenames) are checked in one place and
each maps to the status code the tus 1.0 specification gives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from config.device_base import ID_PATTERN

TUS_VERSION = "1.0.0"
# creation-defer-length is not claimed: recorders always know their file size.
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
METADATA_KEYS_REQUIRED = ("filename", "device_id", "recorded_at")
METADATA_KEYS = (*METADATA_KEYS_REQUIRED, "person_id", "case_ref", "filetype", "officer")
_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MAX_METADATA = 4096
# Values that name things are checked where they enter: ids as everywhere else (they end up
# in MQTT topics, URLs and filters); labels may be Chinese and carry case-number punctuation,
# but no control characters, markup or MQTT wildcards, and fit their columns.
_ID = re.compile(ID_PATTERN)
_LABEL_CHARS = r"[\w .,:#()\[\]（）〔〕【】·/-]"
METADATA_VALUES = {
    "device_id": (_ID, "an id (letters, digits, '_', '.', '-'; at most 64)"),
    "person_id": (_ID, "an id (letters, digits, '_', '.', '-'; at most 64)"),
    "officer": (re.compile(rf"^{_LABEL_CHARS}{{1,64}}$"), "a name of at most 64 letters, digits, spaces and . , : # ( ) [ ] / -"),
    "case_ref": (re.compile(rf"^{_LABEL_CHARS}{{1,100}}$"), "a case reference of at most 100 letters, digits, spaces and . , : # ( ) [ ] / -"),
    "filetype": (re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$"), "a media type such as video/mp4"),
}


class TusError(Exception):
    """A request the protocol refuses: `status` as the tus spec gives it."""

    def __init__(self, status: int, message: str, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


def http_date(dt: datetime) -> str:
    """RFC 7231 date, as tus requires for Upload-Expires."""
    return format_datetime(dt, usegmt=True)


# ASCII digits only: str.isdigit() also accepts '¹' and other characters int() refuses
_DIGITS = re.compile(r"[0-9]{1,20}")


def parse_length(value: str | None, header: str, max_size: int) -> int:
    if value is None:
        raise TusError(400, f"{header} is required (creation-defer-length is not supported)", "missing_length")
    if not _DIGITS.fullmatch(value):
        raise TusError(400, f"{header} must be a non-negative integer, got {value[:30]!r}", "bad_length")
    n = int(value)
    if n > max_size:
        raise TusError(413, f"{header} {n} exceeds Tus-Max-Size {max_size}", "too_large")
    return n


def parse_offset(value: str | None) -> int:
    if value is None or not _DIGITS.fullmatch(value):
        raise TusError(400, "Upload-Offset must be a non-negative integer", "bad_offset")
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """`key base64value,key2 base64value2,key3` → dict; values must be UTF-8."""
    out: dict[str, str] = {}
    if not value:
        return out
    if len(value) > _MAX_METADATA:
        raise TusError(400, f"Upload-Metadata longer than {_MAX_METADATA} characters", "bad_metadata")
    for pair in value.split(","):
        parts = pair.strip().split(" ")
        if len(parts) > 2 or not _KEY.fullmatch(parts[0]):  # fullmatch: `$` alone lets a final newline in
            raise TusError(400, f"Upload-Metadata pair {pair.strip()[:40]!r} is not 'key base64value'", "bad_metadata")
        key = parts[0]
        if key in out:
            raise TusError(400, f"Upload-Metadata key {key!r} given twice", "bad_metadata")
        raw = parts[1] if len(parts) == 2 else ""
        try:
            out[key] = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise TusError(400, f"Upload-Metadata value for {key!r} is not base64-encoded UTF-8", "bad_metadata") from None
    for key, value in out.items():
        check_metadata_value(key, value)
    return out


def valid_metadata_value(key: str, value: str) -> bool:
    """Empty values (a key sent without a value) mean "not given"; keys without a rule pass."""
    rule = METADATA_VALUES.get(key)
    return not value or rule is None or rule[0].fullmatch(value) is not None


def check_metadata_value(key: str, value: str) -> None:
    if not valid_metadata_value(key, value):
        raise TusError(400, f"Upload-Metadata {key} {value[:40]!r} is not valid: {METADATA_VALUES[key][1]}", "bad_metadata")


def safe_filename(name: str) -> str:
    """The recorder's file name, kept only as a label: never a path."""
    if not name or len(name) > 255 or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name or any(ord(c) < 32 for c in name):
        raise TusError(400, f"filename {name[:60]!r} must be a plain file name (no path separators or control characters)", "bad_filename")
    return name


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def new(self):  # type: ignore[no-untyped-def]
        return CHECKSUM_ALGORITHMS[self.algorithm]()


def parse_checksum(value: str | None) -> Checksum | None:
    """`Upload-Checksum: sha1 <base64 digest>`; 400 when malformed or unsupported (tus: 400)."""
    if value is None:
        return None
    parts = value.strip().split(" ")
    if len(parts) != 2:
        raise TusError(400, "Upload-Checksum must be '<algorithm> <base64 digest>'", "bad_checksum_header")
    algo = parts[0].lower()
    if algo not in CHECKSUM_ALGORITHMS:
        raise TusError(400, f"checksum algorithm {parts[0]!r} not supported (Tus-Checksum-Algorithm: sha1,sha256)", "bad_checksum_header")
    try:
        digest = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise TusError(400, "Upload-Checksum digest is not base64", "bad_checksum_header") from None
    if len(digest) != CHECKSUM_ALGORITHMS[algo]().digest_size:
        raise TusError(400, f"Upload-Checksum digest has the wrong size for {algo}", "bad_checksum_header")
    return Checksum(algo, digest)
