"""Every finance desk query; each is scoped by app."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.finance.models import DeskSettings, Dispute, Evidence, FeeSchedule, Review
from questline.kit.db import insert_ignore

# Fee schedules --------------------------------------------------------------------------------


async def current_fees(session: AsyncSession, app_id: str) -> FeeSchedule | None:
    return (await session.execute(
        sa.select(FeeSchedule).where(FeeSchedule.app_id == app_id).order_by(FeeSchedule.version.desc()).limit(1)
    )).scalar_one_or_none()


async def fee_history(session: AsyncSession, app_id: str, limit: int) -> Sequence[FeeSchedule]:
    return (await session.execute(
        sa.select(FeeSchedule).where(FeeSchedule.app_id == app_id).order_by(FeeSchedule.version.desc()).limit(limit)
    )).scalars().all()


async def insert_fees(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(FeeSchedule).values(**values))


# Desk settings --------------------------------------------------------------------------------


async def get_settings(session: AsyncSession, app_id: str, *, lock: bool = False) -> DeskSettings | None:
    query = sa.select(DeskSettings).where(DeskSettings.app_id == app_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def ensure_settings(session: AsyncSession, app_id: str, body: dict[str, Any], now: datetime) -> None:
    await session.execute(insert_ignore(session, DeskSettings.__table__).values(
        app_id=app_id, body=body, scanned_to=None, updated_at=now))


async def put_settings(session: AsyncSession, app_id: str, body: dict[str, Any], now: datetime) -> None:
    await ensure_settings(session, app_id, body, now)
    await session.execute(sa.update(DeskSettings).where(DeskSettings.app_id == app_id)
                          .values(body=body, updated_at=now))


async def set_scanned(session: AsyncSession, app_id: str, scanned_to: datetime) -> None:
    await session.execute(sa.update(DeskSettings).where(DeskSettings.app_id == app_id)
                          .values(scanned_to=scanned_to))


# Reviews --------------------------------------------------------------------------------------


async def insert_reviews(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for row in rows:  # few per scan; one statement each keeps ON CONFLICT simple on both dialects
        await session.execute(insert_ignore(session, Review.__table__).values(**row))


async def get_review(session: AsyncSession, app_id: str, review_id: str) -> Review | None:
    return (await session.execute(
        sa.select(Review).where(Review.app_id == app_id, Review.id == review_id)
    )).scalar_one_or_none()


async def list_reviews(session: AsyncSession, app_id: str, status: str | None, *, after: str | None,
                       limit: int) -> Sequence[Review]:
    query = sa.select(Review).where(Review.app_id == app_id)
    if status is not None:
        query = query.where(Review.status == status)
    if after is not None:
        query = query.where(Review.id > after)
    return (await session.execute(query.order_by(Review.id).limit(limit + 1))).scalars().all()


async def decide_review(session: AsyncSession, app_id: str, review_id: str, values: dict[str, Any]) -> bool:
    """Pending -> approved or rejected, once (a conditional update: racing verdicts, one wins)."""
    result = await session.execute(
        sa.update(Review).where(Review.app_id == app_id, Review.id == review_id, Review.status == "pending")
        .values(**values))
    return bool(getattr(result, "rowcount", 0))


async def count_reviews_decided(session: AsyncSession, app_id: str, start: datetime, end: datetime) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(Review).where(
            Review.app_id == app_id, Review.reviewed_at >= start, Review.reviewed_at < end)
    )).scalar_one())


# Disputes -------------------------------------------------------------------------------------


async def insert_dispute(session: AsyncSession, values: dict[str, Any]) -> bool:
    """False when a dispute of the same kind and subject exists already (a chargeback sent twice)."""
    if values.get("subject_ref") is None:
        await session.execute(sa.insert(Dispute).values(**values))
        return True
    result = await session.execute(insert_ignore(session, Dispute.__table__).values(**values))
    return bool(getattr(result, "rowcount", 0))


async def get_dispute(session: AsyncSession, app_id: str, dispute_id: str, *, lock: bool = False) -> Dispute | None:
    query = sa.select(Dispute).where(Dispute.app_id == app_id, Dispute.id == dispute_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def dispute_by_subject(session: AsyncSession, app_id: str, kind: str, subject_ref: str) -> Dispute | None:
    return (await session.execute(
        sa.select(Dispute).where(Dispute.app_id == app_id, Dispute.kind == kind, Dispute.subject_ref == subject_ref)
    )).scalar_one_or_none()


async def list_disputes(session: AsyncSession, app_id: str, *, brand_id: str | None, streamer_id: str | None,
                        status: str | None, after: str | None, limit: int) -> Sequence[Dispute]:
    query = sa.select(Dispute).where(Dispute.app_id == app_id)
    if brand_id is not None:
        query = query.where(Dispute.brand_id == brand_id)
    if streamer_id is not None:
        query = query.where(Dispute.streamer_id == streamer_id)
    if status is not None:
        query = query.where(Dispute.status == status)
    if after is not None:
        query = query.where(Dispute.id > after)
    return (await session.execute(query.order_by(Dispute.id).limit(limit + 1))).scalars().all()


async def refunded_impressions(session: AsyncSession, app_id: str, participation_id: str) -> int:
    """Impressions already refunded on the participation's decided disputes."""
    found = (await session.execute(
        sa.select(Dispute.decision).where(Dispute.app_id == app_id, Dispute.participation_id == participation_id,
                                          Dispute.status == "refunded")
    )).scalars().all()
    return sum(int((d or {}).get("impressions", 0)) for d in found)


async def decide_dispute(session: AsyncSession, app_id: str, dispute_id: str, values: dict[str, Any]) -> bool:
    """Open -> decided, once: racing decisions, one wins; the other finds it decided."""
    result = await session.execute(
        sa.update(Dispute).where(Dispute.app_id == app_id, Dispute.id == dispute_id, Dispute.status == "open")
        .values(**values))
    return bool(getattr(result, "rowcount", 0))


async def update_dispute(session: AsyncSession, app_id: str, dispute_id: str, values: dict[str, Any]) -> None:
    await session.execute(sa.update(Dispute).where(Dispute.app_id == app_id, Dispute.id == dispute_id)
                          .values(**values))


async def disputes_decided(session: AsyncSession, app_id: str, currency: str | None, start: datetime,
                           end: datetime) -> Sequence[Dispute]:
    query = sa.select(Dispute).where(Dispute.app_id == app_id, Dispute.decided_at >= start, Dispute.decided_at < end)
    if currency is not None:
        query = query.where(Dispute.currency == currency)
    return (await session.execute(query.order_by(Dispute.id))).scalars().all()


# Evidence -------------------------------------------------------------------------------------


async def insert_evidence(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(Evidence).values(**values))


async def evidence_of(session: AsyncSession, app_id: str, dispute_id: str) -> Sequence[Evidence]:
    return (await session.execute(
        sa.select(Evidence).where(Evidence.app_id == app_id, Evidence.dispute_id == dispute_id).order_by(Evidence.id)
    )).scalars().all()


async def count_evidence(session: AsyncSession, app_id: str, dispute_id: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(Evidence).where(Evidence.app_id == app_id,
                                                               Evidence.dispute_id == dispute_id)
    )).scalar_one())


async def apps_with_settings(session: AsyncSession) -> list[str]:
    """Apps whose desk has been used (the scan job reads their queues)."""
    return list((await session.execute(sa.select(DeskSettings.app_id).order_by(DeskSettings.app_id))).scalars().all())
