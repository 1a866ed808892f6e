"""Streak reads, freeze purchases and rest days (the worker keeps the streaks themselves)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.errors import Conflict, NotFound, Unprocessable
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.players import service as players
from questline.rules.schemas import DefinitionBody
from questline.rules.service import RuleSet, ruleset_cache
from questline.streaks import repository as repo
from questline.streaks.models import PlayerStreak
from questline.streaks.periods import index_of, iso_week_of, key_at, local_today, period_of, starts_at
from questline.streaks.processor import StreakCell
from questline.streaks.schemas import (
    REST_DAY_HORIZON_DAYS,
    FreezePurchase,
    PlayerStreaks,
    Price,
    RestDaysIn,
    StreakDef,
    StreakOut,
)

# How far ahead ``breaks_at`` looks through freezes and rest days.
_LOOKAHEAD = 800


async def check_definition(session: AsyncSession, app_id: str, body: DefinitionBody) -> list[str]:
    """Database checks of a streak definition: the currencies it pays and charges exist."""
    assert isinstance(body, StreakDef)
    return [f"unknown currency {code!r}; create it with PUT /v1/currencies/{code}"
            for code in sorted(body.currencies()) if not await ledger.currency_exists(session, app_id, code)]


def _spec(ruleset: RuleSet, key: str) -> StreakDef:
    spec = ruleset.of("streak").get(key)
    if not isinstance(spec, StreakDef):
        raise NotFound(f"streak {key!r} not found", code="streak_not_found")
    return spec


def _cell(row: PlayerStreak | None) -> StreakCell:
    if row is None:
        return StreakCell()
    return StreakCell(row.current, row.longest, row.started_period, row.last_period, row.covered_period,
                      row.freezes_bought, row.freezes_granted, row.freezes_used, row.check_at)


def breaks_at(cell: StreakCell, spec: StreakDef, rest: set[str], tz: ZoneInfo) -> datetime | None:
    """When the streak breaks if no activity comes: after rest days and freezes have carried it."""
    if cell.current == 0 or cell.covered is None:
        return None
    index = index_of(cell.covered, spec.cadence) + 1
    freezes = cell.available
    for _ in range(_LOOKAHEAD):
        if spec.cadence == "daily" and key_at(index, "daily") in rest:
            index += 1
        elif freezes > 0:
            freezes -= 1
            index += 1
        else:
            break
    return starts_at(index + 1, spec.cadence, tz)


def _out(key: str, spec: StreakDef, cell: StreakCell, rest: set[str], tz: ZoneInfo, now: datetime) -> StreakOut:
    today = local_today(now, tz)
    this_period = period_of({"day": today.isoformat(), "week": iso_week_of(today)}, spec.cadence)
    week_start = (today - timedelta(days=today.weekday())).isoformat()
    marks = [m.at for m in spec.milestones]
    price = Price(currency=spec.freezes.currency, amount=spec.freezes.cost) if spec.freezes.cost > 0 else None
    return StreakOut(
        key=key, name=spec.name or key, cadence=spec.cadence, current=cell.current, longest=cell.longest,
        started_period=cell.started if cell.current else None, last_active_period=cell.last,
        active_this_period=cell.current > 0 and cell.last == this_period,
        breaks_at=breaks_at(cell, spec, rest, tz), freezes_available=cell.available,
        max_freezes=spec.freezes.max_held, freeze_price=price, rest_days_per_week=spec.rest_days_per_week,
        rest_days=[date.fromisoformat(d) for d in sorted(rest) if d >= week_start],
        milestones=marks, next_milestone=next((m for m in marks if m > cell.current), None),
    )


async def player_streaks(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str) -> PlayerStreaks:
    """Every streak of the app with this player's standing in it."""
    player = await players.get_player(session, app_id, player_id)
    tz = zone(player.timezone)
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    rows = {row.streak: row for row in await repo.states_of(session, app_id, [player_id])}
    rest: dict[str, set[str]] = {}
    for day in await repo.rest_days_of(session, app_id, [player_id]):
        rest.setdefault(day.streak, set()).add(day.day)
    now = runtime.clock.now()
    out = []
    for key, spec in sorted(ruleset.of("streak").items()):
        assert isinstance(spec, StreakDef)
        out.append(_out(key, spec, _cell(rows.get(key)), rest.get(key, set()), tz, now))
    return PlayerStreaks(player_id=player_id, timezone=player.timezone, streaks=out)


