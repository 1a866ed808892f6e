from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.achievements.models import AchievementBackfill, AchievementBadge, PlayerAchievement
from questline.kit.db import Bulk, PerDialect, each_of, upsert
from questline.kit.db import rows_of as plain_rows
from questline.players.models import Player
from questline.rules.models import Definition

_KEY = ["app_id", "player_id", "achievement"]
GRANT = "grant"
DERIVED = ("event", "backfill")  # unlocked_by values the pipeline writes (and a replay rebuilds)


async def rows_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> Sequence[PlayerAchievement]:
    return (await session.execute(
        sa.select(PlayerAchievement).where(PlayerAchievement.app_id == app_id,
                                           PlayerAchievement.player_id.in_(list(player_ids)))
    )).scalars().all()


_A = PlayerAchievement.__table__.c
# Only what the worker keeps of a row (an unlock's time and source, the event id, are not read).
_ROWS = PerDialect(lambda dialect: each_of("players", dialect, lambda player: sa.select(
    _A.player_id, _A.achievement, _A.unlocked_at.is_not(None).label("unlocked"), _A.progress_current,
    _A.progress_target, _A.progress_period).where(_A.app_id == sa.bindparam("app"), player(_A.player_id))))


async def cells_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> Sequence[Any]:
    """The worker's load, as plain rows: (player_id, achievement, unlocked, progress_current,
    progress_target, progress_period)."""
    return await plain_rows(session, _ROWS, {"app": app_id, "players": list(set(player_ids))})


async def save_progress(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await _PROGRESS.write(session, [{**row, "unlocked_at": None, "unlocked_by": None, "event_id": None}
                                        for row in rows])


_PROGRESS = Bulk(PlayerAchievement.__table__, key=_KEY,
                 update=("progress_current", "progress_target", "progress_period", "updated_at"))


async def claim_unlocks(session: AsyncSession, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """``claim_unlock`` for many rows at once (one (player, achievement) each); returns the
    (player_id, achievement) pairs this call unlocked."""
    if not rows:
        return set()
    table = PlayerAchievement.__table__
    stmt = upsert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=_KEY,
        set_={c: stmt.excluded[c] for c in ("progress_current", "progress_target", "progress_period", "unlocked_at",
                                            "unlocked_by", "event_id", "updated_at")},
        where=table.c.unlocked_at.is_(None),
    ).returning(table.c.player_id, table.c.achievement)
    return {(player_id, key) for player_id, key in await session.execute(stmt, rows)}


async def claim_unlock(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Mark the achievement unlocked unless it already is; True only for the writer that unlocked it."""
    table = PlayerAchievement.__table__
    stmt = upsert(session, table).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=_KEY,
        set_={c: stmt.excluded[c] for c in ("progress_current", "progress_target", "progress_period", "unlocked_at",
                                            "unlocked_by", "event_id", "updated_at")},
        where=table.c.unlocked_at.is_(None),
    ).returning(table.c.id)
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def reset(session: AsyncSession, app_id: str | None) -> None:
    """Delete what the pipeline derived (before a replay); granted achievements are kept, since
    grants come from API actions that are not in the event log."""
    by = PlayerAchievement.unlocked_by
    stmt = sa.delete(PlayerAchievement).where(sa.or_(by.is_(None), by.in_(DERIVED)))
    if app_id is not None:
        stmt = stmt.where(PlayerAchievement.app_id == app_id)
    await session.execute(stmt)


async def unlocked_counts(session: AsyncSession, app_id: str) -> dict[str, int]:
    rows = await session.execute(
        sa.select(PlayerAchievement.achievement, sa.func.count())
        .where(PlayerAchievement.app_id == app_id, PlayerAchievement.unlocked_at.is_not(None))
        .group_by(PlayerAchievement.achievement)
    )
    return {key: int(n) for key, n in rows}


async def count_players(session: AsyncSession, app_id: str) -> int:
    """Every player the app has (the denominator of rarity); read-only use of the players table."""
    found = await session.execute(sa.select(sa.func.count()).select_from(Player).where(Player.app_id == app_id))
    return int(found.scalar_one())


async def badges_of(session: AsyncSession, app_id: str) -> dict[str, AchievementBadge]:
    rows = await session.execute(sa.select(AchievementBadge).where(AchievementBadge.app_id == app_id)
                                 .execution_options(populate_existing=True))
    return {b.achievement: b for b in rows.scalars()}


async def next_badge_version(session: AsyncSession, values: dict[str, Any]) -> int:
    """Store a badge's metadata as a new version (1, or the previous + 1); returns the version."""
    table = AchievementBadge.__table__
    stmt = upsert(session, table).values(version=1, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["app_id", "achievement"],
        set_={"version": table.c.version + 1, **{c: stmt.excluded[c] for c in values if c not in
                                                  ("app_id", "achievement")}},
    ).returning(table.c.version)
    return int((await session.execute(stmt)).scalar_one())


async def set_badge_paths(session: AsyncSession, app_id: str, key: str, path: str, thumbnail: str | None) -> None:
    await session.execute(sa.update(AchievementBadge)
                          .where(AchievementBadge.app_id == app_id, AchievementBadge.achievement == key)
                          .values(path=path, thumbnail_path=thumbnail))


async def get_badge(session: AsyncSession, app_id: str, key: str) -> AchievementBadge | None:
    return (await session.execute(
        sa.select(AchievementBadge).where(AchievementBadge.app_id == app_id, AchievementBadge.achievement == key)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def stale_backfills(session: AsyncSession, limit: int) -> Sequence[sa.Row[str, str, int, int | None]]:
    """Achievement definitions not yet backfilled at their current version, oldest change first:
    (app, key, definition version, backfilled version or None). Reads the definitions table."""
    b = AchievementBackfill
    return (await session.execute(
        sa.select(Definition.app_id, Definition.key, Definition.version, b.version)
        .outerjoin(b, sa.and_(b.app_id == Definition.app_id, b.achievement == Definition.key))
        .where(Definition.kind == "achievement",
               sa.or_(b.version.is_(None), b.version != Definition.version, b.done_at.is_(None)))
        .order_by(Definition.updated_at, Definition.id).limit(limit)
    )).all()


async def get_backfill(session: AsyncSession, app_id: str, key: str) -> AchievementBackfill | None:
    return (await session.execute(
        sa.select(AchievementBackfill)
        .where(AchievementBackfill.app_id == app_id, AchievementBackfill.achievement == key)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def save_backfill(session: AsyncSession, values: dict[str, Any]) -> None:
    stmt = upsert(session, AchievementBackfill.__table__).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=["app_id", "achievement"],
                                      set_={c: stmt.excluded[c] for c in values if c not in ("app_id", "achievement")})
    await session.execute(stmt)
