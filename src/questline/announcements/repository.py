"""Every query of announcements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.announcements.models import Announcement
from questline.players.models import Player


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(sa.insert(Announcement).values(**row))


async def get(session: AsyncSession, app_id: str, announcement_id: str) -> Announcement | None:
    return (await session.execute(sa.select(Announcement).where(
        Announcement.app_id == app_id, Announcement.id == announcement_id)
        .execution_options(populate_existing=True))).scalar_one_or_none()


async def page(session: AsyncSession, app_id: str, target_kind: str | None, target_id: str | None,
               status: str | None, before: str | None, limit: int) -> Sequence[Announcement]:
    """Newest first."""
    stmt = sa.select(Announcement).where(Announcement.app_id == app_id)
    if target_kind is not None:
        stmt = stmt.where(Announcement.target_kind == target_kind)
    if target_id is not None:
        stmt = stmt.where(Announcement.target_id == target_id)
    if status is not None:
        stmt = stmt.where(Announcement.status == status)
    if before is not None:
        stmt = stmt.where(Announcement.id < before)
    return (await session.execute(stmt.order_by(Announcement.id.desc()).limit(limit + 1))).scalars().all()


async def due(session: AsyncSession, now: datetime, limit: int) -> Sequence[Announcement]:
    """Scheduled announcements whose time has come, every app's, oldest first."""
    return (await session.execute(sa.select(Announcement).where(
        Announcement.status == "scheduled", Announcement.send_at <= now)
        .order_by(Announcement.send_at, Announcement.id).limit(limit))).scalars().all()


async def move(session: AsyncSession, app_id: str, announcement_id: str, from_: Sequence[str],
               **values: Any) -> bool:
    """Change an announcement only while it is in one of ``from_``: the row decides who wins a race."""
    result = await session.execute(sa.update(Announcement).where(
        Announcement.app_id == app_id, Announcement.id == announcement_id, Announcement.status.in_(list(from_)))
        .values(**values).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def player_ids(session: AsyncSession, app_id: str) -> list[str]:
    """Every player of the app (an app-wide announcement's recipients)."""
    return list((await session.execute(sa.select(Player.player_id).where(Player.app_id == app_id)
                                       .order_by(Player.player_id))).scalars().all())
