from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import Bulk, insert_ignore, player_rows, upsert
from questline.kit.db import rows_of as plain_rows
from questline.streaks.models import PlayerStreak, StreakRestDay

# What the worker writes back; ``freezes_bought`` belongs to purchases and is never overwritten.
_WORKER_COLUMNS = ("current", "longest", "started_period", "last_period", "covered_period", "freezes_granted",
                   "freezes_used", "check_at", "covered_until", "updated_at")


async def states_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> Sequence[PlayerStreak]:
    return (await session.execute(
        sa.select(PlayerStreak).where(PlayerStreak.app_id == app_id, PlayerStreak.player_id.in_(list(player_ids)))
    )).scalars().all()


_CELLS = player_rows(PlayerStreak)


async def cells_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> Sequence[Any]:
    """The worker's load: ``states_of`` as plain rows (the same attributes, no ORM objects)."""
    return await plain_rows(session, _CELLS, {"app": app_id, "players": list(set(player_ids))})


async def rest_days_of(session: AsyncSession, app_id: str, player_ids: Iterable[str],
                       since: str | None = None) -> Sequence[StreakRestDay]:
    stmt = sa.select(StreakRestDay).where(StreakRestDay.app_id == app_id,
                                          StreakRestDay.player_id.in_(list(player_ids)))
    if since is not None:
        stmt = stmt.where(StreakRestDay.day >= since)
    return (await session.execute(stmt.order_by(StreakRestDay.day))).scalars().all()


async def save_states(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await _STATES.write(session, [{**row, "freezes_bought": 0} for row in rows])


_STATES = Bulk(PlayerStreak.__table__, key=("app_id", "player_id", "streak"), update=_WORKER_COLUMNS)


async def reset(session: AsyncSession, app_id: str | None) -> None:
    """Forget derived state for a replay; purchased freezes and scheduled rest days are kept."""
    stmt = sa.update(PlayerStreak).values(current=0, longest=0, started_period=None, last_period=None,
                                          covered_period=None, freezes_granted=0, freezes_used=0, check_at=None,
                                          covered_until=None)
    if app_id is not None:
        stmt = stmt.where(PlayerStreak.app_id == app_id)
    await session.execute(stmt)


async def due_checks(session: AsyncSession, now: datetime,
                     limit: int) -> Sequence[sa.Row[str, str, str, datetime | None]]:
    """Live streaks whose next period ended without activity: (app, player, streak, check_at)."""
    return (await session.execute(
        sa.select(PlayerStreak.app_id, PlayerStreak.player_id, PlayerStreak.streak, PlayerStreak.check_at)
        .where(PlayerStreak.check_at <= now, PlayerStreak.current > 0)
        .order_by(PlayerStreak.check_at).limit(limit)
    )).all()


async def ending_between(session: AsyncSession, start: datetime, end: datetime,
                         limit: int) -> Sequence[PlayerStreak]:
    """Live streaks whose current period (not yet kept) ends in ``(start, end]``: at risk of breaking."""
    return (await session.execute(
        sa.select(PlayerStreak).where(PlayerStreak.check_at > start, PlayerStreak.check_at <= end,
                                      PlayerStreak.current > 0)
        .order_by(PlayerStreak.check_at).limit(limit)
    )).scalars().all()


async def add_bought_freeze(session: AsyncSession, app_id: str, player_id: str, streak: str, max_held: int,
                            now: datetime) -> tuple[int, int, int] | None:
    """One more purchased freeze unless the player already holds ``max_held``; (bought, granted, used)."""
    table = PlayerStreak.__table__
    stmt = upsert(session, table).values(
        app_id=app_id, player_id=player_id, streak=streak, current=0, longest=0, freezes_bought=1,
        freezes_granted=0, freezes_used=0, updated_at=now,
    )
    held = table.c.freezes_bought + table.c.freezes_granted - table.c.freezes_used
    stmt = stmt.on_conflict_do_update(
        index_elements=["app_id", "player_id", "streak"],
        set_={"freezes_bought": table.c.freezes_bought + 1, "updated_at": now},
        where=held < max_held,
    ).returning(table.c.freezes_bought, table.c.freezes_granted, table.c.freezes_used)
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]))


async def replace_rest_days(session: AsyncSession, app_id: str, player_id: str, streak: str, after: str,
                            days: list[str], now: datetime) -> None:
    """Replace the scheduled rest days later than ``after`` (earlier ones are history)."""
    await session.execute(sa.delete(StreakRestDay).where(
        StreakRestDay.app_id == app_id, StreakRestDay.player_id == player_id, StreakRestDay.streak == streak,
        StreakRestDay.day > after,
    ))
    if days:
        await session.execute(insert_ignore(session, StreakRestDay.__table__), [
            {"app_id": app_id, "player_id": player_id, "streak": streak, "day": day, "created_at": now}
            for day in days
        ])
