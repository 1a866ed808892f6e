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
_XMIN_PG = sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
# Which of these subscribers' cursors have committed rows waiting, in one statement: the same test
# as ``_NEXT_PG``'s, with the cursor's own columns. LATERAL ... ORDER BY ... LIMIT 1 makes it one short
# probe of ix_outbox_partition_position per cursor (a plain EXISTS is planned as a semi join over the
# whole outbox, and without the order a caught-up cursor's probe scans the table).
_WAITING_PG = sa.text("""
SELECT c.subscriber, c.partition
FROM relay_cursors c
CROSS JOIN (SELECT pg_current_snapshot() AS snap) s
CROSS JOIN LATERAL (
    SELECT 1 FROM outbox o
    WHERE o.partition = c.partition
      AND o.txid >= c.low
      AND pg_visible_in_snapshot(o.txid::text::xid8, s.snap)
      AND NOT (c.done @> to_jsonb(o.txid))
      AND o.seq > COALESCE(CAST(c.partial ->> CAST(o.txid AS text) AS bigint), 0)
    ORDER BY o.txid, o.seq
    LIMIT 1) w
WHERE c.subscriber = ANY(CAST(:names AS text[]))
""")


@dataclass
class Cursor:
    low: int = 0
    done: list[int] = field(default_factory=list)
    partial: dict[str, int] = field(default_factory=dict)
    seq: int = 0

    def position(self) -> tuple[Any, ...]:
        """Equal for cursors at the same place (they read the same rows)."""
        return self.low, tuple(self.done), tuple(sorted(self.partial.items())), self.seq


async def ensure_cursors(session: AsyncSession, names: Sequence[str], partitions: Sequence[int], now: datetime,
                         start: dict[int, Cursor] | None = None) -> None:
    """A cursor row for each (subscriber, partition) that has none, at ``start[partition]`` (default:
    the partition's beginning)."""
    start = start or {}
    values = [{"subscriber": n, "partition": p, "low": c.low, "done": c.done, "partial": c.partial, "seq": c.seq,
               "delivered": 0, "updated_at": now}
              for n in names for p in partitions for c in [start.get(p) or Cursor()]]
    if values:
        await session.execute(insert_ignore(session, RelayCursor.__table__), values)


async def partitions_of(session: AsyncSession, names: Sequence[str]) -> set[int]:
    """The partitions these subscribers have cursors in (a larger earlier setting leaves some)."""
    if not names:
        return set()
    found = await session.execute(sa.select(RelayCursor.partition).distinct()
                                  .where(RelayCursor.subscriber.in_(list(names))))
    return {int(p) for p in found.scalars()}


async def claim_cursors(session: AsyncSession, pairs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Cursor]:
    """Lock these (subscriber, partition) cursors for this transaction in one statement; those
    another relay holds (PostgreSQL) or that do not exist are left out."""
    if not pairs:
        return {}
    c = _CURSORS.c
    stmt = sa.select(c.subscriber, c.partition, c.low, c.done, c.partial, c.seq) \
        .where(sa.tuple_(c.subscriber, c.partition).in_([tuple(pair) for pair in pairs]))
    if _is_pg(session):
        stmt = stmt.with_for_update(skip_locked=True)
    rows = await session.execute(stmt)
    return {(str(name), int(partition)): _cursor(low, done, partial, seq)
            for name, partition, low, done, partial, seq in rows}


def _cursor(low: Any, done: Any, partial: Any, seq: Any) -> Cursor:
    return Cursor(int(low), [int(t) for t in done], {str(k): int(v) for k, v in partial.items()}, int(seq))


_CURSORS: Any = RelayCursor.__table__
# Several cursors saved with one call (an executemany: one round trip); the bound names differ from
# the columns', which an UPDATE's SET may not reuse.
_SAVE = (sa.update(_CURSORS)
         .where(_CURSORS.c.subscriber == sa.bindparam("b_name"), _CURSORS.c.partition == sa.bindparam("b_partition"))
         .values(low=sa.bindparam("b_low"), done=sa.bindparam("b_done", type_=_CURSORS.c.done.type),
                 partial=sa.bindparam("b_partial", type_=_CURSORS.c.partial.type), seq=sa.bindparam("b_seq"),
                 delivered=_CURSORS.c.delivered + sa.bindparam("b_count"),
                 updated_at=sa.bindparam("b_now", type_=_CURSORS.c.updated_at.type)))


async def save_cursors(session: AsyncSession, moved: Sequence[tuple[str, int, Cursor, int]], now: datetime) -> None:
    """Save several cursors with one call: (subscriber, partition, cursor, messages handed over)."""
    if moved:
        await session.execute(_SAVE, [{"b_name": name, "b_partition": partition, "b_low": c.low, "b_done": c.done,
                                       "b_partial": c.partial, "b_seq": c.seq, "b_count": count, "b_now": now}
                                      for name, partition, c, count in moved])


