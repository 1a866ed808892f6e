"""Every campaign query. State changes are conditional UPDATEs; counters move by ``SET v = v + :n``.

Lock order, everywhere: the campaign row, then its participations (by id), then ledger accounts
(the ledger locks by account id), then G-Keys. A join takes the campaign row FOR SHARE (joins of
one campaign run side by side), its streamer's energy row FOR UPDATE (joins of one streamer queue).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.campaigns.models import Campaign, ImpressionHour, ImpressionMinute, ImpressionSeen, Participation
from questline.kit.db import UTCDateTime, insert_ignore, upsert
from questline.kit.jobs import JobRun

LIVE = ("active", "paused")

# Campaigns ------------------------------------------------------------------------------------


async def add(session: AsyncSession, row: Any) -> None:
    session.add(row)
    await session.flush()


async def get(session: AsyncSession, app_id: str, campaign_id: str, *, lock: bool = False,
              share: bool = False) -> Campaign | None:
    stmt = sa.select(Campaign).where(Campaign.app_id == app_id, Campaign.id == campaign_id) \
        .execution_options(populate_existing=True)
    if lock or share:
        stmt = stmt.with_for_update(read=share and not lock)
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_ids(session: AsyncSession, app_id: str, ids: Sequence[str]) -> dict[str, Campaign]:
    if not ids:
        return {}
    rows = await session.execute(sa.select(Campaign).where(Campaign.app_id == app_id,
                                                           Campaign.id.in_(sorted(set(ids)))))
    return {c.id: c for c in rows.scalars()}


async def update(session: AsyncSession, app_id: str, campaign_id: str, values: dict[str, Any]) -> None:
    await session.execute(sa.update(Campaign).where(Campaign.app_id == app_id, Campaign.id == campaign_id)
                          .values(**values))


async def transition(session: AsyncSession, app_id: str, campaign_id: str, from_: Sequence[str],
                     values: dict[str, Any]) -> bool:
    """Move the campaign out of one of ``from_``; True for exactly one caller however many race."""
    done = await session.execute(
        sa.update(Campaign).where(Campaign.app_id == app_id, Campaign.id == campaign_id,
                                  Campaign.status.in_(list(from_)))
        .values(**values).returning(Campaign.id)
    )
    return done.scalar_one_or_none() is not None


async def add_spend(session: AsyncSession, campaign_id: str, impressions: int, gross: int, fee: int,
                    now: datetime) -> None:
    await session.execute(
        sa.update(Campaign).where(Campaign.id == campaign_id)
        .values(impressions=Campaign.impressions + impressions, spent=Campaign.spent + gross,
                commission=Campaign.commission + fee, updated_at=now)
    )


async def page(session: AsyncSession, app_id: str, *, brand_id: str | None, status: str | None, after: str | None,
               limit: int) -> Sequence[Campaign]:
    stmt = sa.select(Campaign).where(Campaign.app_id == app_id).order_by(Campaign.id).limit(limit + 1)
    if brand_id is not None:
        stmt = stmt.where(Campaign.brand_id == brand_id)
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    if after is not None:
        stmt = stmt.where(Campaign.id > after)
    return (await session.execute(stmt)).scalars().all()


async def open_for(session: AsyncSession, app_id: str, streamer_id: str, now: datetime, *,
                   after: tuple[int, str] | None, limit: int) -> Sequence[Campaign]:
    """Active campaigns with budget left that the streamer never joined, biggest budget first."""
    joined = sa.select(Participation.campaign_id).where(Participation.app_id == app_id,
                                                        Participation.streamer_id == streamer_id)
    stmt = (
        sa.select(Campaign)
        .where(Campaign.app_id == app_id, Campaign.status == "active", Campaign.spent < Campaign.budget,
               Campaign.id.not_in(joined), sa.or_(Campaign.ends_at.is_(None), Campaign.ends_at > now),
               sa.or_(Campaign.starts_at.is_(None), Campaign.starts_at <= now))
        .order_by(Campaign.budget.desc(), Campaign.id).limit(limit)
    )
    if after is not None:
        budget, campaign_id = after
        stmt = stmt.where(sa.or_(Campaign.budget < budget,
                                 sa.and_(Campaign.budget == budget, Campaign.id > campaign_id)))
    return (await session.execute(stmt)).scalars().all()


async def live_campaigns(session: AsyncSession, app_id: str | None, limit: int) -> Sequence[Campaign]:
    stmt = sa.select(Campaign).where(Campaign.status.in_(LIVE)).order_by(Campaign.id).limit(limit)
    if app_id is not None:
        stmt = stmt.where(Campaign.app_id == app_id)
    return (await session.execute(stmt)).scalars().all()


async def count_by_status(session: AsyncSession, app_id: str) -> dict[str, int]:
    rows = await session.execute(sa.select(Campaign.status, sa.func.count()).where(Campaign.app_id == app_id)
                                 .group_by(Campaign.status))
    return {status: int(n) for status, n in rows}


async def completed_since(session: AsyncSession, app_id: str, since: datetime) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(Campaign).where(
            Campaign.app_id == app_id, Campaign.status == "completed", Campaign.completed_at >= since)
    )).scalar_one())


async def last_job_run(session: AsyncSession, job: str) -> JobRun | None:
    return (await session.execute(
        sa.select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc()).limit(1)
    )).scalar_one_or_none()


# Participations -------------------------------------------------------------------------------


async def participation(session: AsyncSession, app_id: str, campaign_id: str, streamer_id: str, *,
                        lock: bool = False) -> Participation | None:
    stmt = sa.select(Participation).where(Participation.app_id == app_id, Participation.campaign_id == campaign_id,
                                          Participation.streamer_id == streamer_id) \
        .execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_token(session: AsyncSession, token_hash: str) -> Participation | None:
    return (await session.execute(
        sa.select(Participation).where(Participation.overlay_token_hash == token_hash)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def insert_participation(session: AsyncSession, values: dict[str, Any]) -> bool:
    table = Participation.__table__
    done = await session.execute(insert_ignore(session, table).values(**values).returning(table.c.id))
    return done.scalar_one_or_none() is not None


async def participations_of(session: AsyncSession, app_id: str, campaign_id: str, *,
                            statuses: Sequence[str] | None = None, streamer_ids: Sequence[str] | None = None,
                            lock: bool = False, after: str | None = None,
                            limit: int | None = None) -> Sequence[Participation]:
    stmt = sa.select(Participation).where(Participation.app_id == app_id, Participation.campaign_id == campaign_id) \
        .order_by(Participation.id).execution_options(populate_existing=True)
    if statuses is not None:
        stmt = stmt.where(Participation.status.in_(list(statuses)))
    if streamer_ids is not None:
        stmt = stmt.where(Participation.streamer_id.in_(sorted(set(streamer_ids))))
    if after is not None:
        stmt = stmt.where(Participation.id > after)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().all()


async def running_of_streamer(session: AsyncSession, app_id: str, streamer_id: str) -> Sequence[Participation]:
    return (await session.execute(
        sa.select(Participation).where(Participation.app_id == app_id, Participation.streamer_id == streamer_id,
                                       Participation.status.in_(LIVE))
    )).scalars().all()


async def of_streamer(session: AsyncSession, app_id: str, streamer_id: str) -> Sequence[Participation]:
    return (await session.execute(
        sa.select(Participation).where(Participation.app_id == app_id, Participation.streamer_id == streamer_id)
        .order_by(Participation.id)
    )).scalars().all()


async def set_status(session: AsyncSession, participation_id: str, from_: Sequence[str],
                     values: dict[str, Any]) -> bool:
    done = await session.execute(
        sa.update(Participation).where(Participation.id == participation_id,
                                       Participation.status.in_(list(from_)))
        .values(**values).returning(Participation.id)
    )
    return done.scalar_one_or_none() is not None


async def end_live(session: AsyncSession, app_id: str, campaign_id: str,
                   now: datetime) -> Sequence[tuple[str, str, str]]:
    """Every active or paused participation of the campaign -> completed; (id, streamer, player) of each."""
    rows = await session.execute(
        sa.update(Participation).where(Participation.app_id == app_id, Participation.campaign_id == campaign_id,
                                       Participation.status.in_(LIVE))
        .values(status="completed", ended_at=now, updated_at=now)
        .returning(Participation.id, Participation.streamer_id, Participation.player_id)
    )
    return sorted((i, s, p) for i, s, p in rows)


async def add_earnings(session: AsyncSession, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Per participation: {pid, n, gross, fee} added to its counters (one statement for the batch)."""
    if not rows:
        return
    p = sa.table("participations", sa.column("id"), sa.column("impressions"), sa.column("earned_gross"),
                 sa.column("earned_fee"), sa.column("earned_net"), sa.column("updated_at", UTCDateTime))
    await session.execute(
        sa.update(p).where(p.c.id == sa.bindparam("pid"))
        .values(impressions=p.c.impressions + sa.bindparam("n"), earned_gross=p.c.earned_gross + sa.bindparam("gross"),
                earned_fee=p.c.earned_fee + sa.bindparam("fee"),
                earned_net=p.c.earned_net + sa.bindparam("gross") - sa.bindparam("fee"), updated_at=now),
        list(rows),
    )


