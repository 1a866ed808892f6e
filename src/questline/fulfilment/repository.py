"""Every query of fulfilment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.fulfilment.models import Fulfilment, FulfilmentTarget
from questline.kit.db import insert_ignore

ACTIVE_TX = ("pending", "processing")


async def insert(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Add a record once per (app, source, source_ref); False when it exists already."""
    result = await session.execute(insert_ignore(session, Fulfilment).values(**row))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def get(session: AsyncSession, app_id: str, fulfilment_id: str) -> Fulfilment | None:
    return (await session.execute(
        sa.select(Fulfilment).where(Fulfilment.app_id == app_id, Fulfilment.id == fulfilment_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def by_source(session: AsyncSession, app_id: str, source: str, source_ref: str) -> Fulfilment | None:
    return (await session.execute(
        sa.select(Fulfilment).where(Fulfilment.app_id == app_id, Fulfilment.source == source,
                                    Fulfilment.source_ref == source_ref)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def page(session: AsyncSession, app_id: str, *, status: str | None, kind: str | None, player_id: str | None,
               before: str | None, limit: int) -> Sequence[Fulfilment]:
    stmt = sa.select(Fulfilment).where(Fulfilment.app_id == app_id)
    if status is not None:
        stmt = stmt.where(Fulfilment.status == status)
    if kind is not None:
        stmt = stmt.where(Fulfilment.kind == kind)
    if player_id is not None:
        stmt = stmt.where(Fulfilment.player_id == player_id)
    if before is not None:
        stmt = stmt.where(Fulfilment.id < before)
    return (await session.execute(stmt.order_by(Fulfilment.id.desc()).limit(limit + 1))).scalars().all()


async def update(session: AsyncSession, fulfilment_id: str, *, expect: Sequence[str] | None = None,
                 **values: Any) -> bool:
    """Change a record, only from the expected statuses: one winner per change."""
    stmt = sa.update(Fulfilment).where(Fulfilment.id == fulfilment_id)
    if expect is not None:
        stmt = stmt.where(Fulfilment.status.in_(list(expect)))
    result = await session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def due(session: AsyncSession, now: datetime, limit: int) -> Sequence[Fulfilment]:
    """Records to work on: pending and due, or processing with a claim that ran out (a crashed worker)."""
    return (await session.execute(
        sa.select(Fulfilment).where(sa.or_(
            sa.and_(Fulfilment.status == "pending", Fulfilment.next_attempt_at <= now),
            sa.and_(Fulfilment.status == "processing", Fulfilment.lease_until <= now),
        )).order_by(Fulfilment.next_attempt_at, Fulfilment.id).limit(limit)
    )).scalars().all()


async def claim(session: AsyncSession, record: Fulfilment, now: datetime, lease_until: datetime) -> bool:
    """Take a due record for this process (its status and lease as read): one claimant wins."""
    stmt = sa.update(Fulfilment).where(Fulfilment.id == record.id, Fulfilment.status == record.status)
    if record.status == "pending":
        stmt = stmt.where(Fulfilment.next_attempt_at <= now).values(attempts=Fulfilment.attempts + 1)
    else:
        stmt = stmt.where(Fulfilment.lease_until == record.lease_until)
    result = await session.execute(stmt.values(status="processing", lease_until=lease_until, updated_at=now)
                                   .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def highest_open_nonce(session: AsyncSession) -> int | None:
    """The highest nonce of a signed transfer not yet settled (the signer is one for the engine)."""
    return (await session.execute(
        sa.select(sa.func.max(Fulfilment.tx_nonce)).where(Fulfilment.kind == "token",
                                                          Fulfilment.status.in_(ACTIVE_TX),
                                                          Fulfilment.tx_hash.is_not(None))
    )).scalar_one_or_none()


async def target(session: AsyncSession, app_id: str, kind: str) -> FulfilmentTarget | None:
    return await session.get(FulfilmentTarget, (app_id, kind), populate_existing=True)


async def targets(session: AsyncSession, app_id: str) -> Sequence[FulfilmentTarget]:
    return (await session.execute(
        sa.select(FulfilmentTarget).where(FulfilmentTarget.app_id == app_id).order_by(FulfilmentTarget.kind)
    )).scalars().all()


async def add_target(session: AsyncSession, row: dict[str, Any]) -> bool:
    result = await session.execute(insert_ignore(session, FulfilmentTarget).values(**row))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_target(session: AsyncSession, app_id: str, kind: str, **values: Any) -> None:
    await session.execute(sa.update(FulfilmentTarget).where(FulfilmentTarget.app_id == app_id,
                                                            FulfilmentTarget.kind == kind).values(**values))
