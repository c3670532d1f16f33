"""Sliding-window limiter for login attempts (per user name and per address)."""

from __future__ import annotations

from collections import defaultdict, deque

from gateway.clock import Clock


class RateLimiter:
    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def hit(self, key: str) -> bool:
        """Record an attempt; False when the key is over its limit."""
        now = self._clock.monotonic()
        q = self._hits[key]
        while q and now - q[0] > 60.0:
            q.popleft()
        if len(q) >= self.per_minute:
            return False
        q.append(now)
        return True

    def retry_after(self, key: str) -> int:
        q = self._hits.get(key)
        if not q:
            return 0
        return max(1, int(60.0 - (self._clock.monotonic() - q[0])) + 1)