def _is_pg(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# PostgreSQL, for each (partition, cursor) read: the partition's rows from transactions that have
# committed (visible in this statement's snapshot), not yet handed over, and the snapshot's xmin
# (every transaction below it has ended). Each read is one probe of ix_outbox_partition_position
# (LATERAL ... LIMIT), its rows tagged with the read's index; all in one snapshot.
_NEXT_PG = sa.text(f"""
SELECT r.i, {", ".join("o." + c for c in _COLUMNS)}, pg_snapshot_xmin(s.snap)::text::bigint AS xmin
FROM (SELECT pg_current_snapshot() AS snap) s
CROSS JOIN jsonb_array_elements(CAST(:reads AS jsonb)) WITH ORDINALITY AS r(c, i)
CROSS JOIN LATERAL (
    SELECT {", ".join("x." + c for c in _COLUMNS)} FROM outbox x
    WHERE x.partition = CAST(r.c ->> 'partition' AS integer)
      AND x.txid >= CAST(r.c ->> 'low' AS bigint)
      AND pg_visible_in_snapshot(x.txid::text::xid8, s.snap)
      AND NOT ((r.c -> 'done') @> to_jsonb(x.txid))
      AND x.seq > COALESCE(CAST(r.c -> 'partial' ->> CAST(x.txid AS text) AS bigint), 0)
    ORDER BY x.txid, x.seq
    LIMIT :limit) o
ORDER BY r.i, o.txid, o.seq
""")


async def next_rows_many(session: AsyncSession, reads: Sequence[tuple[int, Cursor]],
                         limit: int) -> list[tuple[list[tuple[Any, ...]], int | None]]:
    """Each (partition, cursor) read's next committed rows not yet handed over (by transaction, then
    seq), in order, and on PostgreSQL the reading snapshot's xmin: there one statement (one
    snapshot, so one xmin for all), on SQLite one short read each."""
    found: list[tuple[list[tuple[Any, ...]], int | None]] = []
    if not _is_pg(session):
        table = OutboxMessage.__table__
        for partition, cursor in reads:
            # SQLite writes txid 0: saying so lets the (partition, txid, seq) index give the rows in seq order.
            stmt = (sa.select(*(table.c[c] for c in _COLUMNS))
                    .where(table.c.partition == partition, table.c.txid == 0, table.c.seq > cursor.seq)
                    .order_by(table.c.seq).limit(limit))
            found.append(([tuple(r) for r in (await session.execute(stmt)).all()], None))
        return found
    spec = orjson.dumps([{"partition": p, "low": c.low, "done": c.done, "partial": c.partial} for p, c in reads])
    found = [([], None) for _ in reads]
    for row in await session.execute(_NEXT_PG, {"reads": spec.decode(), "limit": limit}):
        rows, _ = found[int(row[0]) - 1]
        rows.append(tuple(row[1:-1]))
        found[int(row[0]) - 1] = (rows, int(row[-1]))
    return found


async def next_rows(session: AsyncSession, partition: int, cursor: Cursor,
                    limit: int) -> tuple[list[tuple[Any, ...]], int | None]:
    """``next_rows_many`` of one read."""
    return (await next_rows_many(session, [(partition, cursor)], limit))[0]


async def head(session: AsyncSession, partition: int) -> Cursor:
    """A cursor past everything committed now in a partition (a new subscriber that wants only what
    comes next)."""
    if _is_pg(session):
        xmin = int((await session.execute(_XMIN_PG)).scalar_one())
        # Transactions from xmin on that have committed are handed over to no one: mark them done.
        done = (await session.execute(sa.text(
            "SELECT DISTINCT txid FROM outbox WHERE partition = :partition AND txid >= :low "
            "AND pg_visible_in_snapshot(txid::text::xid8, pg_current_snapshot())"),
            {"partition": partition, "low": xmin})).scalars()
        return Cursor(low=xmin, done=sorted(int(t) for t in done))
    top = (await session.execute(sa.select(sa.func.max(OutboxMessage.seq)).where(
        OutboxMessage.partition == partition, OutboxMessage.txid == 0))).scalar_one_or_none()
    return Cursor(seq=int(top or 0))


async def cursors(session: AsyncSession, names: Sequence[str]) -> dict[tuple[str, int], tuple[Cursor, int, datetime]]:
    """These subscribers' cursors, by (subscriber, partition): position, messages delivered, last move."""
    if not names:
        return {}
    rows = await session.execute(sa.select(RelayCursor.subscriber, RelayCursor.partition, RelayCursor.low,
                                           RelayCursor.done, RelayCursor.partial, RelayCursor.seq,
                                           RelayCursor.delivered, RelayCursor.updated_at)
                                 .where(RelayCursor.subscriber.in_(list(names))))
    return {(name, int(partition)): (_cursor(low, done, partial, seq), int(delivered), at)
            for name, partition, low, done, partial, seq, delivered, at in rows}


async def waiting(session: AsyncSession, names: Sequence[str]) -> set[tuple[str, int]]:
    """The (subscriber, partition) cursors of these subscribers with committed rows not handed over
    (one statement, whatever the number of partitions)."""
    if not names:
        return set()
    if _is_pg(session):
        rows = await session.execute(_WAITING_PG, {"names": list(names)})
    else:
        c, o = RelayCursor.__table__, OutboxMessage.__table__
        ahead = sa.exists().where(o.c.partition == c.c.partition, o.c.txid == 0, o.c.seq > c.c.seq)
        rows = await session.execute(sa.select(c.c.subscriber, c.c.partition)
                                     .where(c.c.subscriber.in_(list(names)), ahead))
    return {(str(name), int(partition)) for name, partition in rows}
