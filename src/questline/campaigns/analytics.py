"""Discovery for streamers, metrics and forecasts for brands, performance for streamers, CSV exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from questline.campaigns import repository as repo
from questline.campaigns.models import Campaign
from questline.campaigns.schemas import (
    CampaignOut,
    CampaignPerformance,
    Forecast,
    Granularity,
    Metrics,
    MonthPerformance,
    Participants,
    Performance,
    TimelinePoint,
)
from questline.campaigns.service import campaign_for, campaign_out
from questline.kit.errors import ProblemError
from questline.kit.pagination import Page, PageParams, encode_cursor
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.players import service as players
from questline.sponsors import service as sponsors
from questline.tenancy.auth import Caller

PACE_WINDOW = timedelta(hours=24)
_SCAN = 200


async def open_for(session: AsyncSession, runtime: Runtime, caller: Caller, streamer_id: str,
                   page: PageParams) -> Page[CampaignOut]:
    """Campaigns a streamer may look at joining: active, budget left, never joined, in one of the
    categories they stream (their own content categories) or uncategorized; biggest budget first."""
    sponsors.authorize_streamer(caller, streamer_id)
    streamer = await sponsors.get_streamer(session, caller.app, streamer_id)
    after = page.after()
    position: tuple[int, str] | None = None
    if after is not None:
        if len(after) != 2 or type(after[0]) is not int or type(after[1]) is not str:
            raise ProblemError("the cursor is not one this API issued", code="invalid_cursor")
        position = (after[0], after[1])
    mine = set(streamer.content_categories)
    now = runtime.clock.now()
    found: list[Campaign] = []
    more = False
    while True:
        rows = await repo.open_for(session, caller.app, streamer_id, now, after=position, limit=_SCAN)
        for c in rows:
            if not c.categories or not mine or set(c.categories) & mine:
                if len(found) == page.limit:
                    more = True
                    break
                found.append(c)
        if more or len(rows) < _SCAN:
            break
        position = (rows[-1].budget, rows[-1].id)
    cursor = encode_cursor([found[-1].budget, found[-1].id]) if more and found else None
    return Page[CampaignOut](items=[campaign_out(c) for c in found], next_cursor=cursor)


def _forecast(c: Campaign, recent: Sequence[tuple[datetime, int, int]], now: datetime) -> Forecast:
    impressions = sum(n for _, n, _ in recent)
    spent = sum(g for _, _, g in recent)
    pace = impressions / (PACE_WINDOW.total_seconds() / 3600)
    spend_pace = spent / (PACE_WINDOW.total_seconds() / 3600)
    to_target = None if pace <= 0 else max(0.0, (c.impression_target - c.impressions) / pace)
    to_budget = None if spend_pace <= 0 else max(0.0, (c.budget * 95 / 100 - c.spent) / spend_pace)
    candidates = [(h, r) for h, r in ((to_target, "impression_target_reached"), (to_budget, "budget_exhausted"))
                  if h is not None]
    if c.ends_at is not None:
        candidates.append((max(0.0, (c.ends_at - now).total_seconds() / 3600), "time_expired"))
    if c.status not in ("active", "paused") or not candidates:
        return Forecast(pace_per_hour=round(pace, 3), projected_completion_at=None, projected_reason=None,
                        hours_to_target=to_target, hours_to_budget=to_budget)
    hours, reason = min(candidates, key=lambda item: item[0])
    return Forecast(pace_per_hour=round(pace, 3), projected_completion_at=now + timedelta(hours=hours),
                    projected_reason=reason, hours_to_target=None if to_target is None else round(to_target, 3),
                    hours_to_budget=None if to_budget is None else round(to_budget, 3))


def _bucket(points: Sequence[tuple[datetime, int, int]], granularity: Granularity) -> list[TimelinePoint]:
    if granularity == "hour":
        return [TimelinePoint(at=h, impressions=n, spent=g) for h, n, g in points]
    days: dict[datetime, list[int]] = {}
    for h, n, g in points:
        day = h.replace(hour=0)
        sums = days.setdefault(day, [0, 0])
        sums[0] += n
        sums[1] += g
    return [TimelinePoint(at=d, impressions=s[0], spent=s[1]) for d, s in sorted(days.items())]


async def metrics(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str,
                  granularity: Granularity = "hour") -> Metrics:
    """Per-campaign metrics for its brand: impressions over time (UTC hours or days), participants,
    spend, the effective rate, and when it will complete at the pace of the last 24 hours."""
    c = await campaign_for(session, caller, campaign_id)
    now = runtime.clock.now()
    counts = await repo.count_participants(session, campaign_id)
    points = await repo.timeline(session, campaign_id, None)
    recent = [p for p in points if p[0] >= now - PACE_WINDOW]
    return Metrics(
        campaign_id=c.id, status=c.status, currency=c.currency, budget=c.budget,
        spent=c.spent, commission=c.commission, paid_to_streamers=c.spent - c.commission,
        remaining=c.budget - c.spent, impressions=c.impressions, impression_target=c.impression_target,
        effective_rate_per_mille=c.spent * 1000 // c.impressions if c.impressions else None,
        participants=Participants(total=sum(counts.values()), active=counts.get("active", 0),
                                  paused=counts.get("paused", 0), left=counts.get("left", 0),
                                  completed=counts.get("completed", 0), removed=counts.get("removed", 0)),
        timeline=_bucket(points, granularity), forecast=_forecast(c, recent, now))


def _csv(header: list[str], rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


async def metrics_csv(session: AsyncSession, runtime: Runtime, caller: Caller, campaign_id: str,
                      of: str) -> str:
    c = await campaign_for(session, caller, campaign_id)
    if of == "participants":
        parts = await repo.participant_rows(session, campaign_id)
        names = await sponsors.streamers_by_id(session, caller.app, [p.streamer_id for p in parts])
        return _csv(["streamer_id", "display_name", "status", "joined_at", "impressions", "gross", "commission",
                     "earned", "currency"],
                    [[p.streamer_id, names[p.streamer_id].display_name if p.streamer_id in names else "", p.status,
                      p.joined_at.isoformat(), p.impressions, p.earned_gross, p.earned_fee, p.earned_net, c.currency]
                     for p in parts])
    return _csv(["hour", "impressions", "spent", "currency"],
                [[h.isoformat(), n, g, c.currency] for h, n, g in await repo.timeline(session, campaign_id, None)])


async def performance(session: AsyncSession, runtime: Runtime, caller: Caller, streamer_id: str) -> Performance:
    """A streamer's impressions and earnings per campaign and per month (in their time zone)."""
    sponsors.authorize_streamer(caller, streamer_id)
    streamer = await sponsors.get_streamer(session, caller.app, streamer_id)
    tz_name = (await players.get_player(session, caller.app, streamer.player_id)).timezone or "UTC"
    parts = await repo.of_streamer(session, caller.app, streamer_id)
    campaigns = await repo.by_ids(session, caller.app, [p.campaign_id for p in parts])
    rows = [CampaignPerformance(campaign_id=p.campaign_id, title=campaigns[p.campaign_id].title,
                                brand_id=p.brand_id, currency=campaigns[p.campaign_id].currency,
                                status=p.status, impressions=p.impressions,
                                earned=p.earned_net, pending=p.earned_net - p.released, joined_at=p.joined_at)
            for p in parts if p.campaign_id in campaigns]
    tz = zone(tz_name)
    months: dict[tuple[str, str], list[int]] = {}
    for campaign_id, hour, n, net in await repo.streamer_hours(session, caller.app, streamer_id):
        currency = campaigns[campaign_id].currency if campaign_id in campaigns else ""
        sums = months.setdefault((hour.astimezone(tz).strftime("%Y-%m"), currency), [0, 0])
        sums[0] += n
        sums[1] += net
    return Performance(streamer_id=streamer_id, timezone=tz_name, campaigns=rows,
                       months=[MonthPerformance(month=m, currency=cur, impressions=s[0], earned=s[1])
                               for (m, cur), s in sorted(months.items())])


async def performance_csv(session: AsyncSession, runtime: Runtime, caller: Caller, streamer_id: str, of: str) -> str:
    report = await performance(session, runtime, caller, streamer_id)
    if of == "months":
        return _csv(["month", "currency", "impressions", "earned"],
                    [[m.month, m.currency, m.impressions, m.earned] for m in report.months])
    return _csv(["campaign_id", "title", "brand_id", "status", "joined_at", "impressions", "earned", "pending",
                 "currency"],
                [[r.campaign_id, r.title, r.brand_id, r.status, r.joined_at.isoformat(), r.impressions, r.earned,
                  r.pending, r.currency] for r in report.campaigns])
