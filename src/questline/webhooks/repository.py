from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore
from questline.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


async def add_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    session.add(endpoint)
    await session.flush()


async def endpoint(session: AsyncSession, app_id: str, endpoint_id: str, *,
                   for_update: bool = False) -> WebhookEndpoint | None:
    stmt = sa.select(WebhookEndpoint).where(WebhookEndpoint.app_id == app_id, WebhookEndpoint.id == endpoint_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def endpoints_page(session: AsyncSession, app_id: str, after: str | None,
                         limit: int) -> Sequence[WebhookEndpoint]:
    stmt = (sa.select(WebhookEndpoint).where(WebhookEndpoint.app_id == app_id)
            .order_by(WebhookEndpoint.id).limit(limit + 1))
    if after is not None:
        stmt = stmt.where(WebhookEndpoint.id > after)
    return (await session.execute(stmt)).scalars().all()


async def active_endpoints(session: AsyncSession, app_ids: Sequence[str]) -> Sequence[WebhookEndpoint]:
    if not app_ids:
        return []
    return (await session.execute(
        sa.select(WebhookEndpoint).where(WebhookEndpoint.app_id.in_(list(app_ids)),
                                         WebhookEndpoint.disabled_at.is_(None))
        .order_by(WebhookEndpoint.id)
    )).scalars().all()


async def delete_endpoint(session: AsyncSession, app_id: str, endpoint_id: str) -> bool:
    await session.execute(sa.delete(WebhookAttempt).where(WebhookAttempt.app_id == app_id,
                                                          WebhookAttempt.endpoint_id == endpoint_id))
    await session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.app_id == app_id,
                                                           WebhookDelivery.endpoint_id == endpoint_id))
    result = await session.execute(sa.delete(WebhookEndpoint).where(WebhookEndpoint.app_id == app_id,
                                                                    WebhookEndpoint.id == endpoint_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def add_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New deliveries; one per (endpoint, message) whatever the redeliveries of the relay."""
    if rows:
        await session.execute(insert_ignore(session, WebhookDelivery.__table__), rows)


async def claim_due(session: AsyncSession, now: datetime, limit: int,
                    lease_until: datetime) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
    """Due deliveries of enabled endpoints, leased until ``lease_until`` (skipping those another
    sender holds on PostgreSQL); a sender that dies mid-call leaves them due again after the lease."""
    stmt = (sa.select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                   WebhookEndpoint.disabled_at.is_(None))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=WebhookDelivery, skip_locked=True)
    ids = list((await session.execute(stmt)).scalars())
    if not ids:
        return []
    await session.execute(sa.update(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
                          .values(next_attempt_at=lease_until))
    rows = await session.execute(
        sa.select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(ids))
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        .execution_options(populate_existing=True)
    )
    return [(d, e) for d, e in rows]


async def add_attempt(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(sa.insert(WebhookAttempt), [row])


async def update_delivery(session: AsyncSession, delivery_id: str, values: dict[str, Any]) -> None:
    await session.execute(sa.update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))


async def update_endpoint(session: AsyncSession, endpoint_id: str, values: dict[str, Any],
                          where: Any = None) -> int:
    stmt = sa.update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**values)
    if where is not None:
        stmt = stmt.where(where)
    return int((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def deliveries_page(session: AsyncSession, app_id: str, endpoint_id: str | None, status: str | None,
                          after: str | None, limit: int) -> Sequence[WebhookDelivery]:
    stmt = (sa.select(WebhookDelivery).where(WebhookDelivery.app_id == app_id)
            .order_by(WebhookDelivery.id.desc()).limit(limit + 1))
    if endpoint_id is not None:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if after is not None:
        stmt = stmt.where(WebhookDelivery.id < after)
    return (await session.execute(stmt)).scalars().all()


async def delivery(session: AsyncSession, app_id: str, endpoint_id: str, delivery_id: str) -> WebhookDelivery | None:
    return (await session.execute(
        sa.select(WebhookDelivery).where(WebhookDelivery.app_id == app_id, WebhookDelivery.endpoint_id == endpoint_id,
                                         WebhookDelivery.id == delivery_id)
    )).scalar_one_or_none()


async def attempts_of(session: AsyncSession, delivery_id: str) -> Sequence[WebhookAttempt]:
    return (await session.execute(
        sa.select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.id)
    )).scalars().all()


async def requeue(session: AsyncSession, app_id: str, endpoint_id: str, now: datetime, *,
                  delivery_id: str | None = None, since: datetime | None = None) -> int:
    """Deliver again from the first attempt of the schedule: one delivery, or all made since a time."""
    stmt = (sa.update(WebhookDelivery)
            .where(WebhookDelivery.app_id == app_id, WebhookDelivery.endpoint_id == endpoint_id)
            .values(status="pending", attempts=0, manual=True, next_attempt_at=now))
    if delivery_id is not None:
        stmt = stmt.where(WebhookDelivery.id == delivery_id)
    if since is not None:
        stmt = stmt.where(WebhookDelivery.created_at >= since)
    return int((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]
