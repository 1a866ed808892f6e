from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore
from questline.players.models import Player


async def get(session: AsyncSession, app_id: str, player_id: str) -> Player | None:
    return (await session.execute(
        sa.select(Player).where(Player.app_id == app_id, Player.player_id == player_id)
    )).scalar_one_or_none()


async def insert_missing(session: AsyncSession, app_id: str, player_ids: Iterable[str], now: datetime,
                         timezones: dict[str, str] | None = None) -> None:
    rows = [{"app_id": app_id, "player_id": pid, "timezone": (timezones or {}).get(pid, "UTC"),
             "leaderboard_visibility": "public", "display_name_type": "username",
             "show_on_global_leaderboard": True, "preferences": {}, "traits": {}, "created_at": now,
             "updated_at": now}
            for pid in player_ids]
    if rows:
        await session.execute(insert_ignore(session, Player.__table__), rows)


async def keys_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """player_id -> (pk, timezone) for the given players of the app."""
    ids = list(player_ids)
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(Player.player_id, Player.pk, Player.timezone)
        .where(Player.app_id == app_id, Player.player_id.in_(ids))
    )
    return {pid: (pk, tz) for pid, pk, tz in rows}


async def traits_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """player_id -> traits (only players that exist and have some)."""
    ids = list(player_ids)
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(Player.player_id, Player.traits).where(Player.app_id == app_id, Player.player_id.in_(ids)))
    return {pid: traits for pid, traits in rows if traits}


async def update(session: AsyncSession, app_id: str, player_id: str, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(Player).where(Player.app_id == app_id, Player.player_id == player_id).values(**values)
    )


async def page(session: AsyncSession, app_id: str, after: str | None, limit: int) -> Sequence[Player]:
    stmt = sa.select(Player).where(Player.app_id == app_id).order_by(Player.player_id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(Player.player_id > after)
    return (await session.execute(stmt)).scalars().all()


async def stamp_timezone_change(session: AsyncSession, app_id: str, player_id: str, was: datetime | None,
                                now: datetime) -> bool:
    """Record a player's own time zone change if none was recorded since ``was`` (compare-and-set)."""
    stamp = Player.timezone_changed_at
    result = await session.execute(
        sa.update(Player).where(Player.app_id == app_id, Player.player_id == player_id,
                                stamp.is_(None) if was is None else stamp == was)
        .values(timezone_changed_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
