from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import OUTBOX_PARTITIONS_INFO_KEY, Bulk, PerDialect, among, insert_ignore, rows_of, run, upsert
from questline.pipeline.models import (
    DONE,
    LIVE,
    REPLAY,
    EventRecord,
    LogEvent,
    OutboxMessage,
    PartitionLease,
    ReplayEpoch,
    StreamOffset,
    WorkerMember,
    outbox_partition,
    partition_of,
)

_APPENDED = ("app_id", "event_id", "player_id", "type", "data", "occurred_at", "received_at", "source", "pending",
             "partition")
_append_texts: dict[str, str] = {}


def _append_text(dialect: sa.Dialect) -> str:
    """PostgreSQL: the rows as one JSON parameter, so the statement text (and its prepared plan)
    is the same for any number of rows. SQLAlchemy's multi-row ``VALUES`` made a new text for
    every group size: a parse on every connection, and every value processed in Python."""
    found = _append_texts.get(dialect.name)
    if found is None:
        table = EventRecord.__table__
        assert isinstance(table, sa.Table)
        quote = dialect.identifier_preparer.quote
        columns = ", ".join(map(quote, _APPENDED))
        fields = ", ".join(f"{quote(c)} {table.c[c].type.compile(dialect=dialect)}" for c in _APPENDED)
        found = _append_texts[dialect.name] = (
            f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} FROM json_to_recordset($1::json) "
            f"AS x({fields}) ON CONFLICT (app_id, event_id) DO NOTHING RETURNING app_id, event_id, seq")
    return found


async def append(session: AsyncSession, rows: list[dict[str, Any]], *,
                 partitions: int) -> dict[tuple[str, str], int]:
    """Insert events, skipping ids their app already has; returns (app_id, event_id) -> seq of the new.

    Each row gets its log partition from its app and player (``partitions`` of them). Rows are
    inserted in order, so log positions follow it."""
    if not rows:
        return {}
    for row in rows:
        row["partition"] = partition_of(row["app_id"], row["player_id"], partitions)
    connection = await session.connection()
    if connection.dialect.driver == "asyncpg":
        # Naive datetimes are UTC, as UTCDateTime stores them.
        payload = orjson.dumps([{c: row[c] for c in _APPENDED} for row in rows], option=orjson.OPT_NAIVE_UTC)
        added: Any = await connection.exec_driver_sql(_append_text(connection.dialect), (payload.decode(),))
        return {(app_id, event_id): seq for app_id, event_id, seq in added}
    table = EventRecord.__table__
    result = await session.execute(
        insert_ignore(session, table).returning(table.c.app_id, table.c.event_id, table.c.seq), rows,
    )
    return {(app_id, event_id): seq for app_id, event_id, seq in result}


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


_EVENT_COLUMNS = (EventRecord.seq, EventRecord.app_id, EventRecord.event_id, EventRecord.player_id,
                  EventRecord.type, EventRecord.data, EventRecord.occurred_at, EventRecord.received_at,
                  EventRecord.source, EventRecord.pending, EventRecord.partition)
_PENDING_ANY = sa.select(*_EVENT_COLUMNS).where(EventRecord.pending > 0).order_by(EventRecord.seq) \
    .limit(sa.bindparam("limit"))
_PENDING = PerDialect(lambda _: _PENDING_ANY)
_PENDING_IN = PerDialect(lambda _: _PENDING_ANY.where(EventRecord.partition == sa.bindparam("partition")))
_PENDING_AMONG = PerDialect(lambda dialect: _PENDING_ANY.where(among(EventRecord.partition, "partitions", dialect)))
_DONE = PerDialect(lambda dialect: sa.update(EventRecord).where(among(EventRecord.seq, "seqs", dialect))
                   .values(pending=DONE))


async def next_pending(session: AsyncSession, limit: int, partitions: Sequence[int] | None = None) -> list[LogEvent]:
    """The oldest pending events (of these partitions, or of all), in log order."""
    if partitions is None:
        rows = await rows_of(session, _PENDING, {"limit": limit})
    elif len(partitions) == 1:  # the partial index's order: no sort
        rows = await rows_of(session, _PENDING_IN, {"limit": limit, "partition": partitions[0]})
    else:
        rows = await rows_of(session, _PENDING_AMONG, {"limit": limit, "partitions": list(partitions)})
    return [LogEvent(*row) for row in rows]


# PostgreSQL: the partitions with pending events found by skipping through the pending index
# (one probe per partition), and each one's pending events counted only up to :cap.
_PENDING_CAPPED = sa.text(
    "WITH RECURSIVE parts AS ("
    " SELECT min(partition) AS p FROM events WHERE pending > 0"
    " UNION ALL SELECT (SELECT min(partition) FROM events WHERE pending > 0 AND partition > parts.p)"
    " FROM parts WHERE parts.p IS NOT NULL)"
    " SELECT p, (SELECT count(*) FROM (SELECT 1 FROM events WHERE partition = parts.p AND pending > 0"
    " LIMIT :cap) AS capped) FROM parts WHERE p IS NOT NULL")


