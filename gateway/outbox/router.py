"""Which channels a change goes to: the configured rules (per unit, by level, kind and
change), the generic webhooks of `alerts.webhooks`, and the duty officer of the alert's unit
for new red and orange alerts (the roster's nearest unit with someone on duty).

An escalation also goes to the unit the alert is assigned to: its rules and its duty officer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.delivery import CHANGES, DeliverySettings, Rule
from config.schema import Webhook
from gateway.db.models import DutyShift, OutboxChange, Unit
from gateway.duty import ancestors, nearest

DUTY_CHANGES = ("opened", "escalated")


@dataclass(frozen=True)
class Route:
    channel: str
    address: str | None = None


def webhook_name(index: int) -> str:
    return f"webhook-{index}"


class Router:
    def __init__(self, settings: DeliverySettings, webhooks: list[Webhook]) -> None:
        self.rules: list[Rule] = [*settings.rules, *(
            Rule(unit="root", levels=h.levels, kinds=h.kinds, changes=list(CHANGES), channels=[webhook_name(i)])  # type: ignore[arg-type]
            for i, h in enumerate(webhooks))]
        self.duty_levels = set(settings.duty_levels)

    async def routes(self, s: AsyncSession, change: OutboxChange) -> list[Route]:
        return (await self.route_all(s, [change]))[0]

    async def route_all(self, s: AsyncSession, changes: list[OutboxChange]) -> list[list[Route]]:
        """The routes of each change, with two queries for the whole batch (unit paths, and
        the duty shifts around the batch's times), not a few per change."""
        units_of = [self._units(c) for c in changes]
        wanted = {u for us in units_of for u in us} | {r.unit for r in self.rules}
        paths = dict((await s.execute(select(Unit.id, Unit.path).where(Unit.id.in_(wanted)))).all())
        duty = [c for c in changes if c.change in DUTY_CHANGES and c.payload.get("level") in self.duty_levels]
        shifts: list[DutyShift] = []
        if duty:
            above = {a for c, us in zip(changes, units_of, strict=True) if c in duty for u in us if u in paths for a in ancestors(paths[u])}
            first, last = min(c.created_at for c in duty), max(c.created_at for c in duty)
            shifts = list((await s.scalars(select(DutyShift).where(DutyShift.unit_id.in_(above), DutyShift.starts_at <= last,
                                                                   DutyShift.ends_at > first).order_by(DutyShift.starts_at, DutyShift.id))).all())
        return [self._route(c, [paths[u] for u in us if u in paths], paths, shifts) for c, us in zip(changes, units_of, strict=True)]

    @staticmethod
    def _units(change: OutboxChange) -> list[str]:
        p = change.payload
        units = [change.unit_id]
        if change.change == "escalated" and p.get("assigned_unit_id") and p["assigned_unit_id"] != change.unit_id:
            units.append(p["assigned_unit_id"])
        return units

    def _route(self, change: OutboxChange, mine: list[str], paths: dict[str, str], shifts: list[DutyShift]) -> list[Route]:
        p = change.payload
        out: list[Route] = []
        for rule in self.rules:
            top = paths.get(rule.unit)
            if top is None or p.get("level") not in rule.levels or change.change not in rule.changes:
                continue
            if rule.kinds is not None and p.get("kind") not in rule.kinds:
                continue
            if any(path == top or (rule.include_below and path.startswith(top)) for path in mine):
                out.extend(Route(c) for c in rule.channels)
        if change.change in DUTY_CHANGES and p.get("level") in self.duty_levels:
            at = change.created_at
            on = [sh for sh in shifts if sh.starts_at <= at < sh.ends_at]
            for path in mine:
                _, covering = nearest(path, on)
                out.extend(Route(sh.channel, sh.address) for sh in covering if sh.channel)
        return list(dict.fromkeys(out))  # each channel and address once, in rule order