async def mark_released(session: AsyncSession, participation_id: str, amount: int) -> None:
    await session.execute(sa.update(Participation).where(Participation.id == participation_id)
                          .values(released=Participation.released + amount))


async def set_token(session: AsyncSession, participation_id: str, token_hash: str, now: datetime) -> None:
    await session.execute(sa.update(Participation).where(Participation.id == participation_id)
                          .values(overlay_token_hash=token_hash, updated_at=now))


async def count_participants(session: AsyncSession, campaign_id: str) -> dict[str, int]:
    rows = await session.execute(sa.select(Participation.status, sa.func.count())
                                 .where(Participation.campaign_id == campaign_id).group_by(Participation.status))
    return {status: int(n) for status, n in rows}


# Impressions ----------------------------------------------------------------------------------


async def seen(session: AsyncSession, participation_ids: Sequence[str],
               ids: Sequence[str]) -> set[tuple[str, str]]:
    """(participation, impression id) pairs already counted, among these."""
    if not ids or not participation_ids:
        return set()
    rows = await session.execute(sa.select(ImpressionSeen.participation_id, ImpressionSeen.impression_id).where(
        ImpressionSeen.participation_id.in_(sorted(set(participation_ids))),
        ImpressionSeen.impression_id.in_(sorted(set(ids)))))
    return {(p, i) for p, i in rows}


