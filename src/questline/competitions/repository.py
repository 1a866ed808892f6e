"""Every query of the competitions area."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.competitions.models import (
    ACTIVE,
    UPCOMING,
    Activity,
    Competition,
    Distribution,
    Participant,
    Prize,
    PrizeEvent,
    Result,
)
from questline.kit.db import PerDialect, insert_ignore, many, rows_of, upsert
from questline.pipeline.models import EventRecord

C = Competition
OPEN = (UPCOMING, ACTIVE)


# Competitions ---------------------------------------------------------------------------------


async def add(session: AsyncSession, row: Competition) -> None:
    session.add(row)
    await session.flush()


async def get(session: AsyncSession, app_id: str, competition_id: str) -> Competition | None:
    return (await session.execute(
        sa.select(C).where(C.app_id == app_id, C.id == competition_id)
    )).scalar_one_or_none()


async def get_any(session: AsyncSession, competition_id: str) -> Competition | None:
    return await session.get(C, competition_id, populate_existing=True)


async def page(session: AsyncSession, app_id: str, status: str | None, after: str | None,
               limit: int) -> Sequence[Competition]:
    stmt = sa.select(C).where(C.app_id == app_id).order_by(C.id.desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(C.status == status)
    if after is not None:
        stmt = stmt.where(C.id < after)
    return (await session.execute(stmt)).scalars().all()


async def due_to_start(session: AsyncSession, now: datetime, limit: int = 200) -> Sequence[str]:
    rows = await session.execute(
        sa.select(C.id).where(C.status == UPCOMING, C.starts_at <= now, C.ends_at > now).order_by(C.starts_at)
        .limit(limit))
    return [r[0] for r in rows]


async def edges_between(session: AsyncSession, start: datetime, end: datetime,
                        limit: int = 500) -> Sequence[Competition]:
    """Competitions that start, or end, in ``(start, end]`` and have not yet done so."""
    return (await session.execute(sa.select(C).where(sa.or_(
        sa.and_(C.status == UPCOMING, C.starts_at > start, C.starts_at <= end),
        sa.and_(C.status.in_(OPEN), C.ends_at > start, C.ends_at <= end),
    )).order_by(C.id).limit(limit))).scalars().all()


async def due_to_end(session: AsyncSession, now: datetime, limit: int = 200) -> Sequence[str]:
    rows = await session.execute(
        sa.select(C.id).where(C.status.in_(OPEN), C.ends_at <= now).order_by(C.ends_at).limit(limit))
    return [r[0] for r in rows]


async def transition(session: AsyncSession, competition_id: str, from_statuses: Iterable[str], to: str,
                     **values: Any) -> bool:
    """Move a competition on only if it is still where the caller saw it: one winner per change."""
    result = await session.execute(
        sa.update(C).where(C.id == competition_id, C.status.in_(list(from_statuses)))
        .values(status=to, **values).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def update(session: AsyncSession, competition_id: str, **values: Any) -> None:
    await session.execute(sa.update(C).where(C.id == competition_id).values(**values)
                          .execution_options(synchronize_session=False))


async def take_slot(session: AsyncSession, competition_id: str, fee: int) -> bool:
    """Count one more participant unless the competition is full or closed (atomic)."""
    result = await session.execute(
        sa.update(C).where(C.id == competition_id, C.status.in_(OPEN),
                           sa.or_(C.max_participants.is_(None), C.participant_count < C.max_participants))
        .values(participant_count=C.participant_count + 1, fees_collected=C.fees_collected + fee)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# Built once: the worker runs it for every batch (most find nothing).
_LIVE = sa.select(C).where(C.app_id == sa.bindparam("app"), C.status.in_(OPEN), C.starts_at <= sa.bindparam("latest"),
                           C.ends_at > sa.bindparam("earliest"))


# The same question as plain ids, on the bare driver (kit.db.rows_of): almost every batch asks it
# and finds nothing, and only then are the competitions loaded as objects.
_LIVE_IDS = PerDialect(lambda _: sa.select(C.id).where(
    C.app_id == sa.bindparam("app"), sa.or_(*(C.status == status for status in OPEN)),
    C.starts_at <= sa.bindparam("latest"), C.ends_at > sa.bindparam("earliest")))


async def live_for(session: AsyncSession, app_id: str, earliest: datetime, latest: datetime) -> Sequence[Competition]:
    """Competitions of the app still taking scores whose window meets [earliest, latest]."""
    params = {"app": app_id, "earliest": earliest, "latest": latest}
    if not await rows_of(session, _LIVE_IDS, params):
        return []
    return (await session.execute(_LIVE, params)).scalars().all()


async def with_status(session: AsyncSession, app_id: str | None, statuses: Iterable[str]) -> list[tuple[str, str]]:
    """(app_id, competition id) of the competitions in these statuses."""
    stmt = sa.select(C.app_id, C.id).where(C.status.in_(list(statuses)))
    if app_id is not None:
        stmt = stmt.where(C.app_id == app_id)
    return [(a, c) for a, c in await session.execute(stmt)]


async def pending_events_before(session: AsyncSession, app_id: str, moment: datetime) -> bool:
    """Whether the worker still owes the app events that happened before ``moment``."""
    E = EventRecord
    row = await session.execute(
        sa.select(E.seq).where(E.pending > 0, E.app_id == app_id, E.occurred_at < moment).limit(1))
    return row.first() is not None


# Participants ----------------------------------------------------------------------------------

P = Participant


async def add_participant(session: AsyncSession, row: dict[str, Any]) -> bool:
    result = await session.execute(
        insert_ignore(session, P.__table__).values(**row).returning(P.__table__.c.player_id))
    return result.scalar_one_or_none() is not None


async def participant(session: AsyncSession, competition_id: str, player_id: str) -> Participant | None:
    return await session.get(P, (competition_id, player_id), populate_existing=True)


async def set_fee_transaction(session: AsyncSession, competition_id: str, player_id: str, txn_id: str) -> None:
    await session.execute(sa.update(P).where(P.competition_id == competition_id, P.player_id == player_id)
                          .values(fee_transaction_id=txn_id).execution_options(synchronize_session=False))


async def set_participant_status(session: AsyncSession, competition_id: str, player_id: str | None,
                                 status: str, *, only: str | None = None) -> None:
    stmt = sa.update(P).where(P.competition_id == competition_id).values(status=status)
    if player_id is not None:
        stmt = stmt.where(P.player_id == player_id)
    if only is not None:
        stmt = stmt.where(P.status == only)
    await session.execute(stmt.execution_options(synchronize_session=False))


async def joined(session: AsyncSession, competition_ids: Iterable[str], players: Iterable[str]) -> set[tuple[str, str]]:
    ids, pids = list(competition_ids), list(players)
    if not ids or not pids:
        return set()
    rows = await session.execute(
        sa.select(P.competition_id, P.player_id).where(P.competition_id.in_(ids), P.player_id.in_(pids),
                                                       P.status == "joined"))
    return {(c, p) for c, p in rows}


async def past_participants(session: AsyncSession, app_id: str, other_than: str, limit: int) -> list[str]:
    """Distinct players of the app's other competitions (joined ones; disqualified players are left out)."""
    return list((await session.execute(
        sa.select(P.player_id).where(P.app_id == app_id, P.competition_id != other_than, P.status == "joined")
        .group_by(P.player_id).order_by(P.player_id).limit(limit))).scalars().all())


