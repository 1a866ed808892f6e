from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore
from questline.pipeline.models import DONE, LIVE, EventRecord, OutboxMessage


async def append(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert events, skipping ids the app already has; returns event_id -> seq of the new ones."""
    if not rows:
        return {}
    table = EventRecord.__table__
    result = await session.execute(
        insert_ignore(session, table).returning(table.c.event_id, table.c.seq), rows,
    )
    return {event_id: seq for event_id, seq in result}


async def seqs_of(session: AsyncSession, app_id: str, event_ids: Sequence[str]) -> dict[str, int]:
    if not event_ids:
        return {}
    rows = await session.execute(
        sa.select(EventRecord.event_id, EventRecord.seq)
        .where(EventRecord.app_id == app_id, EventRecord.event_id.in_(list(event_ids)))
    )
    return {event_id: seq for event_id, seq in rows}


async def count_pending(session: AsyncSession, seqs: Sequence[int]) -> int:
    if not seqs:
        return 0
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(EventRecord)
        .where(EventRecord.seq.in_(list(seqs)), EventRecord.pending > 0)
    )).scalar_one())


async def next_pending(session: AsyncSession, limit: int) -> Sequence[EventRecord]:
    return (await session.execute(
        sa.select(EventRecord).where(EventRecord.pending > 0).order_by(EventRecord.seq).limit(limit)
    )).scalars().all()


async def mark_done(session: AsyncSession, seqs: Sequence[int]) -> None:
    await session.execute(sa.update(EventRecord).where(EventRecord.seq.in_(list(seqs))).values(pending=DONE))


async def mark_for_replay(session: AsyncSession, app_id: str | None, flag: int) -> int:
    stmt = sa.update(EventRecord).values(pending=flag)
    if app_id is not None:
        stmt = stmt.where(EventRecord.app_id == app_id)
    return int((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def count_all_pending(session: AsyncSession) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(EventRecord).where(EventRecord.pending > 0)
    )).scalar_one())


def outbox_row(app_id: str, type_: str, player_id: str | None, payload: dict[str, Any], at: datetime,
               event_seq: int | None = None) -> dict[str, Any]:
    """One outbox message to insert with ``add_outbox`` (``event_seq``: the log event it follows from)."""
    return {"app_id": app_id, "type": type_, "player_id": player_id, "event_seq": event_seq, "payload": payload,
            "created_at": at, "published_at": None}


async def add_outbox(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(OutboxMessage), rows)


async def effects_of(session: AsyncSession, app_id: str, seqs: Sequence[int]) -> Sequence[tuple[OutboxMessage, str]]:
    if not seqs:
        return []
    rows = await session.execute(
        sa.select(OutboxMessage, EventRecord.event_id)
        .join(EventRecord, EventRecord.seq == OutboxMessage.event_seq)
        .where(OutboxMessage.app_id == app_id, OutboxMessage.event_seq.in_(list(seqs)))
        .order_by(OutboxMessage.seq)
    )
    return [(msg, event_id) for msg, event_id in rows]


async def page_of_player(session: AsyncSession, app_id: str, player_id: str, before: int | None,
                         limit: int) -> Sequence[EventRecord]:
    stmt = (sa.select(EventRecord).where(EventRecord.app_id == app_id, EventRecord.player_id == player_id)
            .order_by(EventRecord.seq.desc()).limit(limit + 1))
    if before is not None:
        stmt = stmt.where(EventRecord.seq < before)
    return (await session.execute(stmt)).scalars().all()


async def outbox_page(session: AsyncSession, app_id: str, after: int | None, limit: int) -> Sequence[OutboxMessage]:
    stmt = (sa.select(OutboxMessage).where(OutboxMessage.app_id == app_id)
            .order_by(OutboxMessage.seq).limit(limit + 1))
    if after is not None:
        stmt = stmt.where(OutboxMessage.seq > after)
    return (await session.execute(stmt)).scalars().all()


__all__ = ["LIVE"]
