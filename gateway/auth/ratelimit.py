"""Sliding-window limiter for login attempts (per client address, and per user name for
failed attempts only).

The address is checked first and every attempt counts against it; a user name counts only
failed attempts, is checked only once the address is allowed, and allows `NAME_FACTOR`
times as many: one address is stopped by its own limit long before it could lock a named
user out (and an address already refused adds nothing to the name's count), while a
guesser spreading over many addresses still meets the name's limit. Keys whose window is
empty are forgotten: the map does not grow with every name and address ever tried.
"""

from __future__ import annotations

from collections import deque

from gateway.clock import Clock

WINDOW_S = 60.0
NAME_FACTOR = 5  # failed attempts a user name allows, in multiples of the per-address limit


class RateLimiter:
    def __init__(self, per_minute: int, clock: Clock, max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._next_prune = 0.0

    def _window(self, key: str, now: float) -> deque[float] | None:
        q = self._hits.get(key)
        if q is not None:
            while q and now - q[0] > WINDOW_S:
                q.popleft()
            if not q:
                del self._hits[key]
                return None
        return q

    def allowed(self, key: str, factor: int = 1) -> bool:
        """Whether the key may try now (does not count the attempt)."""
        q = self._window(key, self._clock.monotonic())
        return q is None or len(q) < self.per_minute * factor

    def record(self, key: str) -> None:
        now = self._clock.monotonic()
        self._prune(now)
        self._hits.setdefault(key, deque()).append(now)

    def hit(self, key: str) -> bool:
        """Check and count in one: False (not counted) when the key is over its limit."""
        if not self.allowed(key):
            return False
        self.record(key)
        return True

    def retry_after(self, key: str) -> int:
        now = self._clock.monotonic()
        q = self._window(key, now)
        if not q:
            return 0
        return max(1, int(WINDOW_S - (now - q[0])) + 1)

    def _prune(self, now: float) -> None:
        if now < self._next_prune and len(self._hits) < self.max_keys:
            return
        self._next_prune = now + WINDOW_S
        for key in [k for k, q in self._hits.items() if not q or now - q[-1] > WINDOW_S]:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:  # a flood of fresh keys: keep the newest
            for key in sorted(self._hits, key=lambda k: self._hits[k][-1])[: len(self._hits) - self.max_keys // 2]:
                del self._hits[key]

    def __len__(self) -> int:
        return len(self._hits)
