"""Conflict rules: evaluated when a streamer joins a campaign and when an admin approves one.

Kinds:

- ``time_overlap``: the streamer already runs (active or paused) a campaign of a competing brand
  (same industry, or the same listed group; never the same brand) whose window overlaps the new one.
- ``category_conflict``: a running campaign's category and the new campaign's form a listed pair,
  or the new campaign would make more than ``max_active_per_category`` running campaigns share a
  category. On approval: the campaign's own categories hold both sides of a pair.
- ``platform_exclusivity``: the new campaign targets a platform already targeted by ``max_active``
  of the streamer's running campaigns.
- ``custom``: a typed condition (``field`` over ``data.streamer``, ``data.campaign``, ``data.active``;
  ``level`` over the streamer's levels) that refuses when it holds. On approval there is no
  streamer: ``data.streamer`` is absent and levels are 1.

Rules are evaluated in the order they were made; the first that refuses is the answer
(``409 conflict`` with the rule and the reason).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from questline.conflicts import repository as repo
from questline.conflicts.models import ConflictRule
from questline.conflicts.schemas import (
    CategoryConflict,
    Custom,
    PlatformExclusivity,
    RuleConfig,
    RuleIn,
    RuleOut,
    Stage,
    TimeOverlap,
    Verdict,
)
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.rules.conditions import EvalContext, compile_condition

MAX_RULES_PER_APP = 200
_CONFIG: TypeAdapter[Any] = TypeAdapter(RuleConfig)


@dataclass(frozen=True)
class CampaignView:
    """What rules know of a campaign."""

    id: str
    brand_id: str
    brand_industry: str
    categories: tuple[str, ...]
    platforms: tuple[str, ...]
    countries: tuple[str, ...]
    starts_at: datetime | None
    ends_at: datetime | None
    currency: str = ""
    budget: int = 0
    rate_per_mille: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        return {"id": self.id, "brand_id": self.brand_id, "brand_industry": self.brand_industry,
                "categories": list(self.categories), "platforms": list(self.platforms),
                "countries": list(self.countries), "starts_at": self.starts_at.isoformat() if self.starts_at else None,
                "ends_at": self.ends_at.isoformat() if self.ends_at else None, "currency": self.currency,
                "budget": self.budget, "rate_per_mille": self.rate_per_mille, **self.extra}


def _out(rule: ConflictRule) -> RuleOut:
    return RuleOut(id=rule.id, name=rule.name, description=rule.description, enabled=rule.enabled,
                   applies_on=rule.applies_on, rule=_CONFIG.validate_python(rule.config),
                   created_at=rule.created_at, updated_at=rule.updated_at)


async def create(session: AsyncSession, clock: Clock, app_id: str, body: RuleIn) -> RuleOut:
    if await repo.count(session, app_id) >= MAX_RULES_PER_APP:
        raise Unprocessable(f"an app may have at most {MAX_RULES_PER_APP} conflict rules", code="too_many_rules")
    now = clock.now()
    rule = ConflictRule(id=new_id("cfr"), app_id=app_id, name=body.name, description=body.description,
                        kind=body.rule.kind, enabled=body.enabled, applies_on=list(dict.fromkeys(body.applies_on)),
                        config=body.rule.model_dump(mode="json", by_alias=True), created_at=now, updated_at=now)
    await repo.add(session, rule)
    return _out(rule)


async def get(session: AsyncSession, app_id: str, rule_id: str) -> RuleOut:
    rule = await repo.get(session, app_id, rule_id)
    if rule is None:
        raise NotFound(f"conflict rule {rule_id} not found", code="rule_not_found")
    return _out(rule)


async def replace(session: AsyncSession, clock: Clock, app_id: str, rule_id: str, body: RuleIn) -> RuleOut:
    await get(session, app_id, rule_id)
    await repo.update(session, app_id, rule_id, {
        "name": body.name, "description": body.description, "kind": body.rule.kind, "enabled": body.enabled,
        "applies_on": list(dict.fromkeys(body.applies_on)),
        "config": body.rule.model_dump(mode="json", by_alias=True), "updated_at": clock.now()})
    return await get(session, app_id, rule_id)


async def delete(session: AsyncSession, app_id: str, rule_id: str) -> None:
    if not await repo.delete(session, app_id, rule_id):
        raise NotFound(f"conflict rule {rule_id} not found", code="rule_not_found")


async def list_rules(session: AsyncSession, app_id: str, page: PageParams) -> Page[RuleOut]:
    rows = await repo.page(session, app_id, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda r: [r.id])
    return Page[RuleOut](items=[_out(r) for r in built.items], next_cursor=built.next_cursor)


# Evaluation -----------------------------------------------------------------------------------


def _overlap(a: CampaignView, b: CampaignView) -> bool:
    """Windows [start, end); an open start or end reaches forever that way."""
    if a.ends_at is not None and b.starts_at is not None and a.ends_at <= b.starts_at:
        return False
    return not (b.ends_at is not None and a.starts_at is not None and b.ends_at <= a.starts_at)


def _competing(rule: TimeOverlap, a: CampaignView, b: CampaignView) -> bool:
    if a.brand_id == b.brand_id:
        return False
    if rule.competitors == "same_industry":
        return bool(a.brand_industry) and a.brand_industry.casefold() == b.brand_industry.casefold()
    return any(a.brand_id in group and b.brand_id in group for group in rule.brand_groups)


def _time_overlap(rule: TimeOverlap, stage: Stage, campaign: CampaignView,
                  active: Sequence[CampaignView]) -> str | None:
    if stage != "join":
        return None
    for other in active:
        if _competing(rule, campaign, other) and _overlap(campaign, other):
            return (f"the streamer runs campaign {other.id} of competing brand {other.brand_id} "
                    f"({other.brand_industry}) at overlapping times")
    return None


def _category_conflict(rule: CategoryConflict, stage: Stage, campaign: CampaignView,
                       active: Sequence[CampaignView]) -> str | None:
    pairs = [frozenset(p) for p in rule.pairs]
    own = set(campaign.categories)
    if stage == "approval":
        for pair in pairs:
            if len(pair) == 2 and pair <= own:
                a, b = sorted(pair)
                return f"the campaign's categories {a} and {b} may not run together"
        return None
    for other in active:
        for pair in pairs:
            for mine in own:
                for theirs in other.categories:
                    if frozenset((mine, theirs)) == pair:
                        return (f"category {mine} may not run beside {theirs} (campaign {other.id} is running)")
    if rule.max_active_per_category is not None:
        counted = own & set(rule.categories) if rule.categories else own
        for category in sorted(counted):
            running = sum(category in other.categories for other in active)
            if running >= rule.max_active_per_category:
                return (f"the streamer already runs {running} campaign(s) in {category} "
                        f"(at most {rule.max_active_per_category})")
    return None


def _platform_exclusivity(rule: PlatformExclusivity, stage: Stage, campaign: CampaignView,
                          active: Sequence[CampaignView]) -> str | None:
    if stage != "join":
        return None
    targeted = set(campaign.platforms) & set(rule.platforms) if rule.platforms else set(campaign.platforms)
    for platform in sorted(targeted):
        running = [other.id for other in active if platform in other.platforms]
        if len(running) >= rule.max_active:
            return (f"the streamer already runs {len(running)} campaign(s) on {platform} "
                    f"(at most {rule.max_active}): {', '.join(running)}")
    return None


def _custom(rule: Custom, name: str, campaign: CampaignView, streamer: Mapping[str, Any] | None,
            active: Sequence[CampaignView], levels: Mapping[str, int]) -> str | None:
    data: dict[str, Any] = {
        "campaign": campaign.as_data(),
        "active": {"count": len(active), "campaign_ids": [c.id for c in active],
                   "brand_ids": sorted({c.brand_id for c in active}),
                   "industries": sorted({c.brand_industry for c in active}),
                   "categories": sorted({x for c in active for x in c.categories}),
                   "platforms": sorted({x for c in active for x in c.platforms})},
    }
    if streamer is not None:
        data["streamer"] = dict(streamer)
    event = {"type": "conflict.check", "player_id": (streamer or {}).get("player_id", ""), "data": data}
    if compile_condition(rule.condition)(EvalContext(event=event, levels=levels)):
        return rule.message or f"custom rule {name} holds"
    return None


LevelsLoader = Callable[[], Awaitable[Mapping[str, int]]]


async def evaluate(session: AsyncSession, app_id: str, stage: Stage, campaign: CampaignView,
                   streamer: Mapping[str, Any] | None = None, active: Sequence[CampaignView] = (),
                   levels: LevelsLoader | None = None) -> list[Verdict]:
    """Every enabled rule of this stage, in order, with whether it refuses and why (the streamer's
    levels are loaded only when a custom rule needs them)."""
    verdicts = []
    loaded: Mapping[str, int] | None = None
    for row in await repo.enabled(session, app_id):
        if stage not in row.applies_on:
            continue
        rule = _CONFIG.validate_python(row.config)
        if isinstance(rule, TimeOverlap):
            reason = _time_overlap(rule, stage, campaign, active)
        elif isinstance(rule, CategoryConflict):
            reason = _category_conflict(rule, stage, campaign, active)
        elif isinstance(rule, PlatformExclusivity):
            reason = _platform_exclusivity(rule, stage, campaign, active)
        else:
            if loaded is None:
                loaded = await levels() if levels is not None and streamer is not None else {}
            reason = _custom(rule, row.name, campaign, streamer, active, loaded)
        verdicts.append(Verdict(rule_id=row.id, name=row.name, kind=row.kind,
                                refused=reason is not None, reason=reason or "passes"))
    return verdicts


def refusal(verdicts: Sequence[Verdict], what: str) -> Conflict | None:
    """The ``409 conflict`` problem for the first refusing rule (None when every rule passes)."""
    first = next((v for v in verdicts if v.refused), None)
    if first is None:
        return None
    return Conflict(f"{what} refused by conflict rule {first.name!r}: {first.reason}", code="conflict",
                    extra={"rule": {"id": first.rule_id, "name": first.name, "kind": first.kind},
                           "reason": first.reason})
