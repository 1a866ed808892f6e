"""Every query of notifications."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore, upsert
from questline.notifications.models import Delivery, Notification, Preferences, Template


async def _add_new(session: AsyncSession, table: Any, rows: Sequence[dict[str, Any]]) -> set[str]:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` of many rows (SQLAlchemy sends them as
    multi-row statements); the ids of the rows that were new."""
    if not rows:
        return set()
    result = await session.execute(insert_ignore(session, table).returning(table.c.id), list(rows))
    return set(result.scalars())


async def add_notifications(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Add inbox entries, each once per (recipient, dedupe key); the ids of those that were new."""
    return await _add_new(session, Notification.__table__, rows)


async def add_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Add deliveries, each once per (channel, recipient, dedupe key); the ids of those that were new."""
    return await _add_new(session, Delivery.__table__, rows)


def _inbox(app_id: str, kind: str, recipient: str) -> Any:
    return sa.and_(Notification.app_id == app_id, Notification.recipient_kind == kind,
                   Notification.recipient_id == recipient)


async def inbox(session: AsyncSession, app_id: str, kind: str, recipient: str, statuses: Sequence[str],
                before: str | None, limit: int) -> Sequence[Notification]:
    stmt = sa.select(Notification).where(_inbox(app_id, kind, recipient), Notification.status.in_(list(statuses)))
    if before is not None:
        stmt = stmt.where(Notification.id < before)
    return (await session.execute(stmt.order_by(Notification.id.desc()).limit(limit + 1))).scalars().all()


async def unread(session: AsyncSession, app_id: str, kind: str, recipient: str) -> int:
    return int((await session.execute(sa.select(sa.func.count()).select_from(Notification).where(
        _inbox(app_id, kind, recipient), Notification.status == "unread"))).scalar_one())


async def unread_of(session: AsyncSession, app_id: str, kind: str, recipients: Sequence[str]) -> dict[str, int]:
    """Unread counts of several inboxes of one kind in one statement (absent: none unread)."""
    if not recipients:
        return {}
    rows = await session.execute(sa.select(Notification.recipient_id, sa.func.count())
                                 .where(Notification.app_id == app_id, Notification.recipient_kind == kind,
                                        Notification.recipient_id.in_(list(recipients)),
                                        Notification.status == "unread")
                                 .group_by(Notification.recipient_id))
    return {str(recipient): int(count) for recipient, count in rows}


async def notification(session: AsyncSession, app_id: str, kind: str, recipient: str,
                       notification_id: str) -> Notification | None:
    return (await session.execute(sa.select(Notification).where(
        _inbox(app_id, kind, recipient), Notification.id == notification_id)
        .execution_options(populate_existing=True))).scalar_one_or_none()


async def set_status(session: AsyncSession, app_id: str, kind: str, recipient: str, ids: Sequence[str] | None,
                     from_statuses: Sequence[str], **values: Any) -> int:
    stmt = sa.update(Notification).where(_inbox(app_id, kind, recipient),
                                         Notification.status.in_(list(from_statuses)))
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(list(ids)))
    result = await session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def preferences(session: AsyncSession, app_id: str, player_ids: Sequence[str]) -> dict[str, Preferences]:
    if not player_ids:
        return {}
    rows = (await session.execute(sa.select(Preferences).where(
        Preferences.app_id == app_id, Preferences.player_id.in_(list(player_ids))))).scalars().all()
    return {p.player_id: p for p in rows}


async def save_preferences(session: AsyncSession, row: dict[str, Any]) -> None:
    stmt = upsert(session, Preferences).values(**row)
    keys = ("app_id", "player_id")
    await session.execute(stmt.on_conflict_do_update(
        index_elements=list(keys), set_={k: stmt.excluded[k] for k in row if k not in keys}))


async def templates(session: AsyncSession, app_id: str) -> Sequence[Template]:
    return (await session.execute(sa.select(Template).where(Template.app_id == app_id)
                                  .order_by(Template.type, Template.locale))).scalars().all()


async def template(session: AsyncSession, app_id: str, type_: str, locale: str) -> Template | None:
    return await session.get(Template, (app_id, type_, locale), populate_existing=True)


async def save_template(session: AsyncSession, row: dict[str, Any]) -> None:
    stmt = upsert(session, Template).values(**row)
    keys = ("app_id", "type", "locale")
    await session.execute(stmt.on_conflict_do_update(
        index_elements=list(keys), set_={k: stmt.excluded[k] for k in row if k not in keys}))