async def pending_by_partition(session: AsyncSession, cap: int | None = None) -> dict[int, int]:
    """How many events are pending in each partition that has any; with ``cap``, at most ``cap``
    each (what a worker's round needs to group batches). Counting them all read every pending
    event each round: 7-14 ms with 100,000 pending, growing with the backlog; capped at 500, 1-2.6 ms
    (one index probe per partition, then at most ``cap`` entries)."""
    if cap is not None and session.get_bind().dialect.name == "postgresql":
        rows: Any = await session.execute(_PENDING_CAPPED, {"cap": cap})
        return {int(partition): int(n) for partition, n in rows}
    rows = await session.execute(sa.select(EventRecord.partition, sa.func.count()).where(EventRecord.pending > 0)
                                 .group_by(EventRecord.partition))
    return {int(partition): min(int(n), cap) if cap is not None else int(n) for partition, n in rows}


async def mark_done(session: AsyncSession, seqs: Sequence[int]) -> None:
    """Mark events processed (inside ``kit.db.deferring``: sent with the batch's other deferred writes)."""
    await run(session, _DONE, {"seqs": list(seqs)}, defer=True)


async def mark_for_replay(session: AsyncSession, app_id: str | None, flag: int) -> int:
    """Mark processed events (and those of an unfinished replay) for reprocessing. Live events
    still pending stay live: they come after the rest of their partition and still announce."""
    stmt = sa.update(EventRecord).where(EventRecord.pending != LIVE).values(pending=flag)
    if app_id is not None:
        stmt = stmt.where(EventRecord.app_id == app_id)
    return int((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def replaying(session: AsyncSession) -> bool:
    """Whether some app's log is being replayed (events marked for replay are still pending)."""
    found = await session.execute(
        sa.select(EventRecord.seq).where(EventRecord.pending > 0, EventRecord.pending == REPLAY).limit(1))
    return found.first() is not None


async def apps_in_log(session: AsyncSession, app_id: str | None) -> list[str]:
    """The apps that have events (only ``app_id`` if given)."""
    stmt = sa.select(EventRecord.app_id).distinct()
    if app_id is not None:
        stmt = stmt.where(EventRecord.app_id == app_id)
    return sorted((await session.execute(stmt)).scalars())


async def raise_replay_epochs(session: AsyncSession, app_ids: Sequence[str], at: datetime) -> None:
    """Move each app's replay epoch on (created at 1)."""
    if not app_ids:
        return
    table = ReplayEpoch.__table__
    stmt = upsert(session, table)
    stmt = stmt.on_conflict_do_update(index_elements=["app_id"],
                                      set_={"epoch": table.c.epoch + 1, "updated_at": stmt.excluded.updated_at})
    await session.execute(stmt, [{"app_id": app_id, "epoch": 1, "updated_at": at} for app_id in app_ids])


async def replay_epochs(session: AsyncSession) -> dict[str, int]:
    """Every replayed app's replay epoch (apps never replayed have none: 0)."""
    rows = await session.execute(sa.select(ReplayEpoch.app_id, ReplayEpoch.epoch))
    return {app_id: int(epoch) for app_id, epoch in rows}


async def last_done_seq(session: AsyncSession, app_id: str, player_id: str) -> int:
    """The log position of the player's last processed event (0 if none)."""
    found = await session.execute(
        sa.select(sa.func.max(EventRecord.seq))
        .where(EventRecord.app_id == app_id, EventRecord.player_id == player_id, EventRecord.pending == DONE))
    return int(found.scalar_one_or_none() or 0)


async def count_all_pending(session: AsyncSession) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(EventRecord).where(EventRecord.pending > 0)
    )).scalar_one())


ORDER_KEY = "order_key"  # in an ``outbox_row``: what its relay partition follows, if not the player


def outbox_row(app_id: str, type_: str, player_id: str | None, payload: dict[str, Any], at: datetime,
               event_seq: int | None = None, order_key: str | None = None) -> dict[str, Any]:
    """One outbox message to insert with ``add_outbox`` (``event_seq``: the log event it follows from;
    ``order_key``: the rows that must keep their order with it, when that is not the player's, e.g.
    a chat room's messages)."""
    row = {"app_id": app_id, "type": type_, "player_id": player_id, "event_seq": event_seq, "payload": payload,
           "created_at": at, "published_at": None}
    if order_key is not None:
        row[ORDER_KEY] = order_key
    return row


_OUTBOX = Bulk(OutboxMessage.__table__)


