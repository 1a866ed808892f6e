from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore
from questline.pipeline.models import OutboxMessage
from questline.relay.models import RelayCursor

# Transactions older than this snapshot's xmin have all ended: their rows are visible or never will be.
_SETTLED_PG = sa.text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
_COLUMNS = (OutboxMessage.txid, OutboxMessage.seq, OutboxMessage.app_id, OutboxMessage.type,
            OutboxMessage.player_id, OutboxMessage.event_seq, OutboxMessage.payload, OutboxMessage.created_at)
Position = tuple[int, int]


async def ensure_cursors(session: AsyncSession, names: Sequence[str], now: datetime,
                         start: Position = (0, 0)) -> None:
    """A cursor row for each subscriber that has none, at ``start`` (default: the beginning)."""
    if names:
        await session.execute(insert_ignore(session, RelayCursor.__table__),
                              [{"subscriber": n, "txid": start[0], "seq": start[1], "delivered": 0,
                                "updated_at": now} for n in names])


async def claim_cursor(session: AsyncSession, name: str) -> Position | None:
    """Lock a subscriber's cursor for this transaction; None when another relay holds it (PostgreSQL)."""
    stmt = sa.select(RelayCursor.txid, RelayCursor.seq).where(RelayCursor.subscriber == name)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    row = (await session.execute(stmt)).first()
    return None if row is None else (int(row[0]), int(row[1]))


async def cursors(session: AsyncSession) -> dict[str, tuple[Position, int, datetime]]:
    rows = await session.execute(sa.select(RelayCursor.subscriber, RelayCursor.txid, RelayCursor.seq,
                                           RelayCursor.delivered, RelayCursor.updated_at))
    return {name: ((int(txid), int(seq)), int(delivered), at) for name, txid, seq, delivered, at in rows}


async def advance(session: AsyncSession, name: str, to: Position, count: int, now: datetime) -> None:
    await session.execute(sa.update(RelayCursor).where(RelayCursor.subscriber == name)
                           .values(txid=to[0], seq=to[1], delivered=RelayCursor.delivered + count, updated_at=now))


def _settled(session: AsyncSession) -> sa.ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return OutboxMessage.txid < _SETTLED_PG
    return sa.true()  # SQLite: one writer at a time, rows appear in seq order as they commit


async def after(session: AsyncSession, position: Position, limit: int) -> Sequence[sa.Row[tuple[object, ...]]]:
    """Settled outbox rows past ``position``, in (txid, seq) order."""
    stmt = (sa.select(*_COLUMNS)
            .where(sa.tuple_(OutboxMessage.txid, OutboxMessage.seq) > sa.tuple_(sa.literal(position[0]),
                                                                              sa.literal(position[1])),
                   _settled(session))
            .order_by(OutboxMessage.txid, OutboxMessage.seq).limit(limit))
    return (await session.execute(stmt)).all()


async def head(session: AsyncSession) -> Position:
    """The position of the last settled row (``(0, 0)`` for an empty outbox)."""
    stmt = (sa.select(OutboxMessage.txid, OutboxMessage.seq).where(_settled(session))
            .order_by(OutboxMessage.txid.desc(), OutboxMessage.seq.desc()).limit(1))
    row = (await session.execute(stmt)).first()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))
