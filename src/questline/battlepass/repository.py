"""Every query of the battle pass area."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.battlepass.models import BattlePassClaim, BattlePassXp, BattlePassXpDaily, PlayerPass
from questline.kit.db import insert_ignore, many, upsert

# Derived state (worker) ------------------------------------------------------------------------


async def xp_rows(session: AsyncSession, app_id: str, player_ids: Iterable[str],
                  seasons: Iterable[str]) -> Sequence[BattlePassXp]:
    return (await session.execute(
        sa.select(BattlePassXp).where(BattlePassXp.app_id == app_id, BattlePassXp.player_id.in_(list(player_ids)),
                                      BattlePassXp.season.in_(list(seasons)))
    )).scalars().all()


async def boosts(session: AsyncSession, app_id: str, player_ids: Iterable[str],
                 seasons: Iterable[str]) -> Sequence[tuple[str, str, int]]:
    rows = await session.execute(
        sa.select(PlayerPass.player_id, PlayerPass.season, PlayerPass.boost_xp)
        .where(PlayerPass.app_id == app_id, PlayerPass.player_id.in_(list(player_ids)),
               PlayerPass.season.in_(list(seasons)), PlayerPass.boost_xp > 0)
    )
    return [(p, s, int(x)) for p, s, x in rows.all()]


async def daily_rows(session: AsyncSession, app_id: str, player_ids: Iterable[str], rules: Iterable[str],
                     days: Iterable[str]) -> Sequence[BattlePassXpDaily]:
    return (await session.execute(
        sa.select(BattlePassXpDaily).where(
            BattlePassXpDaily.app_id == app_id, BattlePassXpDaily.player_id.in_(list(player_ids)),
            BattlePassXpDaily.rule.in_(list(rules)), BattlePassXpDaily.day.in_(list(days)))
    )).scalars().all()


async def save_xp(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        stmt = upsert(session, BattlePassXp.__table__)
        stmt = stmt.on_conflict_do_update(index_elements=["app_id", "player_id", "season"],
                                          set_={"xp": stmt.excluded.xp, "updated_at": stmt.excluded.updated_at})
        await session.execute(many(stmt), rows)


async def save_daily(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        stmt = upsert(session, BattlePassXpDaily.__table__)
        stmt = stmt.on_conflict_do_update(index_elements=["app_id", "player_id", "season", "rule", "day"],
                                          set_={"earned": stmt.excluded.earned})
        await session.execute(many(stmt), rows)


async def reset(session: AsyncSession, app_id: str | None) -> None:
    for model in (BattlePassXp, BattlePassXpDaily):
        stmt = sa.delete(model)
        if app_id is not None:
            stmt = stmt.where(model.app_id == app_id)
        await session.execute(stmt)


# A player's pass --------------------------------------------------------------------------------


async def xp_of(session: AsyncSession, app_id: str, player_id: str, season: str) -> int:
    found = (await session.execute(
        sa.select(BattlePassXp.xp).where(BattlePassXp.app_id == app_id, BattlePassXp.player_id == player_id,
                                         BattlePassXp.season == season)
    )).scalar_one_or_none()
    return int(found or 0)


async def pass_of(session: AsyncSession, app_id: str, player_id: str, season: str) -> PlayerPass | None:
    return (await session.execute(
        sa.select(PlayerPass).where(PlayerPass.app_id == app_id, PlayerPass.player_id == player_id,
                                    PlayerPass.season == season)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def ensure_pass(session: AsyncSession, app_id: str, player_id: str, season: str, now: datetime) -> None:
    await session.execute(insert_ignore(session, PlayerPass.__table__).values(
        app_id=app_id, player_id=player_id, season=season, premium=False, boost_tiers=0, boost_xp=0,
        created_at=now, updated_at=now))


async def grant_premium(session: AsyncSession, app_id: str, player_id: str, season: str, *, source: str,
                        reference: str | None, now: datetime) -> bool:
    """Turn premium on; False when the player already had it (the row lock orders racing buyers)."""
    result = await session.execute(
        sa.update(PlayerPass)
        .where(PlayerPass.app_id == app_id, PlayerPass.player_id == player_id, PlayerPass.season == season,
               PlayerPass.premium.is_(False))
        .values(premium=True, premium_source=source, premium_at=now, premium_reference=reference, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_premium_transaction(session: AsyncSession, app_id: str, player_id: str, season: str,
                                  transaction_id: str) -> None:
    await session.execute(
        sa.update(PlayerPass)
        .where(PlayerPass.app_id == app_id, PlayerPass.player_id == player_id, PlayerPass.season == season)
        .values(premium_transaction_id=transaction_id)
    )


async def add_boost(session: AsyncSession, app_id: str, player_id: str, season: str, *, tiers: int, xp: int,
                    now: datetime) -> None:
    await session.execute(
        sa.update(PlayerPass)
        .where(PlayerPass.app_id == app_id, PlayerPass.player_id == player_id, PlayerPass.season == season)
        .values(boost_tiers=PlayerPass.boost_tiers + tiers, boost_xp=PlayerPass.boost_xp + xp, updated_at=now)
    )


async def insert_claim(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Record a claim; False when this tier's reward on this track was claimed already."""
    result = await session.execute(insert_ignore(session, BattlePassClaim.__table__).values(**row)
                                   .returning(BattlePassClaim.__table__.c.id))
    return result.scalar_one_or_none() is not None


async def claims_of(session: AsyncSession, app_id: str, player_id: str, season: str) -> set[tuple[int, str]]:
    rows = await session.execute(
        sa.select(BattlePassClaim.tier, BattlePassClaim.track)
        .where(BattlePassClaim.app_id == app_id, BattlePassClaim.player_id == player_id,
               BattlePassClaim.season == season)
    )
    return {(int(tier), str(track)) for tier, track in rows.all()}


async def titled_claims(session: AsyncSession, app_id: str, player_id: str) -> Sequence[BattlePassClaim]:
    """The player's claims whose reward carried a title, oldest first."""
    rows = await session.execute(
        sa.select(BattlePassClaim)
        .where(BattlePassClaim.app_id == app_id, BattlePassClaim.player_id == player_id)
        .order_by(BattlePassClaim.claimed_at, BattlePassClaim.id)
    )
    return [claim for claim in rows.scalars() if claim.reward.get("title")]