async def add_outbox(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write outbox rows, each into its relay partition (the one place outbox rows are written)."""
    if rows:
        partitions = int(session.info.get(OUTBOX_PARTITIONS_INFO_KEY, 1))
        known: dict[tuple[str, str | None], int] = {}  # a batch writes several rows per player
        values = []
        for row in rows:
            value = dict(row)
            where = (value["app_id"], value.pop(ORDER_KEY, None) or value["player_id"])
            partition = known.get(where)
            if partition is None:
                partition = known[where] = outbox_partition(where[0], where[1], partitions)
            value["partition"] = partition
            values.append(value)
        await _OUTBOX.write(session, values)


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



# The JetStream log (``pipeline/stream.py``): offsets applied, partition leases, live workers.

async def stream_offset(session: AsyncSession, stream: str) -> int:
    """The last sequence of ``stream`` whose events are applied (0: none yet)."""
    found = await session.execute(sa.select(StreamOffset.seq).where(StreamOffset.stream == stream))
    return int(found.scalar_one_or_none() or 0)


async def set_stream_offset(session: AsyncSession, stream: str, seq: int) -> None:
    stmt = upsert(session, StreamOffset.__table__).values(stream=stream, seq=seq)
    await session.execute(stmt.on_conflict_do_update(index_elements=["stream"], set_={"seq": seq}))


async def heartbeat(session: AsyncSession, namespace: str, worker: str, now: datetime,
                    expires_at: datetime) -> list[str]:
    """Say this worker lives until ``expires_at``; forget the dead; returns the live workers, sorted."""
    stmt = upsert(session, WorkerMember.__table__).values(namespace=namespace, worker=worker, expires_at=expires_at)
    await session.execute(stmt.on_conflict_do_update(index_elements=["namespace", "worker"],
                                                     set_={"expires_at": expires_at}))
    await session.execute(sa.delete(WorkerMember).where(WorkerMember.namespace == namespace,
                                                        WorkerMember.expires_at < now))
    rows = await session.execute(sa.select(WorkerMember.worker).where(WorkerMember.namespace == namespace))
    return sorted(rows.scalars())


async def leave(session: AsyncSession, namespace: str, worker: str) -> None:
    await session.execute(sa.delete(WorkerMember).where(WorkerMember.namespace == namespace,
                                                        WorkerMember.worker == worker))


async def acquire_lease(session: AsyncSession, stream: str, worker: str, now: datetime,
                        expires_at: datetime) -> bool:
    """Take (or renew) the lease of ``stream`` if it is free, expired or already ours."""
    table = PartitionLease.__table__
    await session.execute(insert_ignore(session, table).values(stream=stream, owner=worker, expires_at=expires_at))
    taken = await session.execute(
        sa.update(PartitionLease)
        .where(PartitionLease.stream == stream,
               sa.or_(PartitionLease.owner == worker, PartitionLease.expires_at < now))
        .values(owner=worker, expires_at=expires_at))
    return int(taken.rowcount) == 1  # type: ignore[attr-defined]


async def release_leases(session: AsyncSession, streams: Sequence[str], worker: str, now: datetime) -> None:
    """Give up these leases at once (another worker may take them at its next heartbeat)."""
    if streams:
        await session.execute(
            sa.update(PartitionLease)
            .where(PartitionLease.owner == worker, PartitionLease.stream.in_(list(streams)))
            .values(expires_at=now - timedelta(seconds=1)))


__all__ = ["LIVE"]


WEEK = 7 * 86400
WEEK_ORIGIN = 4 * 86400  # 1970-01-05 00:00 UTC, a Monday: week numbers count Monday-to-Monday UTC weeks


def _week_of(column: Any, dialect: str) -> Any:
    """The UTC week number of a timestamp column (weeks since 1970-01-05), the same on both databases."""
    if dialect == "postgresql":
        seconds: Any = sa.cast(sa.extract("epoch", column), sa.BigInteger)
    else:  # SQLite keeps naive UTC text that strftime reads
        seconds = sa.cast(sa.func.strftime("%s", column), sa.BigInteger)
    return (seconds - WEEK_ORIGIN) // WEEK


async def weekly_cohorts(session: AsyncSession, app_id: str, first_week: int,
                         since: datetime) -> list[tuple[int, int, int]]:
    """(cohort week, active week, players) for the players first seen in ``first_week`` or later.

    A player's cohort is the week of their first event ever; a week counts them active when they sent
    any event in it. Internal events (trusted XP awards, …) are not the player's own activity.
    """
    dialect = (await session.connection()).dialect.name
    own = (EventRecord.app_id == app_id, EventRecord.source != "internal")
    first = (sa.select(EventRecord.player_id, _week_of(sa.func.min(EventRecord.occurred_at), dialect).label("cohort"))
             .where(*own).group_by(EventRecord.player_id).subquery())
    active = (sa.select(EventRecord.player_id, _week_of(EventRecord.occurred_at, dialect).label("week"))
              .where(*own, EventRecord.occurred_at >= since).distinct().subquery())
    rows = await session.execute(
        sa.select(first.c.cohort, active.c.week, sa.func.count())
        .select_from(first.join(active, first.c.player_id == active.c.player_id))
        .where(first.c.cohort >= first_week)
        .group_by(first.c.cohort, active.c.week)
    )
    return [(int(c), int(w), int(n)) for c, w, n in rows.all()]