async def delete_template(session: AsyncSession, app_id: str, type_: str, locale: str) -> bool:
    result = await session.execute(sa.delete(Template).where(Template.app_id == app_id, Template.type == type_,
                                                             Template.locale == locale))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def due(session: AsyncSession, now: datetime, limit: int) -> Sequence[Delivery]:
    """Deliveries to send now: pending and due, or sending with a claim that ran out."""
    return (await session.execute(sa.select(Delivery).where(sa.or_(
        sa.and_(Delivery.status == "pending", Delivery.send_after <= now),
        sa.and_(Delivery.status == "sending", Delivery.lease_until <= now),
    )).order_by(Delivery.send_after, Delivery.id).limit(limit))).scalars().all()


async def claim(session: AsyncSession, ids: Sequence[str], now: datetime, lease_until: datetime) -> list[str]:
    """Take due deliveries for this process; returns the ids it won."""
    won = []
    for delivery_id in ids:
        result = await session.execute(sa.update(Delivery).where(Delivery.id == delivery_id, sa.or_(
            sa.and_(Delivery.status == "pending", Delivery.send_after <= now),
            sa.and_(Delivery.status == "sending", Delivery.lease_until <= now),
        )).values(status="sending", lease_until=lease_until, attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False))
        if result.rowcount:  # type: ignore[attr-defined]
            won.append(delivery_id)
    return won


async def deliveries(session: AsyncSession, ids: Sequence[str]) -> Sequence[Delivery]:
    return (await session.execute(sa.select(Delivery).where(Delivery.id.in_(list(ids)))
                                  .order_by(Delivery.id).execution_options(populate_existing=True))).scalars().all()


async def finish(session: AsyncSession, ids: Sequence[str], **values: Any) -> None:
    await session.execute(sa.update(Delivery).where(Delivery.id.in_(list(ids)), Delivery.status == "sending")
                          .values(**values).execution_options(synchronize_session=False))


async def recipient_deliveries(session: AsyncSession, app_id: str, kind: str, recipient: str,
                               limit: int) -> Sequence[Delivery]:
    return (await session.execute(sa.select(Delivery).where(
        Delivery.app_id == app_id, Delivery.recipient_kind == kind, Delivery.recipient_id == recipient)
        .order_by(Delivery.id.desc()).limit(limit))).scalars().all()


async def entries_by_key(session: AsyncSession, app_id: str, dedupe_key: str) -> Sequence[Notification]:
    """Every player's inbox entry made under one key (an announcement's)."""
    return (await session.execute(sa.select(Notification).where(
        Notification.app_id == app_id, Notification.recipient_kind == "player",
        Notification.dedupe_key == dedupe_key))).scalars().all()


async def update_entries(session: AsyncSession, ids: Sequence[str], **values: Any) -> None:
    if ids:
        await session.execute(sa.update(Notification).where(Notification.id.in_(list(ids))).values(**values)
                              .execution_options(synchronize_session=False))


async def delete_entries(session: AsyncSession, app_id: str, dedupe_key: str) -> int:
    result = await session.execute(sa.delete(Notification).where(
        Notification.app_id == app_id, Notification.recipient_kind == "player",
        Notification.dedupe_key == dedupe_key))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def pending_by_key(session: AsyncSession, app_id: str, dedupe_key: str) -> Sequence[Delivery]:
    return (await session.execute(sa.select(Delivery).where(
        Delivery.app_id == app_id, Delivery.recipient_kind == "player", Delivery.dedupe_key == dedupe_key,
        Delivery.status == "pending"))).scalars().all()


async def update_delivery(session: AsyncSession, delivery_id: str, **values: Any) -> None:
    await session.execute(sa.update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "pending")
                          .values(**values).execution_options(synchronize_session=False))


async def withdraw_pending(session: AsyncSession, app_id: str, dedupe_key: str) -> int:
    """Deliveries not sent yet are not sent at all (status ``withdrawn``)."""
    result = await session.execute(sa.update(Delivery).where(
        Delivery.app_id == app_id, Delivery.recipient_kind == "player", Delivery.dedupe_key == dedupe_key,
        Delivery.status == "pending").values(status="withdrawn", lease_until=None)
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
