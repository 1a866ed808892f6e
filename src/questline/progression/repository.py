from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import Bulk, player_rows, rows_of
from questline.progression.models import PlayerTrack, XpActivity, XpDaily

_TRACKS = player_rows(PlayerTrack)
_DAILY = player_rows(XpDaily, "rule", "day")


async def tracks_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> Sequence[Any]:
    """The players' tracks as plain rows (a ``player_tracks`` row's attributes; the worker's load)."""
    return await rows_of(session, _TRACKS, {"app": app_id, "players": list(set(player_ids))})


async def daily_of(session: AsyncSession, app_id: str, player_ids: Iterable[str], rules: Iterable[str],
                   days: Iterable[str]) -> Sequence[Any]:
    """The players' XP per capped rule and local day, as plain ``xp_daily`` rows."""
    return await rows_of(session, _DAILY, {"app": app_id, "players": list(set(player_ids)), "rule": list(rules),
                                           "day": list(days)})


async def save_tracks(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await _TRACKS_WRITE.write(session, rows)


_TRACKS_WRITE = Bulk(PlayerTrack.__table__, key=("app_id", "player_id", "track"),
                     update=("total_xp", "level", "xp_today", "today", "updated_at"))


async def save_daily(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await _DAILY_WRITE.write(session, rows)


# A day's span is kept as first counted (a later time zone does not move it): only ``earned`` changes.
_DAILY_WRITE = Bulk(XpDaily.__table__, key=("app_id", "player_id", "rule", "day"), update=("earned",))


async def add_activities(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await _ACTIVITIES.write(session, rows)


_ACTIVITIES = Bulk(XpActivity.__table__)


async def recent_activities(session: AsyncSession, app_id: str, player_id: str, limit: int) -> Sequence[XpActivity]:
    return (await session.execute(
        sa.select(XpActivity).where(XpActivity.app_id == app_id, XpActivity.player_id == player_id)
        .order_by(XpActivity.id.desc()).limit(limit)
    )).scalars().all()


async def trim_activities(session: AsyncSession, keep: int) -> int:
    """Delete all but the newest ``keep`` activities of every player."""
    ranked = sa.select(
        XpActivity.id,
        sa.func.row_number().over(
            partition_by=(XpActivity.app_id, XpActivity.player_id), order_by=XpActivity.id.desc()
        ).label("rank"),
    ).subquery()
    doomed = sa.select(ranked.c.id).where(ranked.c.rank > keep)
    result = await session.execute(sa.delete(XpActivity).where(XpActivity.id.in_(doomed)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def reset(session: AsyncSession, app_id: str | None) -> None:
    for model in (PlayerTrack, XpDaily, XpActivity):
        stmt = sa.delete(model)
        if app_id is not None:
            stmt = stmt.where(model.app_id == app_id)
        await session.execute(stmt)


async def track_of_player(session: AsyncSession, app_id: str, player_id: str) -> Sequence[PlayerTrack]:
    return (await session.execute(
        sa.select(PlayerTrack).where(PlayerTrack.app_id == app_id, PlayerTrack.player_id == player_id)
    )).scalars().all()


async def level_xp_counts(session: AsyncSession, app_id: str, track: str,
                          buckets: int) -> list[tuple[int, int, int, int]]:
    """Players per (level, XP bucket) on a track, and the bucket width, in one grouped query.

    The width is ``max(total_xp) // buckets + 1`` (a scalar subquery), so bucket indexes run 0..buckets-1;
    integer division behaves the same on SQLite and PostgreSQL for non-negative integers.
    """
    scope = (PlayerTrack.app_id == app_id, PlayerTrack.track == track)
    width = (sa.select(sa.func.max(PlayerTrack.total_xp)).where(*scope).scalar_subquery() // buckets + 1)
    bucket = (PlayerTrack.total_xp // width).label("bucket")
    rows = await session.execute(
        sa.select(PlayerTrack.level, bucket, sa.func.count().label("players"), width.label("width"))
        .where(*scope).group_by(PlayerTrack.level, bucket, width)
    )
    return [(int(level), int(b), int(n), int(w)) for level, b, n, w in rows.all()]
