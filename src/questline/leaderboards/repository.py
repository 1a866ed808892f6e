"""Every query of the leaderboards area."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore, upsert
from questline.leaderboards.models import Friendship, LeaderboardArchive, LeaderboardEntry, LeaderboardPeriod
from questline.players.models import Player
from questline.rules.models import Definition

E = LeaderboardEntry


# Entries ---------------------------------------------------------------------------------------


async def entries_of_players(session: AsyncSession, app_id: str, boards: Iterable[str], periods: Iterable[str],
                             players: Iterable[str]) -> Sequence[Any]:
    """Rows (board, period_key, player_id, partition, score, reached_at, seq, version) of these players."""
    boards, periods, players = list(set(boards)), list(set(periods)), list(set(players))
    if not boards or not periods or not players:
        return []
    return (await session.execute(
        sa.select(E.board, E.period_key, E.player_id, E.partition, E.score, E.reached_at, E.seq, E.version)
        .where(E.app_id == app_id, E.board.in_(boards), E.period_key.in_(periods), E.player_id.in_(players))
    )).all()


async def save_entries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write entries as the score keeper computed them, ``version`` included: the rank index keeps
    only writes newer than what it holds, so a version that did not rise would freeze the index."""
    if not rows:
        return
    stmt = upsert(session, E.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["app_id", "board", "period_key", "player_id"],
        set_={"partition": stmt.excluded.partition, "score": stmt.excluded.score,
              "reached_at": stmt.excluded.reached_at, "seq": stmt.excluded.seq,
              "version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
    )
    await session.execute(stmt, rows)


async def entries_for_index(session: AsyncSession, app_id: str, board: str, period_key: str,
                            since_seq: int | None = None) -> Sequence[Any]:
    stmt = sa.select(E.player_id, E.partition, E.score, E.reached_at, E.seq, E.version).where(
        E.app_id == app_id, E.board == board, E.period_key == period_key)
    if since_seq is not None:
        stmt = stmt.where(E.seq > since_seq)
    return (await session.execute(stmt)).all()


async def standings(session: AsyncSession, app_id: str, board: str, period_key: str, descending: bool,
                    min_score: int | None, limit: int | None = None) -> Sequence[LeaderboardEntry]:
    """Final order of a period (a scheduled job's query; reads use the index)."""
    score = E.score.desc() if descending else E.score.asc()
    stmt = sa.select(E).where(E.app_id == app_id, E.board == board, E.period_key == period_key)
    if min_score is not None:
        stmt = stmt.where(E.score >= min_score)
    stmt = stmt.order_by(E.partition, score, E.reached_at, E.seq, E.player_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def open_periods(session: AsyncSession, app_id: str, periods: Iterable[tuple[str, str]], now: datetime) -> None:
    rows = [{"app_id": app_id, "board": b, "period_key": k, "opened_at": now, "archived_at": None, "entries": None}
            for b, k in sorted(set(periods))]
    if rows:
        await session.execute(insert_ignore(session, LeaderboardPeriod.__table__), rows)


async def unarchived_periods(session: AsyncSession, limit: int = 1000) -> Sequence[LeaderboardPeriod]:
    P = LeaderboardPeriod
    return (await session.execute(
        sa.select(P).where(P.archived_at.is_(None)).order_by(P.app_id, P.board, P.period_key).limit(limit)
    )).scalars().all()


async def delete_entries(session: AsyncSession, app_id: str | None, *, boards_like: str | None = None,
                         boards_not_like: str | None = None, boards: Sequence[str] | None = None,
                         player_id: str | None = None) -> None:
    stmt = sa.delete(E)
    if player_id is not None:
        stmt = stmt.where(E.player_id == player_id)
    if app_id is not None:
        stmt = stmt.where(E.app_id == app_id)
    if boards_like is not None:
        stmt = stmt.where(E.board.like(boards_like))
    if boards_not_like is not None:
        stmt = stmt.where(E.board.not_like(boards_not_like))
    if boards is not None:
        stmt = stmt.where(E.board.in_(list(boards)))
    await session.execute(stmt)


# Archives --------------------------------------------------------------------------------------


async def claim_period(session: AsyncSession, app_id: str, board: str, period_key: str, entries: int,
                       now: datetime) -> bool:
    """Mark a period archived; False when another process already did."""
    P = LeaderboardPeriod
    result = await session.execute(
        sa.update(P).where(P.app_id == app_id, P.board == board, P.period_key == period_key, P.archived_at.is_(None))
        .values(archived_at=now, entries=entries)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def add_archive(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(LeaderboardArchive), rows)


async def archived_period(session: AsyncSession, app_id: str, board: str, period_key: str) -> LeaderboardPeriod | None:
    return await session.get(LeaderboardPeriod, (app_id, board, period_key))


async def archive_page(session: AsyncSession, app_id: str, board: str, period_key: str, partition: str,
                       after_rank: int, limit: int) -> Sequence[LeaderboardArchive]:
    A = LeaderboardArchive
    return (await session.execute(
        sa.select(A).where(A.app_id == app_id, A.board == board, A.period_key == period_key,
                           A.partition == partition, A.rank > after_rank)
        .order_by(A.rank).limit(limit)
    )).scalars().all()


# Players and friends ---------------------------------------------------------------------------


async def traits_of(session: AsyncSession, app_id: str, player_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Players' traits (set by the server key or an admin, never by the player): what partitions read."""
    ids = list(set(player_ids))
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(Player.player_id, Player.traits).where(Player.app_id == app_id, Player.player_id.in_(ids)))
    return {pid: traits or {} for pid, traits in rows}


async def add_friendship(session: AsyncSession, app_id: str, a: str, b: str, now: datetime) -> None:
    await session.execute(insert_ignore(session, Friendship.__table__), [
        {"app_id": app_id, "player_id": a, "friend_id": b, "created_at": now},
        {"app_id": app_id, "player_id": b, "friend_id": a, "created_at": now},
    ])


async def remove_friendship(session: AsyncSession, app_id: str, a: str, b: str) -> None:
    F = Friendship
    await session.execute(sa.delete(F).where(
        F.app_id == app_id,
        sa.or_(sa.and_(F.player_id == a, F.friend_id == b), sa.and_(F.player_id == b, F.friend_id == a)),
    ))


async def friends_of(session: AsyncSession, app_id: str, player_id: str) -> list[str]:
    F = Friendship
    rows = await session.execute(
        sa.select(F.friend_id).where(F.app_id == app_id, F.player_id == player_id).order_by(F.friend_id))
    return [r[0] for r in rows]


async def count_friends(session: AsyncSession, app_id: str, player_id: str) -> int:
    F = Friendship
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(F).where(F.app_id == app_id, F.player_id == player_id)
    )).scalar_one())


# Definitions across apps (the rollover job) ----------------------------------------------------


async def board_definitions(session: AsyncSession, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """(app_id, key) -> stored body of those leaderboard definitions that exist."""
    wanted = set(pairs)
    if not wanted:
        return {}
    D = Definition
    rows = await session.execute(
        sa.select(D.app_id, D.key, D.body).where(D.kind == "leaderboard", D.app_id.in_({a for a, _ in wanted}),
                                                 D.key.in_({k for _, k in wanted})))
    return {(app_id, key): body for app_id, key, body in rows if (app_id, key) in wanted}
