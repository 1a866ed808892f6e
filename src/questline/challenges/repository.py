"""Every query of the challenges area."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from questline.challenges.models import ChallengeClaim, ChallengeCompletion, ChallengeProgress, ReplayedCompletionId
from questline.kit.db import Bulk, PerDialect, among, each_of, insert_ignore, player_rows, rows_of

# Progress -------------------------------------------------------------------------------------


async def progress_of(session: AsyncSession, app_id: str, player_ids: Iterable[str],
                      period_keys: Iterable[str]) -> Sequence[ChallengeProgress]:
    return (await session.execute(
        sa.select(ChallengeProgress).where(
            ChallengeProgress.app_id == app_id, ChallengeProgress.player_id.in_(list(player_ids)),
            ChallengeProgress.period_key.in_(list(period_keys)))
    )).scalars().all()


_CELLS = player_rows(ChallengeProgress, "period_key")


async def cells_of(session: AsyncSession, app_id: str, player_ids: Iterable[str],
                   period_keys: Iterable[str]) -> Sequence[Any]:
    """The worker's load: ``progress_of`` as plain rows (the same attributes, no ORM objects)."""
    return await rows_of(session, _CELLS, {"app": app_id, "players": list(set(player_ids)),
                                           "period_key": list(period_keys)})


