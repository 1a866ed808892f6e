from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore
from questline.pipeline.models import OutboxMessage
from questline.relay.models import RelayCursor

_COLUMNS = ("txid", "seq", "app_id", "type", "player_id", "event_seq", "payload", "created_at")
# PostgreSQL: the rows of transactions that have committed (visible in this statement's snapshot),
# not yet handed over; and the snapshot's xmin (every transaction below it has ended).
_NEXT_PG = sa.text(f"""
SELECT {", ".join("o." + c for c in _COLUMNS)}, pg_snapshot_xmin(s.snap)::text::bigint AS xmin
FROM outbox o, (SELECT pg_current_snapshot() AS snap) s
WHERE o.txid >= :low
  AND pg_visible_in_snapshot(o.txid::text::xid8, s.snap)
  AND NOT (o.txid = ANY(CAST(:done AS bigint[])))
  AND o.seq > COALESCE(CAST(CAST(:partial AS jsonb) ->> CAST(o.txid AS text) AS bigint), 0)
ORDER BY o.txid, o.seq
LIMIT :limit
""")
_XMIN_PG = sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


@dataclass
class Cursor:
    low: int = 0
    done: list[int] = field(default_factory=list)
    partial: dict[str, int] = field(default_factory=dict)
    seq: int = 0


async def ensure_cursors(session: AsyncSession, names: Sequence[str], now: datetime,
                         start: Cursor | None = None) -> None:
    """A cursor row for each subscriber that has none, at ``start`` (default: the beginning)."""
    start = start or Cursor()
    if names:
        await session.execute(insert_ignore(session, RelayCursor.__table__), [
            {"subscriber": n, "low": start.low, "done": start.done, "partial": start.partial, "seq": start.seq,
             "delivered": 0, "updated_at": now} for n in names])


async def claim_cursor(session: AsyncSession, name: str) -> Cursor | None:
    """Lock a subscriber's cursor for this transaction; None when another relay holds it (PostgreSQL)."""
    stmt = sa.select(RelayCursor.low, RelayCursor.done, RelayCursor.partial, RelayCursor.seq) \
        .where(RelayCursor.subscriber == name)
    if _is_pg(session):
        stmt = stmt.with_for_update(skip_locked=True)
    row = (await session.execute(stmt)).first()
    return None if row is None else _cursor(*row)


def _cursor(low: Any, done: Any, partial: Any, seq: Any) -> Cursor:
    return Cursor(int(low), [int(t) for t in done], {str(k): int(v) for k, v in partial.items()}, int(seq))


async def save_cursor(session: AsyncSession, name: str, cursor: Cursor, count: int, now: datetime) -> None:
    await session.execute(sa.update(RelayCursor).where(RelayCursor.subscriber == name).values(
        low=cursor.low, done=cursor.done, partial=cursor.partial, seq=cursor.seq,
        delivered=RelayCursor.delivered + count, updated_at=now))


def _is_pg(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def next_rows(session: AsyncSession, cursor: Cursor, limit: int) -> tuple[list[tuple[Any, ...]], int | None]:
    """The next committed rows not yet handed over (by transaction, then seq), and on PostgreSQL the
    reading snapshot's xmin."""
    if _is_pg(session):
        rows = (await session.execute(_NEXT_PG, {"low": cursor.low, "done": cursor.done,
                                                 "partial": orjson.dumps(cursor.partial).decode(),
                                                 "limit": limit})).all()
        xmin = int(rows[0][-1]) if rows else None
        return [tuple(r[:-1]) for r in rows], xmin
    table = OutboxMessage.__table__
    stmt = (sa.select(*(table.c[c] for c in _COLUMNS)).where(table.c.seq > cursor.seq)
            .order_by(table.c.seq).limit(limit))
    return [tuple(r) for r in (await session.execute(stmt)).all()], None


async def head(session: AsyncSession) -> Cursor:
    """A cursor past everything committed now (a new subscriber that wants only what comes next)."""
    if _is_pg(session):
        xmin = int((await session.execute(_XMIN_PG)).scalar_one())
        # Transactions from xmin on that have committed are handed over to no one: mark them done.
        done = (await session.execute(sa.text(
            "SELECT DISTINCT txid FROM outbox WHERE txid >= :low "
            "AND pg_visible_in_snapshot(txid::text::xid8, pg_current_snapshot())"), {"low": xmin})).scalars()
        return Cursor(low=xmin, done=sorted(int(t) for t in done))
    top = (await session.execute(sa.select(sa.func.max(OutboxMessage.seq)))).scalar_one_or_none()
    return Cursor(seq=int(top or 0))


async def cursors(session: AsyncSession) -> dict[str, tuple[Cursor, int, datetime]]:
    rows = await session.execute(sa.select(RelayCursor.subscriber, RelayCursor.low, RelayCursor.done,
                                           RelayCursor.partial, RelayCursor.seq,
                                           RelayCursor.delivered, RelayCursor.updated_at))
    return {name: (_cursor(low, done, partial, seq), int(delivered), at)
            for name, low, done, partial, seq, delivered, at in rows}


async def waiting(session: AsyncSession, cursor: Cursor) -> bool:
    """Has the outbox committed rows this cursor has not handed over?"""
    rows, _ = await next_rows(session, cursor, 1)
    return bool(rows)
