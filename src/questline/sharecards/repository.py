"""Queries of share cards, and the read-only lookups of what a player achieved in other areas."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements.models import PlayerAchievement
from questline.competitions.models import Competition, Result
from questline.kit.db import insert_ignore, upsert
from questline.progression.models import PlayerTrack
from questline.sharecards.models import ShareCard, ShareSettings
from questline.streaks.models import PlayerStreak

# The public routes' one query: the card, if its player's cards are public. Built once.
_SERVED = (sa.select(ShareCard)
           .join(ShareSettings, sa.and_(ShareSettings.app_id == ShareCard.app_id,
                                        ShareSettings.player_id == ShareCard.player_id))
           .where(ShareCard.id == sa.bindparam("card_id"), ShareSettings.public == sa.true()))


async def served(session: AsyncSession, card_id: str) -> ShareCard | None:
    """The card behind a public URL, or None when unknown or its player's cards are private."""
    return (await session.execute(_SERVED, {"card_id": card_id})).scalar_one_or_none()


async def get(session: AsyncSession, app_id: str, player_id: str, card_id: str) -> ShareCard | None:
    stmt = sa.select(ShareCard).where(ShareCard.app_id == app_id, ShareCard.player_id == player_id,
                                      ShareCard.id == card_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def find(session: AsyncSession, app_id: str, player_id: str, kind: str, subject: str) -> ShareCard | None:
    stmt = sa.select(ShareCard).where(ShareCard.app_id == app_id, ShareCard.player_id == player_id,
                                      ShareCard.kind == kind, ShareCard.subject == subject)
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert a card unless one for the same subject exists (a concurrent request made it); True if inserted."""
    stmt = insert_ignore(session, ShareCard.__table__).values(**values).returning(ShareCard.__table__.c.id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def redraw(session: AsyncSession, card_id: str, values: dict[str, Any]) -> None:
    await session.execute(sa.update(ShareCard).where(ShareCard.id == card_id).values(**values)
                          .execution_options(synchronize_session=False))


async def of_player(session: AsyncSession, app_id: str, player_id: str) -> Sequence[ShareCard]:
    stmt = (sa.select(ShareCard).where(ShareCard.app_id == app_id, ShareCard.player_id == player_id)
            .order_by(ShareCard.created_at, ShareCard.id))
    return (await session.execute(stmt)).scalars().all()


async def delete(session: AsyncSession, app_id: str, player_id: str, card_id: str) -> bool:
    stmt = sa.delete(ShareCard).where(ShareCard.app_id == app_id, ShareCard.player_id == player_id,
                                      ShareCard.id == card_id).returning(ShareCard.id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def is_public(session: AsyncSession, app_id: str, player_id: str) -> bool | None:
    stmt = sa.select(ShareSettings.public).where(ShareSettings.app_id == app_id, ShareSettings.player_id == player_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_public(session: AsyncSession, app_id: str, player_id: str, public: bool, now: datetime) -> None:
    stmt = upsert(session, ShareSettings.__table__).values(app_id=app_id, player_id=player_id, public=public,
                                                           updated_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["app_id", "player_id"],
                                      set_={"public": stmt.excluded.public, "updated_at": stmt.excluded.updated_at})
    await session.execute(stmt)


# What the player achieved (other areas' tables, read only) -------------------------------------


async def unlocked_at(session: AsyncSession, app_id: str, player_id: str, achievement: str) -> datetime | None:
    stmt = sa.select(PlayerAchievement.unlocked_at).where(
        PlayerAchievement.app_id == app_id, PlayerAchievement.player_id == player_id,
        PlayerAchievement.achievement == achievement)
    return (await session.execute(stmt)).scalar_one_or_none()


async def level_of(session: AsyncSession, app_id: str, player_id: str, track: str) -> int | None:
    stmt = sa.select(PlayerTrack.level).where(PlayerTrack.app_id == app_id, PlayerTrack.player_id == player_id,
                                              PlayerTrack.track == track)
    return (await session.execute(stmt)).scalar_one_or_none()


async def longest_streak(session: AsyncSession, app_id: str, player_id: str, streak: str) -> int | None:
    stmt = sa.select(PlayerStreak.longest).where(PlayerStreak.app_id == app_id, PlayerStreak.player_id == player_id,
                                                 PlayerStreak.streak == streak)
    return (await session.execute(stmt)).scalar_one_or_none()


async def result_of(session: AsyncSession, app_id: str, player_id: str,
                    competition_id: str) -> tuple[Competition, Result] | None:
    """The competition and the player's row of its final standings (None if they are not in them)."""
    stmt = (sa.select(Competition, Result)
            .join(Result, Result.competition_id == Competition.id)
            .where(Competition.app_id == app_id, Competition.id == competition_id,
                   Result.app_id == app_id, Result.player_id == player_id))
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1])


async def ranked_count(session: AsyncSession, competition_id: str) -> int:
    stmt = sa.select(sa.func.count()).select_from(Result).where(Result.competition_id == competition_id)
    return int((await session.execute(stmt)).scalar_one())
