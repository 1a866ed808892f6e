from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import Bulk, PerDialect, among, each_of, rows_of
from questline.rules.models import Definition, DefinitionVersion, PlayerStat


async def get(session: AsyncSession, app_id: str, kind: str, key: str) -> Definition | None:
    return (await session.execute(
        sa.select(Definition).where(Definition.app_id == app_id, Definition.kind == kind, Definition.key == key)
    )).scalar_one_or_none()


async def all_of_app(session: AsyncSession, app_id: str) -> Sequence[Definition]:
    return (await session.execute(
        sa.select(Definition).where(Definition.app_id == app_id).order_by(Definition.kind, Definition.key)
    )).scalars().all()


async def page_of_kind(session: AsyncSession, app_id: str, kind: str, after: str | None,
                       limit: int) -> Sequence[Definition]:
    stmt = (sa.select(Definition).where(Definition.app_id == app_id, Definition.kind == kind)
            .order_by(Definition.key).limit(limit + 1))
    if after is not None:
        stmt = stmt.where(Definition.key > after)
    return (await session.execute(stmt)).scalars().all()


async def add(session: AsyncSession, row: Definition) -> None:
    session.add(row)
    await session.flush()


async def delete(session: AsyncSession, row: Definition) -> None:
    await session.delete(row)
    await session.flush()


async def add_version(session: AsyncSession, row: Definition) -> None:
    """Keep ``row``'s current version in its history."""
    session.add(DefinitionVersion(app_id=row.app_id, kind=row.kind, key=row.key, version=row.version,
                                  body=row.body, created_at=row.updated_at))
    await session.flush()


async def versions_page(session: AsyncSession, app_id: str, kind: str, key: str, before: int | None,
                        limit: int) -> Sequence[DefinitionVersion]:
    """A definition's versions, newest first, older than ``before`` when given."""
    V = DefinitionVersion
    stmt = (sa.select(V).where(V.app_id == app_id, V.kind == kind, V.key == key)
            .order_by(V.version.desc()).limit(limit + 1))
    if before is not None:
        stmt = stmt.where(V.version < before)
    return (await session.execute(stmt)).scalars().all()


async def version_of(session: AsyncSession, app_id: str, kind: str, key: str, version: int) -> DefinitionVersion | None:
    V = DefinitionVersion
    return (await session.execute(
        sa.select(V).where(V.app_id == app_id, V.kind == kind, V.key == key, V.version == version)
    )).scalar_one_or_none()


async def delete_versions(session: AsyncSession, app_id: str, kind: str, key: str) -> None:
    V = DefinitionVersion
    await session.execute(sa.delete(V).where(V.app_id == app_id, V.kind == kind, V.key == key))


async def stat_totals(session: AsyncSession, app_id: str, stat: str, key_pattern: str,
                      limit: int) -> list[tuple[str, int, int]]:
    """(period_key, total, players) of the latest ``limit`` periods whose key matches ``key_pattern``
    (a LIKE pattern), oldest first."""
    S = PlayerStat
    rows = (await session.execute(
        sa.select(S.period_key, sa.func.sum(S.value), sa.func.count())
        .where(S.app_id == app_id, S.stat == stat, S.period_key.like(key_pattern))
        .group_by(S.period_key).order_by(S.period_key.desc()).limit(limit)
    )).all()
    return [(str(key), int(total or 0), int(players)) for key, total, players in reversed(rows)]


_STATS = PerDialect(lambda dialect: each_of("players", dialect, lambda player: sa.select(
    PlayerStat.player_id, PlayerStat.stat, PlayerStat.period_key, PlayerStat.value, PlayerStat.samples,
    PlayerStat.last_at, PlayerStat.last_seq,
).where(PlayerStat.app_id == sa.bindparam("app"), player(PlayerStat.player_id),
        among(PlayerStat.stat, "stats", dialect), among(PlayerStat.period_key, "periods", dialect))))


async def stats_of(session: AsyncSession, app_id: str, players: Iterable[str], stats: Iterable[str],
                   periods: Iterable[str]) -> Sequence[Any]:
    """Stat cells (player_id, stat, period_key, value, samples, last_at, last_seq) of these players."""
    return await rows_of(session, _STATS, {"app": app_id, "players": list(set(players)), "stats": list(stats),
                                           "periods": list(periods)})


async def upsert_stats(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    """Write whole stat cells: the single-writer worker computed them from loaded values."""
    await _STAT_CELLS.write(session, rows)


_STAT_CELLS = Bulk(PlayerStat.__table__, key=("app_id", "player_id", "stat", "period_key"),
                   update=("value", "samples", "last_at", "last_seq", "updated_at"))


async def delete_stats(session: AsyncSession, app_id: str | None) -> None:

    stmt = sa.delete(PlayerStat)
    if app_id is not None:
        stmt = stmt.where(PlayerStat.app_id == app_id)
    await session.execute(stmt)


async def stats_of_player(session: AsyncSession, app_id: str, player_id: str,
                          period_keys: list[str]) -> Sequence[PlayerStat]:

    return (await session.execute(
        sa.select(PlayerStat).where(PlayerStat.app_id == app_id, PlayerStat.player_id == player_id,
                                    PlayerStat.period_key.in_(period_keys))
        .order_by(PlayerStat.stat, PlayerStat.period_key)
    )).scalars().all()