async def buy_freeze(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str, key: str,
                     request_key: str, actor: str) -> FreezePurchase:
    """Sell one freeze for the definition's price: ``409 freezes_full`` at the cap, the ledger's
    ``409 insufficient_funds`` when the player cannot pay (and then nothing changes)."""
    await players.get_player(session, app_id, player_id)
    spec = _spec(await ruleset_cache(runtime).get(session, app_id), key)
    settings = spec.freezes
    if settings.cost == 0:
        raise Conflict(f"freezes of streak {key!r} are not for sale", code="freezes_not_for_sale")
    held = await repo.add_bought_freeze(session, app_id, player_id, key, settings.max_held, runtime.clock.now())
    if held is None:
        raise Conflict(f"the player already holds the most freezes streak {key!r} allows ({settings.max_held})",
                       code="freezes_full", extra={"max_freezes": settings.max_held})
    txn = await ledger.debit_player(
        session, runtime.clock, app_id=app_id, player_id=player_id, currency=settings.currency,
        amount=settings.cost, idempotency_key=f"streak-freeze:{key}:{player_id}:{request_key}",
        source="streak_freeze", reference={"streak": key}, description=f"{key} streak freeze", actor=actor,
    )
    bought, granted, used = held
    return FreezePurchase(player_id=player_id, streak=key, freezes_available=bought + granted - used,
                          max_freezes=settings.max_held, price=Price(currency=settings.currency, amount=settings.cost),
                          transaction_id=txn.id, balance=txn.balance_of("player", player_id, settings.currency))


async def set_rest_days(session: AsyncSession, runtime: Runtime, app_id: str, player_id: str, key: str,
                        body: RestDaysIn) -> StreakOut:
    """Replace the player's future rest days: local dates after today, at most N per ISO week."""
    player = await players.get_player(session, app_id, player_id)
    spec = _spec(await ruleset_cache(runtime).get(session, app_id), key)
    if spec.rest_days_per_week == 0:
        raise Conflict(f"streak {key!r} allows no rest days", code="rest_days_not_allowed")
    tz = zone(player.timezone)
    now = runtime.clock.now()
    today = local_today(now, tz)
    days = sorted(set(body.days))
    for day in days:
        if day <= today:
            raise Unprocessable(f"rest day {day.isoformat()} is not in the future (today is {today.isoformat()} "
                                f"in {player.timezone})", code="rest_day_not_in_future", extra={"day": day.isoformat()})
        if day > today + timedelta(days=REST_DAY_HORIZON_DAYS):
            raise Unprocessable(f"rest day {day.isoformat()} is more than {REST_DAY_HORIZON_DAYS} days ahead",
                                code="rest_day_too_far", extra={"day": day.isoformat()})
    existing = {d.day for d in await repo.rest_days_of(session, app_id, [player_id]) if d.streak == key}
    kept = {d for d in existing if d <= today.isoformat()}  # today and before are history
    per_week: dict[str, int] = {}
    for day_key in kept | {d.isoformat() for d in days}:
        week = iso_week_of(date.fromisoformat(day_key))
        per_week[week] = per_week.get(week, 0) + 1
    for week, count in sorted(per_week.items()):
        if count > spec.rest_days_per_week:
            raise Unprocessable(f"{count} rest days in {week}; streak {key!r} allows {spec.rest_days_per_week} "
                                "per ISO week", code="too_many_rest_days", extra={"week": week})
    await repo.replace_rest_days(session, app_id, player_id, key, today.isoformat(), [d.isoformat() for d in days], now)
    rows = await repo.states_of(session, app_id, [player_id])
    row = next((r for r in rows if r.streak == key), None)
    return _out(key, spec, _cell(row), kept | {d.isoformat() for d in days}, tz, now)


async def at_risk(session: AsyncSession, runtime: Runtime, start: datetime, end: datetime,
                  limit: int = 2000) -> list[dict[str, object]]:
    """Streaks that break at a moment in ``(start, end]`` unless the player is active before it (their
    current period ends then, in their time zone, without activity yet): one entry per player and streak,
    with the period at stake (``period``) and when it ends, in UTC and in the player's local time."""
    rows = await repo.ending_between(session, start, end, limit)
    out: list[dict[str, object]] = []
    zones: dict[tuple[str, str], str] = {}
    for app_id in {r.app_id for r in rows}:
        found = await players.timezones_of(session, app_id, [r.player_id for r in rows if r.app_id == app_id])
        zones.update({(app_id, p): tz for p, tz in found.items()})
    for row in rows:
        ruleset = await ruleset_cache(runtime).get(session, row.app_id)
        spec = ruleset.of("streak").get(row.streak)
        if not isinstance(spec, StreakDef) or row.check_at is None or row.covered_period is None:
            continue
        tz = zone(zones.get((row.app_id, row.player_id), "UTC"))
        period = key_at(index_of(row.covered_period, spec.cadence) + 1, spec.cadence)
        if spec.cadence == "daily" and spec.rest_days_per_week and any(
                d.day == period for d in await repo.rest_days_of(session, row.app_id, [row.player_id], period)
                if d.streak == row.streak):
            continue  # a rest day: missing it costs nothing
        cell = _cell(row)
        out.append({"app_id": row.app_id, "player_id": row.player_id, "streak": row.streak,
                    "name": spec.name or row.streak, "current": row.current, "period": period,
                    "freezes_available": cell.available,
                    "ends_at": row.check_at.isoformat(),
                    "ends_local": row.check_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")})
    return out

