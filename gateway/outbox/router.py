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
from gateway.db.models import OutboxChange, Unit
from gateway.duty import nearest, on_duty_query

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
        p = change.payload
        units = [change.unit_id]
        if change.change == "escalated" and p.get("assigned_unit_id") and p["assigned_unit_id"] != change.unit_id:
            units.append(p["assigned_unit_id"])
        wanted = {*units, *(r.unit for r in self.rules)}
        paths = dict((await s.execute(select(Unit.id, Unit.path).where(Unit.id.in_(wanted)))).all())
        mine = [paths[u] for u in units if u in paths]
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
            for path in mine:
                _, shifts = nearest(path, (await s.scalars(on_duty_query(path, change.created_at))).all())
                out.extend(Route(sh.channel, sh.address) for sh in shifts if sh.channel)
        return list(dict.fromkeys(out))  # each channel and address once, in rule order
