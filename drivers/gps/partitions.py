"""Trackers spread over partitions, each owned by one node of a cluster (a `trackers:<k>`
lease), and the messages of the partitions a node does not own, kept for a takeover.

Every node receives every tracker message (its own persistent MQTT session). The owner of
a tracker's partition judges its fixes, in order, through one filter and one zone state;
the other nodes keep the message for `window_s` (`Standby`). When a node takes a
partition over (its owner died, or handed it back), it rebuilds the partition's rule
state from what is stored and replays what it kept since the last commit of the owner
before it: fixes stored already are recognised and dropped, so a fix is never lost and
never judged twice (docs/cluster.md).
"""

from __future__ import annotations

import zlib
from collections import deque
from datetime import datetime, timedelta

from drivers.gps.inbound import Inbound

# Positions kept for a replay start this long before the previous owner's last commit:
# they are recognised when stored already, so a margin costs only a lookup, and it covers
# the nodes receiving a message a little apart.
POSITION_MARGIN = timedelta(seconds=5)


def partition_of(key: str, n: int) -> int:
    """Stable across processes and versions (not Python's salted `hash`)."""
    return zlib.crc32(key.encode()) % n


def key_of(m: Inbound) -> str:
    """A message's tracker; a message whose topic names none goes by its topic."""
    return m.dev if m.dev is not None else m.topic


class Standby:
    """Per partition, the messages of the last `window_s`, with when they came."""

    def __init__(self, window_s: float) -> None:
        self.window = timedelta(seconds=window_s)
        self.kept: dict[int, deque[tuple[datetime, Inbound]]] = {}

    def keep(self, k: int, at: datetime, m: Inbound) -> None:
        q = self.kept.get(k)
        if q is None:
            q = self.kept[k] = deque()
        q.append((at, m))

    def trim(self, now: datetime) -> None:
        oldest = now - self.window
        for q in self.kept.values():
            while q and q[0][0] < oldest:
                q.popleft()

    def take(self, k: int, after: datetime | None) -> list[Inbound]:
        """What partition `k` must replay when taken over from an owner whose last commit
        was at `after` (None: it recorded none, so all that was kept): positions from a
        little before, other messages (status, state) only from after it."""
        q = self.kept.pop(k, deque())
        if after is None:
            return [m for _, m in q]
        return [m for at, m in q if at > after or (m.sub in ("nmea", "owntracks") and at > after - POSITION_MARGIN)]

    def __len__(self) -> int:
        return sum(len(q) for q in self.kept.values())
