"""Logging setup: text or JSON lines, with secrets masked on the way out."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

# Never written to a log: device keys; credentials in a URL's userinfo (a password may hold
# '@' or ':', so up to the authority's last '@'); a URL's whole query string (robot
# channels carry their key there: WeCom ?key=, DingTalk ?access_token=); long opaque path
# segments (Feishu /hook/<token>, signed links); bearer tokens; password=..., secret: ...
_SECRETS = [
    (re.compile(r"dk_[A-Za-z0-9_-]{8,}"), "dk_***"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@?#]+:)[^/\s?#]*@"), r"\1***@"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s?#]*)\?[^\s#]*"), r"\1?***"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s/?#]+(?:/[^\s/?#]*)*?/)[A-Za-z0-9_=-]{20,}(?=[/?#\s]|$)"), r"\1***"),
    (re.compile(r"(/hook/)[A-Za-z0-9_=-]{8,}"), r"\1***"),  # a robot's token in its path, with or without the scheme
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
    (re.compile(r"(?i)((?:password|passwd|secret|token|access_token|key)[\"']?\s*[:=]\s*[\"']?)[^\s,\"'}&]+"), r"\1***"),
]


def mask(text: str) -> str:
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask(record.getMessage()),
        }
        if record.exc_info:
            out["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else MaskingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiortc", "aioice", "amqtt", "transitions", "libav", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


@dataclass(slots=True)
class _Window:
    started: float
    suppressed: int = 0
    last: str = ""


class Throttled:
    """A log that stays readable under a flood: per key (a device, a peer), the first
    message is written at once; those that follow within `every_s` are counted, and written
    as one summary line when the window ends ("...and 1,234 more in the last 60 s"), by the
    next message or by `flush()` (call it periodically). The counts belong in metrics;
    the log says that it happens and who does it.

    At most `max_keys` keys are tracked: beyond that (a flood of made-up ids) the rest share
    one key, so memory stays bounded and the flood still shows.
    """

    OTHERS = "(other sources)"

    def __init__(self, logger: logging.Logger, every_s: float = 60.0, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.every_s, self.max_keys, self.clock = logger, every_s, max_keys, clock
        self._windows: dict[tuple[int, str], _Window] = {}

    def log(self, level: int, key: str, msg: str, *args: object) -> None:
        if not self.logger.isEnabledFor(level):
            return
        now = self.clock()
        k = (level, key)
        w = self._windows.get(k)
        if w is None:
            if len(self._windows) >= self.max_keys:
                k = (level, self.OTHERS)
                w = self._windows.get(k)
            if w is None:
                self._windows[k] = _Window(now)
                self.logger.log(level, msg, *args, stacklevel=2)  # the caller's line, not ours
                return
        if now - w.started < self.every_s:
            w.suppressed += 1
            w.last = msg % args if args else msg
            return
        self._summarise(k, w)
        w.started, w.suppressed = now, 0
        self.logger.log(level, msg, *args, stacklevel=2)

    def flush(self) -> None:
        """Write the summaries of windows that have ended, and forget quiet keys."""
        now = self.clock()
        for k, w in list(self._windows.items()):
            if now - w.started < self.every_s:
                continue
            if w.suppressed:
                self._summarise(k, w)
                w.started, w.suppressed = now, 0
            else:
                del self._windows[k]

    def _summarise(self, k: tuple[int, str], w: _Window) -> None:
        if w.suppressed:
            self.logger.log(k[0], "%s: %d more like this in the last %.0f s, the latest: %s", k[1], w.suppressed, self.every_s, w.last)