async def remember(session: AsyncSession, app_id: str, pairs: Sequence[tuple[str, str]]) -> None:
    rows = [{"participation_id": p, "impression_id": i, "app_id": app_id} for p, i in sorted(set(pairs))]
    if rows:
        await session.execute(insert_ignore(session, ImpressionSeen.__table__), rows)


async def forget_ids_of(session: AsyncSession, campaign_id: str) -> None:
    """A finished campaign counts no more impressions: its ids need not be kept."""
    ended = sa.select(Participation.id).where(Participation.campaign_id == campaign_id)
    await session.execute(sa.delete(ImpressionSeen).where(ImpressionSeen.participation_id.in_(ended)))
    await session.execute(sa.delete(ImpressionMinute).where(ImpressionMinute.participation_id.in_(ended)))


async def minute_counts(session: AsyncSession, participation_ids: Sequence[str],
                        minute: int) -> dict[str, tuple[int, int]]:
    rows = await session.execute(
        sa.select(ImpressionMinute.participation_id, ImpressionMinute.total, ImpressionMinute.overlay).where(
            ImpressionMinute.participation_id.in_(sorted(set(participation_ids))), ImpressionMinute.minute == minute)
    )
    return {p: (int(t), int(o)) for p, t, o in rows}


async def add_minutes(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Per participation and minute: {participation_id, minute, total, overlay} added atomically."""
    if not rows:
        return
    table = ImpressionMinute.__table__
    stmt = upsert(session, table)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["participation_id", "minute"],
        set_={"total": table.c.total + stmt.excluded.total, "overlay": table.c.overlay + stmt.excluded.overlay}),
        list(rows))


async def add_hours(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    table = ImpressionHour.__table__
    stmt = upsert(session, table)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["campaign_id", "streamer_id", "hour"],
        set_={"impressions": table.c.impressions + stmt.excluded.impressions,
              "gross": table.c.gross + stmt.excluded.gross, "fee": table.c.fee + stmt.excluded.fee,
              "net": table.c.net + stmt.excluded.net}), list(rows))


async def timeline(session: AsyncSession, campaign_id: str,
                   since: datetime | None) -> Sequence[tuple[datetime, int, int]]:
    stmt = (sa.select(ImpressionHour.hour, sa.func.sum(ImpressionHour.impressions), sa.func.sum(ImpressionHour.gross))
            .where(ImpressionHour.campaign_id == campaign_id).group_by(ImpressionHour.hour)
            .order_by(ImpressionHour.hour))
    if since is not None:
        stmt = stmt.where(ImpressionHour.hour >= since)
    return [(hour, int(n), int(g)) for hour, n, g in await session.execute(stmt)]


async def streamer_hours(session: AsyncSession, app_id: str,
                         streamer_id: str) -> Sequence[tuple[str, datetime, int, int]]:
    rows = await session.execute(
        sa.select(ImpressionHour.campaign_id, ImpressionHour.hour, ImpressionHour.impressions, ImpressionHour.net)
        .where(ImpressionHour.app_id == app_id, ImpressionHour.streamer_id == streamer_id)
        .order_by(ImpressionHour.hour)
    )
    return [(c, h, int(n), int(net)) for c, h, n, net in rows]


async def participant_rows(session: AsyncSession, campaign_id: str) -> Sequence[Participation]:
    return (await session.execute(sa.select(Participation).where(Participation.campaign_id == campaign_id)
                                  .order_by(Participation.id))).scalars().all()
