"""Ends of periods: archiving closed periods (the rollover job), final standings for other areas
(competitions), and removing boards' entries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import after_commit
from questline.kit.runtime import Runtime
from questline.leaderboards import repository as repo
from questline.leaderboards.boards import boards_of
from questline.leaderboards.definitions import BoardInfo
from questline.leaderboards.schemas import LeaderboardDef
from questline.pipeline import repository as event_log


async def archive_period(session: AsyncSession, runtime: Runtime, app_id: str, info: BoardInfo, key: str,
                         now: datetime) -> bool:
    """Freeze a closed period's standings (once, whoever gets there first) and drop its index."""
    rows = await repo.standings(session, app_id, info.board, key, info.descending, info.min_score)
    if not await repo.claim_period(session, app_id, info.board, key, len(rows), now):
        return False
    ranks: dict[str, int] = {}
    archived = []
    for row in rows:
        rank = ranks[row.partition] = ranks.get(row.partition, 0) + 1
        archived.append({"app_id": app_id, "board": info.board, "period_key": key, "partition": row.partition,
                         "rank": rank, "player_id": row.player_id, "score": row.score, "reached_at": row.reached_at})
    await repo.add_archive(session, archived)
    leaders = [{"partition": r["partition"], "player_id": r["player_id"], "score": r["score"]}
               for r in archived if r["rank"] == 1][:20]
    await event_log.add_outbox(session, [event_log.outbox_row(
        app_id, "leaderboard.period_closed", None,
        {"board": info.board, "period_key": key, "entries": len(rows), "leaders": leaders}, now)])
    boards = boards_of(runtime)

    async def drop() -> None:
        await boards.forget(app_id, info.board, key)

    after_commit(session, drop)
    return True


async def roll_over(session: AsyncSession, runtime: Runtime, now: datetime) -> int:
    """Archive every board period that has ended (the scheduler's job); returns how many."""
    periods = await repo.unarchived_periods(session)
    bodies = await repo.board_definitions(session, {(p.app_id, p.board) for p in periods})
    done = 0
    for period in periods:
        body = bodies.get((period.app_id, period.board))
        if body is None:  # the board was deleted: close what it left without standings
            await repo.claim_period(session, period.app_id, period.board, period.period_key, 0, now)
            continue
        info = BoardInfo.of(period.board, LeaderboardDef.model_validate(body))
        if info.is_closed(period.period_key, now) and await archive_period(
                session, runtime, period.app_id, info, period.period_key, now):
            done += 1
    return done


@dataclass(frozen=True)
class Standing:
    rank: int
    player_id: str
    score: int
    reached_at: datetime


async def standings(session: AsyncSession, app_id: str, info: BoardInfo, key: str, *, limit: int | None = None,
                    exclude: set[str] | None = None) -> list[Standing]:
    """A period's order from the database (for finishing a competition or period, not for reads)."""
    rows = await repo.standings(session, app_id, info.board, key, info.descending, info.min_score, limit)
    out: list[Standing] = []
    for row in rows:
        if exclude and row.player_id in exclude:
            continue
        out.append(Standing(len(out) + 1, row.player_id, row.score, row.reached_at))
    return out


async def remove_entries(session: AsyncSession, runtime: Runtime, app_id: str, boards: Sequence[str],
                         player_id: str | None = None) -> None:
    """Delete boards' entries (all, or one player's) and drop their index once committed."""
    if not boards:
        return
    await repo.delete_entries(session, app_id, boards=boards, player_id=player_id)
    index = boards_of(runtime)

    async def drop() -> None:
        for board in boards:
            await index.forget(app_id, board)

    after_commit(session, drop)