async def participants(session: AsyncSession, competition_id: str, after: str | None = None,
                       limit: int | None = None) -> Sequence[Participant]:
    stmt = sa.select(P).where(P.competition_id == competition_id).order_by(P.player_id)
    if after is not None:
        stmt = stmt.where(P.player_id > after)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    return (await session.execute(stmt)).scalars().all()


async def disqualified(session: AsyncSession, competition_id: str) -> set[str]:
    rows = await session.execute(
        sa.select(P.player_id).where(P.competition_id == competition_id, P.status == "disqualified"))
    return {r[0] for r in rows}


# Results, distributions, prizes -----------------------------------------------------------------


async def replace_results(session: AsyncSession, competition_id: str, rows: list[dict[str, Any]]) -> None:
    await session.execute(sa.delete(Result).where(Result.competition_id == competition_id))
    if rows:
        await session.execute(sa.insert(Result), rows)


async def results(session: AsyncSession, competition_id: str) -> Sequence[Result]:
    return (await session.execute(
        sa.select(Result).where(Result.competition_id == competition_id).order_by(Result.rank))).scalars().all()


async def distribution(session: AsyncSession, competition_id: str, batch: int) -> Distribution | None:
    return (await session.execute(
        sa.select(Distribution).where(Distribution.competition_id == competition_id, Distribution.batch == batch)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def distributions(session: AsyncSession, competition_id: str) -> Sequence[Distribution]:
    return (await session.execute(
        sa.select(Distribution).where(Distribution.competition_id == competition_id).order_by(Distribution.batch)
    )).scalars().all()


async def add_distribution(session: AsyncSession, row: dict[str, Any]) -> bool:
    result = await session.execute(
        insert_ignore(session, Distribution.__table__).values(**row).returning(Distribution.__table__.c.id))
    return result.scalar_one_or_none() is not None


async def roll_back_distribution(session: AsyncSession, distribution_id: str, now: datetime, reason: str) -> bool:
    result = await session.execute(
        sa.update(Distribution).where(Distribution.id == distribution_id, Distribution.status == "distributed")
        .values(status="rolled_back", rolled_back_at=now, rollback_reason=reason)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def add_prizes(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(Prize), rows)


async def prizes_of_batch(session: AsyncSession, competition_id: str, batch: int) -> Sequence[Prize]:
    return (await session.execute(
        sa.select(Prize).where(Prize.competition_id == competition_id, Prize.batch == batch).order_by(Prize.rank)
        .execution_options(populate_existing=True)
    )).scalars().all()


async def prizes_of_competition(session: AsyncSession, competition_id: str) -> Sequence[Prize]:
    return (await session.execute(
        sa.select(Prize).where(Prize.competition_id == competition_id).order_by(Prize.batch, Prize.rank)
    )).scalars().all()


async def prize(session: AsyncSession, prize_id: str) -> Prize | None:
    return await session.get(Prize, prize_id, populate_existing=True)


async def player_prize(session: AsyncSession, app_id: str, player_id: str, prize_id: str) -> Prize | None:
    return (await session.execute(
        sa.select(Prize).where(Prize.app_id == app_id, Prize.player_id == player_id, Prize.id == prize_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def player_prizes(session: AsyncSession, app_id: str, player_id: str, status: str | None, after: str | None,
                        limit: int) -> Sequence[Prize]:
    stmt = sa.select(Prize).where(Prize.app_id == app_id, Prize.player_id == player_id) \
        .order_by(Prize.id.desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(Prize.status == status)
    if after is not None:
        stmt = stmt.where(Prize.id < after)
    return (await session.execute(stmt)).scalars().all()


async def set_prize(session: AsyncSession, prize_id: str, *, expect: Iterable[str] | None = None,
                    before: datetime | None = None, **values: Any) -> bool:
    """Change a prize, only from the expected statuses (and before its deadline): one winner per change."""
    stmt = sa.update(Prize).where(Prize.id == prize_id)
    if expect is not None:
        stmt = stmt.where(Prize.status.in_(list(expect)))
    if before is not None:
        stmt = stmt.where(sa.or_(Prize.claim_deadline.is_(None), Prize.claim_deadline > before))
    result = await session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def expiring(session: AsyncSession, now: datetime, limit: int = 500) -> Sequence[Prize]:
    return (await session.execute(
        sa.select(Prize).where(Prize.status == "claimable", Prize.claim_deadline <= now).limit(limit)
    )).scalars().all()


async def add_history(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(PrizeEvent), rows)


async def history(session: AsyncSession, app_id: str, player_id: str, before_id: int | None,
                  limit: int) -> Sequence[PrizeEvent]:
    stmt = sa.select(PrizeEvent).where(PrizeEvent.app_id == app_id, PrizeEvent.player_id == player_id) \
        .order_by(PrizeEvent.id.desc()).limit(limit + 1)
    if before_id is not None:
        stmt = stmt.where(PrizeEvent.id < before_id)
    return (await session.execute(stmt)).scalars().all()


# Activity --------------------------------------------------------------------------------------


async def add_activity(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Add joins, events and volume per hour (atomic increments)."""
    if not rows:
        return
    stmt = upsert(session, Activity.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["competition_id", "bucket"],
        set_={"joins": Activity.__table__.c.joins + stmt.excluded.joins,
              "events": Activity.__table__.c.events + stmt.excluded.events,
              "volume": Activity.__table__.c.volume + stmt.excluded.volume},
    )
    await session.execute(many(stmt), rows)


async def activity(session: AsyncSession, competition_id: str) -> Sequence[Activity]:
    return (await session.execute(
        sa.select(Activity).where(Activity.competition_id == competition_id).order_by(Activity.bucket)
    )).scalars().all()


async def delete_activity(session: AsyncSession, competition_ids: Sequence[str]) -> None:
    if competition_ids:
        await session.execute(sa.update(Activity).where(Activity.competition_id.in_(list(competition_ids)))
                              .values(events=0, volume=0).execution_options(synchronize_session=False))