async def save_progress(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await _PROGRESS.write(session, rows)


_PROGRESS = Bulk(ChallengeProgress.__table__, key=("app_id", "player_id", "challenge", "period_key"),
                 update=("round", "objectives", "met_at", "updated_at"))


async def trim_progress(session: AsyncSession, before: datetime) -> int:
    """Delete progress rows of calendar periods untouched since ``before`` (``once`` rows stay)."""
    result = await session.execute(
        sa.delete(ChallengeProgress).where(ChallengeProgress.period_key != "once",
                                           ChallengeProgress.updated_at < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def reset(session: AsyncSession, app_id: str | None) -> None:
    """Delete what events derived: progress and automatic completions (claims and manual ones stay).

    The automatic completions' ids are kept aside (``challenge_replay_ids``) for the replay to
    give back to the completions it derives again."""
    progress = sa.delete(ChallengeProgress)
    completions = sa.delete(ChallengeCompletion).where(ChallengeCompletion.source == "auto")
    forget_ids = sa.delete(ReplayedCompletionId)
    auto = sa.select(ChallengeCompletion.app_id, ChallengeCompletion.player_id, ChallengeCompletion.challenge,
                     ChallengeCompletion.period_key, ChallengeCompletion.id).where(ChallengeCompletion.source == "auto")
    if app_id is not None:
        progress = progress.where(ChallengeProgress.app_id == app_id)
        completions = completions.where(ChallengeCompletion.app_id == app_id)
        forget_ids = forget_ids.where(ReplayedCompletionId.app_id == app_id)
        auto = auto.where(ChallengeCompletion.app_id == app_id)
    await session.execute(progress)
    await session.execute(forget_ids)
    await session.execute(sa.insert(ReplayedCompletionId).from_select(
        ["app_id", "player_id", "challenge", "period_key", "id"], auto))
    await session.execute(completions)


async def replayed_ids(session: AsyncSession, app_id: str,
                       keys: Collection[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
    """The ids (player, challenge, period) -> id that these completions had before the replay."""
    if not keys:
        return {}
    players = sorted({player for player, _, _ in keys})
    rows = await session.execute(
        sa.select(ReplayedCompletionId.player_id, ReplayedCompletionId.challenge, ReplayedCompletionId.period_key,
                  ReplayedCompletionId.id)
        .where(ReplayedCompletionId.app_id == app_id, ReplayedCompletionId.player_id.in_(players)))
    return {(p, c, k): int(i) for p, c, k, i in rows if (p, c, k) in keys}


async def forget_replayed_ids(session: AsyncSession, app_id: str, keys: Collection[tuple[str, str, str]]) -> None:
    """Drop ids given back (each is used once)."""
    if keys:
        await session.execute(sa.delete(ReplayedCompletionId).where(
            ReplayedCompletionId.app_id == app_id,
            sa.tuple_(ReplayedCompletionId.player_id, ReplayedCompletionId.challenge,
                      ReplayedCompletionId.period_key).in_(sorted(keys))))


async def made_after(session: AsyncSession, app_id: str,
                     first_seq: Mapping[str, int]) -> Sequence[ChallengeCompletion]:
    """Completions made by a person after the player's log position ``first_seq[player]`` (or at
    it): what a replay reaching that position must not count yet."""
    if not first_seq:
        return []
    rows = (await session.execute(
        sa.select(ChallengeCompletion).where(
            ChallengeCompletion.app_id == app_id, ChallengeCompletion.player_id.in_(sorted(first_seq)),
            ChallengeCompletion.log_seq.is_not(None))
    )).scalars().all()
    return [r for r in rows if r.log_seq is not None and r.log_seq >= first_seq[r.player_id]]


# Completions ----------------------------------------------------------------------------------


async def completion_summary(session: AsyncSession, app_id: str, player_ids: Iterable[str],
                             excluding: Collection[int] = ()) -> Sequence[tuple[str, str, str, int, datetime]]:
    """(player, challenge, category, completions, last completed_at) for each pair with any
    (leaving out the completions whose ids are in ``excluding``)."""
    params = {"app": app_id, "players": list(set(player_ids))}
    if excluding:  # a replay's: rare, built as needed
        left_out = ChallengeCompletion.id.not_in(sorted(excluding))
        stmt = _summary(session.get_bind().dialect.name, left_out)
        rows: Any = await session.execute(stmt, params)
    else:
        rows = await rows_of(session, _SUMMARY, params)
    return [(p, c, cat, int(n), last) for p, c, cat, n, last in rows]


# The worker's loads, built once per dialect (a statement built per call costs its cache key), with
# one text for any number of players and periods on PostgreSQL (``= ANY``).
def _summary(dialect: str, *where: Any) -> Any:
    return each_of("players", dialect, lambda player: sa.select(
        ChallengeCompletion.player_id, ChallengeCompletion.challenge, ChallengeCompletion.category,
        sa.func.count().label("completions"), sa.func.max(ChallengeCompletion.completed_at).label("last"))
        .where(ChallengeCompletion.app_id == sa.bindparam("app"), player(ChallengeCompletion.player_id), *where)
        .group_by(ChallengeCompletion.player_id, ChallengeCompletion.challenge, ChallengeCompletion.category))


_SUMMARY = PerDialect(_summary)


def _done_in(dialect: str) -> Any:
    c = ChallengeCompletion
    if dialect == "postgresql":  # the periods, and their repeat rounds ``period#n``, as two arrays
        match = sa.or_(among(c.period_key, "keys", dialect),
                       c.period_key.like(sa.func.any(sa.bindparam("rounds", type_=postgresql.ARRAY(sa.Text())))))
    else:
        match = sa.or_(among(c.period_key, "keys", dialect),
                       sa.func.substr(c.period_key, 1, sa.func.instr(c.period_key, "#") - 1).in_(
                           sa.bindparam("bases", expanding=True)))
    return each_of("players", dialect, lambda player: sa.select(c.id, c.player_id, c.challenge, c.period_key).where(
        c.app_id == sa.bindparam("app"), player(c.player_id), match))


_DONE_IN = PerDialect(_done_in)


async def done_in(session: AsyncSession, app_id: str, player_ids: Iterable[str],
                  period_keys: Iterable[str]) -> Sequence[Any]:
    """``completions_in(..., rounds=True)`` for the worker: plain rows (id, player_id, challenge, period_key)."""
    keys = sorted(set(period_keys))
    return await rows_of(session, _DONE_IN, {"app": app_id, "players": list(set(player_ids)), "keys": keys,
                                             "rounds": [f"{key}#%" for key in keys], "bases": keys})


async def completions_in(session: AsyncSession, app_id: str, player_ids: Iterable[str],
                         period_keys: Iterable[str], *, rounds: bool = False) -> Sequence[ChallengeCompletion]:
    """Completions in these periods (with ``rounds``, also the repeat rounds ``period#n``)."""
    keys = sorted(set(period_keys))
    match: sa.ColumnElement[bool] = ChallengeCompletion.period_key.in_(keys)
    if rounds:
        match = sa.or_(match, *[ChallengeCompletion.period_key.like(f"{key}#%") for key in keys])
    return (await session.execute(
        sa.select(ChallengeCompletion).where(
            ChallengeCompletion.app_id == app_id, ChallengeCompletion.player_id.in_(list(player_ids)), match)
    )).scalars().all()


async def completion_spans(session: AsyncSession, app_id: str, player_ids: Iterable[str], since: datetime,
                           until: datetime) -> Sequence[tuple[str, str, str, datetime, datetime]]:
    """(player, challenge, period key, period start, period end) of completions whose UTC span
    reaches into ``[since, until)``."""
    rows = await rows_of(session, _SPANS, {"app": app_id, "players": list(set(player_ids)), "since": since,
                                           "until": until})
    return [(p, k, period, start, end) for p, k, period, start, end in rows if start is not None and end is not None]


_SPANS = PerDialect(lambda dialect: each_of("players", dialect, lambda player: sa.select(
    ChallengeCompletion.player_id, ChallengeCompletion.challenge, ChallengeCompletion.period_key,
    ChallengeCompletion.period_start, ChallengeCompletion.period_end).where(
    ChallengeCompletion.app_id == sa.bindparam("app"), player(ChallengeCompletion.player_id),
    ChallengeCompletion.period_start.is_not(None), ChallengeCompletion.period_end > sa.bindparam("since"),
    ChallengeCompletion.period_start < sa.bindparam("until"))))


async def overlapping_completion(session: AsyncSession, app_id: str, player_id: str, challenge: str, period: str,
                                 start: datetime, end: datetime) -> str | None:
    """The period key of a completion of another period whose span overlaps ``[start, end)``."""
    c = ChallengeCompletion
    found = await session.execute(
        sa.select(c.period_key).where(
            c.app_id == app_id, c.player_id == player_id, c.challenge == challenge, c.period_key != period,
            ~c.period_key.like(f"{period}#%"), c.period_start < end, c.period_end > start).limit(1)
    )
    return found.scalar_one_or_none()


async def insert_completions(session: AsyncSession, rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Insert completions, skipping any the unique constraint refuses; returns the inserted
    (player, challenge, period) triples. Rows may carry their ``id`` (a replay gives it back)."""
    table = ChallengeCompletion.__table__
    inserted: set[tuple[str, str, str]] = set()
    for group in ([r for r in rows if "id" in r], [r for r in rows if "id" not in r]):
        if group:
            result = await session.execute(
                insert_ignore(session, table).returning(table.c.player_id, table.c.challenge, table.c.period_key),
                group)
            inserted |= {(p, c, k) for p, c, k in result}
    return inserted


async def insert_completion(session: AsyncSession, row: dict[str, Any]) -> int | None:
    """One completion; its id, or None when the period is already completed."""
    table = ChallengeCompletion.__table__
    result = await session.execute(insert_ignore(session, table).values(**row).returning(table.c.id))
    found = result.scalar_one_or_none()
    return int(found) if found is not None else None


async def count_round_completions(session: AsyncSession, app_id: str, player_id: str, challenge: str,
                                  period_key: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(ChallengeCompletion).where(
            ChallengeCompletion.app_id == app_id, ChallengeCompletion.player_id == player_id,
            ChallengeCompletion.challenge == challenge,
            sa.or_(ChallengeCompletion.period_key == period_key,
                   ChallengeCompletion.period_key.like(f"{period_key}#%")))
    )).scalar_one())


async def history(session: AsyncSession, app_id: str, player_id: str, before_id: int | None,
                  limit: int) -> Sequence[ChallengeCompletion]:
    stmt = sa.select(ChallengeCompletion).where(ChallengeCompletion.app_id == app_id,
                                                ChallengeCompletion.player_id == player_id)
    if before_id is not None:
        stmt = stmt.where(ChallengeCompletion.id < before_id)
    return (await session.execute(stmt.order_by(ChallengeCompletion.id.desc()).limit(limit + 1))).scalars().all()


# Claims ---------------------------------------------------------------------------------------


async def insert_claim(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Insert a claim; False when the player already has an open claim for that period."""
    table = ChallengeClaim.__table__
    result = await session.execute(insert_ignore(session, table).values(**row).returning(table.c.id))
    return result.scalar_one_or_none() is not None


async def get_claim(session: AsyncSession, app_id: str, claim_id: str) -> ChallengeClaim | None:
    return (await session.execute(
        sa.select(ChallengeClaim).where(ChallengeClaim.app_id == app_id, ChallengeClaim.id == claim_id)
    )).scalar_one_or_none()


async def open_claims_of(session: AsyncSession, app_id: str, player_id: str,
                         period_keys: Iterable[str]) -> Sequence[ChallengeClaim]:
    return (await session.execute(
        sa.select(ChallengeClaim).where(
            ChallengeClaim.app_id == app_id, ChallengeClaim.player_id == player_id,
            ChallengeClaim.period_key.in_(list(period_keys)), ChallengeClaim.status != "rejected")
    )).scalars().all()


async def decide_claim(session: AsyncSession, app_id: str, claim_id: str, status: str, decided_at: datetime,
                       decided_by: str, reason: str | None) -> bool:
    """Move a pending claim to ``status``; False when it was not pending (someone decided first)."""
    result = await session.execute(
        sa.update(ChallengeClaim)
        .where(ChallengeClaim.app_id == app_id, ChallengeClaim.id == claim_id, ChallengeClaim.status == "pending")
        .values(status=status, decided_at=decided_at, decided_by=decided_by, reason=reason)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


async def claims_page(session: AsyncSession, app_id: str, status: str | None, challenge: str | None,
                      player_id: str | None, after_id: str | None, limit: int) -> Sequence[ChallengeClaim]:
    stmt = sa.select(ChallengeClaim).where(ChallengeClaim.app_id == app_id)
    if status is not None:
        stmt = stmt.where(ChallengeClaim.status == status)
    if challenge is not None:
        stmt = stmt.where(ChallengeClaim.challenge == challenge)
    if player_id is not None:
        stmt = stmt.where(ChallengeClaim.player_id == player_id)
    if after_id is not None:
        stmt = stmt.where(ChallengeClaim.id > after_id)
    return (await session.execute(stmt.order_by(ChallengeClaim.id).limit(limit + 1))).scalars().all()
